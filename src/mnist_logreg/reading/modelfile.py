"""Reading a model file, checked completely, without PyTorch.

A run folder is input from anywhere (a download, a colleague): its ``model.safetensors``
is read as NumPy arrays and every part checked here, in one place, before anything uses
it: the format, the settings (as the flags check them), the image shape and classes, and
every tensor's name, shape, dtype and values. ``training.checkpoint.load_model`` turns the result into a
PyTorch classifier; ``lite`` runs it with NumPy alone (``predict``: no PyTorch to import).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..errors import ConfigError, UserError

MODEL_FILE = "model.safetensors"
FORMAT = "mnist-logreg/1"
# The largest image side a model file may declare: MNIST's is 28; a tampered 10**9 would
# make every tensor check allocate gigabytes first.
MAX_SIDE = 4096


def directions_fit(image_shape: tuple[int, int]) -> bool:
    """Whether stroke-direction planes tile images of this shape (both sides even)."""
    return image_shape[0] % 2 == 0 and image_shape[1] % 2 == 0


@dataclass(frozen=True)
class ModelFile:
    config: TrainConfig
    image_shape: tuple[int, int]
    classes: list[int]
    tensors: dict[str, np.ndarray]  # the file's names: linear.weight, linear.bias, preprocess.*


def check_image_shape(shape: tuple, image_shape: tuple[int, int]) -> None:
    """Refuse a batch [N, H, W] whose images are not the model's size."""
    if tuple(shape[1:]) != tuple(image_shape):
        raise UserError(f"the model expects {image_shape[0]}x{image_shape[1]} images, got "
                        + "x".join(map(str, shape[1:])))


def shipped_run() -> Path:
    """The run folder shipped inside the package (checkout and wheel alike): the default
    recipe trained on MNIST, what ``predict``, ``serve`` and ``export`` use without ``--run``
    (docs/model-card.md; ``make default-model`` trains it again)."""
    from importlib import resources

    return Path(str(resources.files("mnist_logreg.data") / "default-run"))


def model_path(run_dir: str | os.PathLike) -> Path:
    """The model file of a run folder, or a one-line refusal saying what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"--run {run_dir}: no such run folder")
    if not (run_dir / MODEL_FILE).is_file():
        raise UserError(f"--run {run_dir}: no {MODEL_FILE} in this folder (not a finished run?)")
    return run_dir / MODEL_FILE


def run_class_names(run_dir: str | os.PathLike, n_classes: int) -> list[str] | None:
    """The names of a run's classes, where its data named them: an image folder's
    sub-folders, or a known dataset with named classes (Fashion-MNIST), from what its
    metrics.json recorded; None where nothing did (MNIST, a Kaggle CSV: the digits)."""
    from ..data.sources import DATASETS

    try:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        data = metrics.get("data", "")
    except (OSError, ValueError, AttributeError):
        return None
    named = metrics.get("class_names")  # an image folder's sub-folder names
    if isinstance(named, list) and len(named) == n_classes and all(isinstance(n, str) for n in named):
        return named
    spec = DATASETS.get(str(data).split(":", 1)[0])
    names = spec.class_names if spec else None
    return list(names) if names and len(names) == n_classes else None


def read_model_file(path: str | os.PathLike) -> ModelFile:
    """Read a model file, checking that every tensor has the shape its metadata implies."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: model file not found")
    if not os.access(path, os.R_OK):  # safetensors would call it missing
        raise UserError(f"{path}: permission denied (cannot read the model file)")
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: not a readable safetensors model file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not an mnist-logreg model (format {meta.get('format')!r}, expected {FORMAT!r})")
    config, image_shape, classes = _metadata(path, meta)
    n_features = image_shape[0] * image_shape[1]
    expected = {"linear.weight": (len(classes), n_features), "linear.bias": (len(classes),),
                "preprocess.mean": (n_features,), "preprocess.std": (n_features,), "preprocess.target_std": (2,)}
    for name in tensors:
        if name not in expected:
            raise UserError(f"{path}: unexpected tensor {name!r} (tampered with, or not this tool's model)")
    for name, shape in expected.items():
        if name not in tensors:
            raise UserError(f"{path}: missing tensor {name}")
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise UserError(f"{path}: {name} has shape {tuple(t.shape)}, expected {shape} "
                            f"for {len(classes)} classes of {image_shape[0]}x{image_shape[1]} images")
        if not np.issubdtype(t.dtype, np.floating):
            raise UserError(f"{path}: {name} holds {t.dtype} values, expected floats")
        if not np.isfinite(t).all():
            raise UserError(f"{path}: {name} holds NaN or infinite values")
    if (tensors["preprocess.std"] <= 0).any():
        raise UserError(f"{path}: preprocess.std must be positive everywhere (it divides the pixels)")
    if config.preprocess.moment_norm and (tensors["preprocess.target_std"] <= 0).any():
        raise UserError(f"{path}: preprocess.target_std must be positive (moment normalisation divides by it)")
    return ModelFile(config, image_shape, classes, {k: tensors[k].astype(np.float32) for k in expected})


def _metadata(path: Path, meta: dict) -> tuple[TrainConfig, tuple[int, int], list]:
    """The model file's settings, image shape and classes, each checked for type and range."""
    try:
        config_dict = json.loads(meta["config"])
        image_shape = json.loads(meta["image_shape"])
        classes = json.loads(meta["classes"])
    except KeyError as exc:
        raise UserError(f"{path}: damaged model metadata (no {exc})") from None
    except ValueError as exc:
        raise UserError(f"{path}: damaged model metadata ({exc})") from None
    if not (isinstance(image_shape, list) and len(image_shape) == 2
            and all(type(v) is int and 1 <= v <= MAX_SIDE for v in image_shape)):
        raise UserError(f"{path}: image_shape must be two integers from 1 to {MAX_SIDE}, got {image_shape!r}")
    if not (isinstance(classes, list) and len(classes) >= 2 and all(type(c) is int for c in classes)
            and len(set(classes)) == len(classes)):
        raise UserError(f"{path}: classes must be a list of at least two distinct integers, got {classes!r}")
    try:
        config = TrainConfig.from_dict(config_dict)
    except (ConfigError, TypeError, AttributeError, ValueError) as exc:
        raise UserError(f"{path}: damaged settings in the model file ({exc})") from None
    if config.preprocess.directions and not directions_fit(tuple(image_shape)):
        raise UserError(f"{path}: stroke directions need even image sides, image_shape is {image_shape}")
    return config, (image_shape[0], image_shape[1]), classes
