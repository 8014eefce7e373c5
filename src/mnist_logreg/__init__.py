"""mnist-logreg: multinomial logistic regression on MNIST, fast and accurate, in PyTorch.

The public names are imported on first use (PEP 562), not here: ``mnist-logreg --help``
then starts without importing torch (about 1.5 s), and ``LogisticRegression`` brings in
scikit-learn (most of a second) only for those who use it.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.2.0"

# public name -> module that defines it
_EXPORTS = {
    "evaluate_run": "evaluate", "load_data": "api", "train_run": "api",
    "TrainConfig": "config", "build_config": "config",
    "Dataset": "data", "load_dataset": "data",
    "UserError": "errors",
    "LogisticRegression": "estimator",
    "SoftmaxRegression": "model",
    "Checkpoint": "runs", "load_model": "runs", "load_run": "runs",
    "TrainResult": "train", "train": "train",
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


class _Package(types.ModuleType):
    """Keeps ``mnist_logreg.train`` the function once the submodule of that name is imported.

    Importing ``mnist_logreg.train`` (the module) sets the package attribute ``train`` to
    it; an eager ``from .train import train`` used to rebind it, which a lazy package
    cannot. The submodule stays in ``sys.modules`` for ``from mnist_logreg.train import ...``.
    """

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and name in _EXPORTS and value.__name__ == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
