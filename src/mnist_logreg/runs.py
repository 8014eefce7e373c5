"""Run folders: a self-describing model file plus config, history and metrics beside it.

``model.safetensors`` holds the weights *and* everything needed to preprocess new images
exactly as in training (normalisation statistics; the config and image shape as
metadata). Loading never unpickles: safetensors stores raw tensors only. Every file is
written atomically; ``metrics.json`` is written last and marks a run that finished.

No PyTorch here: the model file's bytes come from ``training.checkpoint`` (which also
loads a run as PyTorch modules), and are read by ``reading.modelfile``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from pathlib import Path

from .atomic import atomic_write_files, json_bytes
from .config import TrainConfig
from .errors import ConfigError, UserError
from .reading.modelfile import MODEL_FILE

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
# Where `export` writes each format when no --out is given: beside the run.
EXPORT_FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt", "web": "digits.html"}


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def history_csv(history: list[dict]) -> str:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as fh:
            rows = [{k: float(v) if v not in ("", None) else None for k, v in row.items()}
                    for row in csv.DictReader(fh)]
    except (UnicodeDecodeError, ValueError, TypeError, csv.Error) as exc:
        raise UserError(f"{path}: not a history table written by this tool ({exc})") from None
    for n, row in enumerate(rows, start=2):
        if row.get("epoch") is None:
            raise UserError(f"{path}: not a history table written by this tool (line {n} has no epoch)")
        if not all(math.isfinite(v) for v in row.values() if v is not None):
            raise UserError(f"{path}: line {n} holds NaN or infinity")
    return rows


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: must be a JSON object, got {type(value).__name__}")
    return value


def _number(lo: float = 0.0, hi: float = float("inf"), integer: bool = False):
    def check(value) -> str | None:
        kinds = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"must be {'an integer' if integer else 'a number'}, got {json.dumps(value)[:40]}"
        if not (math.isfinite(value) and lo <= value <= hi):
            return f"must be between {lo:g} and {hi:g}, got {value!r}"
        return None
    return check


def _text(value) -> str | None:
    return None if isinstance(value, str) else f"must be a string, got {json.dumps(value)[:40]}"


def _selection(value) -> str | None:
    if not isinstance(value, dict) or not isinstance(value.get("chosen"), str):
        return "must be an object naming the chosen preprocessing"
    for part, check in (("train_seconds", _number()), ("val_accuracy", _number(hi=1.0))):
        table = value.get(part, {})
        if not isinstance(table, dict):
            return f"{part} must be an object"
        for name, v in table.items():
            if (problem := check(v)) is not None:
                return f"{part}.{name} {problem}"
    return None


# What a run's metrics.json holds, field by field (``api.run_metrics``). null is allowed
# (not measured); fields a later version adds are kept and not used.
_FRACTION, _SECONDS, _COUNT = _number(hi=1.0), _number(), _number(integer=True)
METRIC_FIELDS = {
    "test_accuracy": _FRACTION, "train_accuracy": _FRACTION, "val_accuracy": _FRACTION,
    "test_loss": _SECONDS, "train_loss": _SECONDS, "val_loss": _SECONDS,
    "train_seconds": _SECONDS, "preprocess_seconds": _SECONDS, "wall_seconds": _SECONDS,
    "samples_per_second": _SECONDS, "epochs": _COUNT, "n_train": _COUNT, "n_damaged": _COUNT, "n_val": _COUNT,
    "n_test": _COUNT,
    "seed": _number(lo=-2**63, hi=2**64, integer=True), "device": _text, "kernel": _text, "preset": _text,
    "torch_version": _text, "data": _text, "selection": _selection,
}


def read_metrics(path: str | os.PathLike) -> dict:
    """A run's ``metrics.json``, each known field checked (a number where a number is
    expected, finite, in range), or one line naming the field."""
    metrics = read_json(path)
    for name, check in METRIC_FIELDS.items():
        if metrics.get(name) is not None and (problem := check(metrics[name])) is not None:
            raise UserError(f"{path}: {name!r} {problem}")
    return metrics


def read_config(path: str | os.PathLike) -> TrainConfig:
    """A run's ``config.json``, checked as the flags are, or one line naming the value."""
    try:
        return TrainConfig.from_dict(read_json(path))
    except (ConfigError, TypeError) as exc:
        raise UserError(f"{path}: {exc}") from None


def save_run(run_dir: str | os.PathLike, model_file: bytes, config: TrainConfig, history: list[dict],
             metrics: dict) -> Path:
    """Write a run folder: the model file's bytes (``training.checkpoint.model_bytes``),
    the settings, the history and the metrics. All four or none.

    How ``--select`` chose the preprocessing (``metrics["selection"]``) is also recorded in
    config.json, beside the settings it chose.
    """
    run_dir = Path(run_dir)
    config = config.to_dict()
    if "selection" in metrics:
        config["selection"] = metrics["selection"]
    created = not run_dir.exists()
    try:
        # All four or none: a full disk half-way leaves no model without its metrics.
        atomic_write_files({
            run_dir / MODEL_FILE: model_file,
            run_dir / CONFIG_FILE: json_bytes(config),
            run_dir / HISTORY_FILE: history_csv(history).encode("utf-8"),
            run_dir / METRICS_FILE: json_bytes(metrics),
        })
    except BaseException:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise
    return run_dir
