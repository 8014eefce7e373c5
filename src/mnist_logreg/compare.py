"""Side-by-side comparison of run folders: the settings that differ, and the metrics."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .atomic import atomic_write_text
from .errors import UserError
from .runs import CONFIG_FILE, METRICS_FILE, read_config, read_metrics

METRIC_KEYS = ("test_accuracy", "test_loss", "val_accuracy", "train_seconds", "samples_per_second", "epochs",
               "device", "seed")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{k}."))
        else:
            out[prefix + k] = v
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def compare_table(runs: list[str | os.PathLike]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per run, the config keys that differ, then the metrics."""
    configs, metrics = [], []
    for run in runs:
        run = Path(run)
        if not (run / METRICS_FILE).is_file():
            raise UserError(f"{run}: not a finished run (no {METRICS_FILE})")
        configs.append(_flatten(read_config(run / CONFIG_FILE).to_dict()) if (run / CONFIG_FILE).is_file() else {})
        metrics.append(read_metrics(run / METRICS_FILE))
    keys = sorted({k for c in configs for k in c})
    differing = [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]
    header = ["run", *differing, *METRIC_KEYS]
    rows = [[str(run), *[_fmt(c.get(k)) for k in differing], *[_fmt(m.get(k)) for k in METRIC_KEYS]]
            for run, c, m in zip(runs, configs, metrics)]
    return header, rows


def compare_runs(runs: list[str | os.PathLike], out: str | os.PathLike | None = None) -> str:
    header, rows = compare_table(runs)
    text = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in rows])
    if out is not None:
        out = Path(out)
        if out.suffix == ".csv":
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows([header, *rows])
            atomic_write_text(out, buf.getvalue())
        else:
            atomic_write_text(out, text + "\n")
    return text
