"""Data layer: IDX files -> uint8 tensors, with the bundled MNIST and a download fallback.

The names below load lazily (PEP 562): ``predict`` reads a Kaggle CSV with ``formats``
(NumPy only), and importing this package must not import PyTorch for it.
"""

import importlib

_NAMES = {"DATASETS": "datasets", "Dataset": "datasets", "default_val_size": "datasets",
          "load_dataset": "datasets", "train_val_split": "datasets", "read_idx": "idx", "write_idx": "idx"}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
