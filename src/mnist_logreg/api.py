"""The public workflows the CLI is a thin layer over: train a run (here, with PyTorch),
evaluate a run (``evaluate.py``, NumPy alone)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from .config import TrainConfig
from .data import Dataset, load_dataset
from .metrics import accuracy, test_scores
from .runs import save_run
from .training.checkpoint import Checkpoint, model_bytes
from .training.model import Classifier
from .training.train import TrainResult, train

log = logging.getLogger(__name__)


def load_data(config: TrainConfig) -> Dataset:
    return load_dataset(config.data.dataset, config.data.data_dir)


def test_metrics(checkpoint: Checkpoint, dataset: Dataset) -> dict:
    """Accuracy and log loss of a trained classifier on the dataset's test split."""
    return test_scores(checkpoint.logits(dataset.test_images), dataset.test_labels)


def run_metrics(result: TrainResult, test: dict, wall_seconds: float | None = None) -> dict:
    last = result.history[-1] if result.history else {}
    metrics = {
        **test,
        "train_seconds": result.train_seconds,
        "preprocess_seconds": result.preprocess_seconds,
        "samples_per_second": result.samples_per_second,
        "epochs": len(result.history),
        "device": result.device,
        "kernel": result.kernel,
        "seed": result.config.seed,
        "preset": result.config.preset,
        "n_train": result.n_train,
        "n_damaged": result.n_damaged,
        "n_val": result.n_val,
        "train_loss": last.get("train_loss"),
        "train_accuracy": last.get("train_accuracy"),
        "torch_version": torch.__version__,
    }
    if "val_accuracy" in last:
        metrics["val_accuracy"] = last["val_accuracy"]
        metrics["val_loss"] = last["val_loss"]
    if result.selection is not None:
        metrics["selection"] = result.selection
    if wall_seconds is not None:
        metrics["wall_seconds"] = wall_seconds
    return metrics


def checkpoint_of(result: TrainResult, dataset: Dataset) -> Checkpoint:
    return Checkpoint(classifier=Classifier(result.preprocessor, result.model).eval(), config=result.config,
                      classes=list(range(dataset.n_classes)))


# The share of a person's --add digits held out to choose --add-weight on.
ADD_HELD_OUT = 1 / 4


def add_own_digits(config: TrainConfig, dataset: Dataset) -> tuple[Dataset, dict]:
    """``dataset`` with the person's digits of ``--add`` after its training images, as many
    copies of each as ``--add-weight`` says; by default the weight of ``ADD_WEIGHTS`` that
    reads best a held-out quarter of those digits (trained on the rest), smaller on a tie."""
    from .config import ADD_WEIGHTS
    from .data.datasets import with_added
    from .data.formats import holdout, read_collected

    images, labels = read_collected(config.data.add, dataset.image_shape)
    weight, scores = config.data.add_weight, None
    if weight is None:
        fit_x, fit_y, held_x, held_y = holdout(images, labels, fraction=ADD_HELD_OUT)
        scores = {}
        for w in ADD_WEIGHTS:
            trial = with_added(dataset, torch.from_numpy(fit_x), torch.from_numpy(fit_y), w)
            checkpoint = checkpoint_of(train(config, trial), trial)
            scores[w] = accuracy(checkpoint.logits(held_x), held_y)
        weight = max(ADD_WEIGHTS, key=lambda w: (scores[w], -w))
    added = with_added(dataset, torch.from_numpy(images), torch.from_numpy(labels), weight)
    return added, {"digits": len(labels), "weight": weight, "held_out_accuracy": scores}


def train_run(config: TrainConfig, out_dir: str | os.PathLike | None = None, dataset: Dataset | None = None,
              on_epoch=None) -> tuple[Checkpoint, list[dict], dict]:
    """Train as ``config`` says, score once on the test set, and (if ``out_dir``) save the run."""
    t0 = time.perf_counter()
    dataset = dataset if dataset is not None else load_data(config)
    added = None
    if config.data.add:
        dataset, added = add_own_digits(config, dataset)
    result = train(config, dataset, on_epoch=on_epoch)
    checkpoint = checkpoint_of(result, dataset)
    metrics = run_metrics(result, test_metrics(checkpoint, dataset), time.perf_counter() - t0)
    metrics["data"] = dataset.provenance
    if added is not None:
        metrics["added"] = added
    if dataset.class_names:
        metrics["class_names"] = dataset.class_names
    if dataset.skipped:
        metrics["skipped"] = list(dataset.skipped)
    if out_dir is not None:
        save_run(Path(out_dir), model_bytes(checkpoint.classifier, checkpoint.config, checkpoint.classes),
                 checkpoint.config, result.history, metrics)
    return checkpoint, result.history, metrics
