"""mnist-logreg: multinomial logistic regression on MNIST, fast and accurate, in PyTorch.

The public names are imported on first use (PEP 562), not here: ``mnist-logreg --help``
then starts without importing torch (about 1.5 s), and ``LogisticRegression`` brings in
scikit-learn (most of a second) only for those who use it.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

# public name -> module that defines it
_EXPORTS = {
    "evaluate_run": "evaluate", "load_data": "api", "train_run": "api",
    "TrainConfig": "config", "build_config": "config",
    "Dataset": "data", "load_dataset": "data",
    "UserError": "errors",
    "LogisticRegression": "estimator",
    "SoftmaxRegression": "training.model",
    "Checkpoint": "training.checkpoint", "load_model": "training.checkpoint", "load_run": "training.checkpoint",
    "TrainResult": "training.train", "train": "training.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mnist_logreg' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
