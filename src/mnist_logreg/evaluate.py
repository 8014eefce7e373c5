"""Evaluate a run on its test set, with NumPy alone: the model file read by the NumPy
engine (``lite``), the test split by ``data.sources`` (checked as training checks it),
the metrics and the report in NumPy. ``mnist-logreg evaluate`` imports no PyTorch."""

from __future__ import annotations

import os
from pathlib import Path

from .data.sources import locate, read_test_split
from .errors import UserError
from .metrics import test_scores
from .reading.lite import load_run
from .runs import METRICS_FILE, read_metrics


def evaluate_run(run_dir: str | os.PathLike, data_dir: str | None = None, report: bool = True) -> dict:
    """Reload a run and score it on the test set of its dataset (or of ``data_dir``).

    With ``report`` it also writes ``run_dir/report/`` (figures, HTML, markdown, JSON);
    the returned dict then holds every metric of the report under ``"report"``.
    """
    model = load_run(run_dir)
    metrics_path = Path(run_dir) / METRICS_FILE  # checked now, not after the scoring
    run_metrics = read_metrics(metrics_path) if report and metrics_path.is_file() else {}
    data = model.config.data
    images, labels = read_test_split(locate(data.dataset, data_dir if data_dir is not None else data.data_dir))
    if tuple(images.shape[1:]) != tuple(model.image_shape):
        raise UserError(f"--run {run_dir}: the model was trained on {model.image_shape[0]}x"
                        f"{model.image_shape[1]} images but this dataset has {images.shape[1]}x"
                        f"{images.shape[2]} images")
    if int(labels.max()) + 1 > len(model.classes):
        raise UserError(f"--run {run_dir}: the model knows {len(model.classes)} classes but the dataset "
                        f"has {int(labels.max()) + 1}")
    logits = model.logits(images)
    out = {"run": str(run_dir), **test_scores(logits, labels)}
    if report:
        from .report import write_report

        folder, full = write_report(run_dir, model, images, labels, run_metrics, logits)
        out["report_dir"] = str(folder)
        out["report"] = full
    return out
