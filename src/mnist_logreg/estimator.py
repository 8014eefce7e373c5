"""A scikit-learn-style estimator over our training loop; scikit-learn itself is optional.

Kept apart from ``model.py`` so that training never imports scikit-learn (most of a
second at startup): only ``from mnist_logreg import LogisticRegression`` does. Where
scikit-learn is installed the estimator is one of its own: ``BaseEstimator``'s
``get_params``/``set_params``, its input validation (``validate_data``), target checks and
``check_is_fitted``, and it passes scikit-learn's estimator checks (``tests/test_model.py``).
Without it, the same class stands alone with plain equivalents of those.
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data

    SKLEARN = True
except ImportError:  # a base install
    SKLEARN = False

PARAMS = ("C", "solver", "max_iter", "lr", "batch_size", "device", "dtype", "random_state")


class _Standalone:
    """What scikit-learn's base classes give, for a base install without it."""

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in PARAMS}

    def set_params(self, **params):
        for key, value in params.items():
            if key not in PARAMS:
                raise ValueError(f"invalid parameter {key!r} for LogisticRegression")
            setattr(self, key, value)
        return self

    def score(self, X, y, sample_weight=None) -> float:
        return float(np.average(self.predict(X) == np.asarray(y), weights=sample_weight))


class LogisticRegression(*((ClassifierMixin, BaseEstimator) if SKLEARN else (_Standalone,))):
    """A scikit-learn-style multinomial logistic regression trained by our ``fit`` loop.

    ``C`` is scikit-learn's inverse regularisation strength: the objective is
    ``C * sum(cross-entropy) + ||W||^2 / 2`` (intercept not penalised), which is our mean
    cross-entropy with ``weight_decay = 1 / (C * n_samples)``. ``solver`` is ``lbfgs``
    (full batch, the optimum), ``sgd`` or ``adam``; ``max_iter`` is L-BFGS iterations or
    epochs. X is [n_samples, n_features]; with two classes ``decision_function`` is 1-D
    (the second class's score), as scikit-learn's classifiers give it.
    """

    def __init__(self, C: float = 1.0, solver: str = "lbfgs", max_iter: int = 100, lr: float = 0.1,
                 batch_size: int = 256, device: str = "cpu", dtype: str = "float64", random_state: int = 0):
        self.C = C
        self.solver = solver
        self.max_iter = max_iter
        self.lr = lr
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    def _validate(self, X, y=None, reset: bool = False):
        """X as a finite float array [n_samples, n_features] (and y, when given, checked as class labels)."""
        if SKLEARN:
            kw = dict(reset=reset, dtype=(np.float64, np.float32), accept_sparse=False)
            if y is None:
                return validate_data(self, X, **kw), None
            X, y = validate_data(self, X, y, **kw)
            check_classification_targets(y)
            return X, y
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be 2-D [n_samples, n_features] with at least one sample, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with {self.n_features_in_}")
        if y is not None:
            y = np.asarray(y)
            if y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise ValueError(f"y must be 1-D with one label per sample of X, got shape {y.shape}")
        return X, y

    def _tensor(self, X: np.ndarray) -> torch.Tensor:
        from .training.train import resolve_device

        return torch.as_tensor(np.ascontiguousarray(X), dtype=getattr(torch, self.dtype)).to(
            resolve_device(self.device))

    def fit(self, X, y):
        from .config import OptimConfig
        from .training.train import fit_features

        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        if self.solver not in ("lbfgs", "sgd", "adam"):
            raise ValueError(f"solver must be one of lbfgs, sgd, adam, got {self.solver!r}")
        if y is None:
            raise ValueError("LogisticRegression requires y to be passed, but the target y is None")
        X, y = self._validate(X, y, reset=True)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            # scikit-learn's words, which its estimator checks look for
            raise ValueError("this solver needs samples of at least 2 classes in the data, but the data contains "
                             f"only one class: {self.classes_[0]!r}")
        features = self._tensor(X)
        labels = torch.as_tensor(encoded.reshape(-1), dtype=torch.long, device=features.device)
        wd = 1.0 / (self.C * features.shape[0])
        if self.solver == "lbfgs":
            optim = OptimConfig(optimizer="lbfgs", lr=1.0, epochs=1, lbfgs_iters=self.max_iter, weight_decay=wd,
                                lbfgs_history=20)
        else:
            optim = OptimConfig(optimizer=self.solver, epochs=self.max_iter, lr=self.lr, batch_size=self.batch_size,
                                weight_decay=wd, momentum=0.9 if self.solver == "sgd" else 0.0,
                                nesterov=False, schedule="cosine")
        model, history, _ = fit_features(features, labels, optim, n_classes=len(self.classes_),
                                         seed=self.random_state)
        self.model_ = model
        self.n_iter_ = np.array([history[-1].get("iterations", len(history))])
        self.coef_ = model.linear.weight.detach().cpu().numpy().copy()
        self.intercept_ = model.linear.bias.detach().cpu().numpy().copy()
        return self

    def _logits(self, X) -> np.ndarray:
        if SKLEARN:
            check_is_fitted(self)
        elif not hasattr(self, "model_"):
            raise ValueError("this LogisticRegression is not fitted yet; call fit first")
        X, _ = self._validate(X)
        return self.model_.logits(self._tensor(X)).cpu().numpy()

    def decision_function(self, X) -> np.ndarray:
        z = self._logits(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X) -> np.ndarray:
        z = self._logits(X)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        best = self._logits(X).argmax(axis=1)  # first: an unfitted estimator says so
        return self.classes_[best]
