"""A scikit-learn-style estimator over our training loop; scikit-learn itself is optional.

Kept apart from ``model.py`` so that training never imports scikit-learn (most of a
second at startup): only ``from mnist_logreg import LogisticRegression`` does.
"""

from __future__ import annotations

import torch

try:  # scikit-learn is optional: with it, the estimator gets its mixins (tags, clone, is_classifier)
    from sklearn.base import BaseEstimator, ClassifierMixin

    _BASES: tuple[type, ...] = (ClassifierMixin, BaseEstimator)
except ImportError:  # a base install: the class stands alone (get_params, set_params, score are its own)
    _BASES = ()


class LogisticRegression(*_BASES):
    """A scikit-learn-style multinomial logistic regression trained by our ``fit`` loop.

    ``C`` is scikit-learn's inverse regularisation strength: the objective is
    ``C * sum(cross-entropy) + ||W||^2 / 2`` (intercept not penalised), which is our mean
    cross-entropy with ``weight_decay = 1 / (C * n_samples)``. ``solver`` is ``lbfgs``
    (full batch, the optimum), ``sgd`` or ``adam``; ``max_iter`` is L-BFGS iterations or
    epochs. Works in ``cross_val_score`` and ``GridSearchCV`` (``get_params``/``set_params``).
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

    # Our own get_params/set_params: the same with or without scikit-learn (clone and GridSearchCV use them).
    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in ("C", "solver", "max_iter", "lr", "batch_size", "device", "dtype",
                                              "random_state")}

    def set_params(self, **params):
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"invalid parameter {key!r} for LogisticRegression")
            setattr(self, key, value)
        return self

    def _features(self, X) -> torch.Tensor:
        import numpy as np

        from .train import resolve_device

        dtype = getattr(torch, self.dtype)
        X = torch.as_tensor(np.asarray(X), dtype=dtype)
        if X.dim() == 3:  # images [N, H, W]
            X = X.reshape(X.shape[0], -1)
        if X.dim() != 2:
            raise ValueError(f"X must be 2-D [n_samples, n_features], got shape {tuple(X.shape)}")
        return X.to(resolve_device(self.device))

    def fit(self, X, y):
        import numpy as np

        from .config import OptimConfig
        from .train import fit_features

        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        X = self._features(X)
        y = np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y must hold at least two classes")
        labels = torch.as_tensor(encoded, dtype=torch.long, device=X.device)
        wd = 1.0 / (self.C * X.shape[0])
        if self.solver == "lbfgs":
            optim = OptimConfig(optimizer="lbfgs", epochs=1, lbfgs_iters=self.max_iter, weight_decay=wd,
                                lbfgs_history=20)
        elif self.solver in ("sgd", "adam"):
            optim = OptimConfig(optimizer=self.solver, epochs=self.max_iter, lr=self.lr, batch_size=self.batch_size,
                                weight_decay=wd, momentum=0.9 if self.solver == "sgd" else 0.0,
                                schedule="cosine")
        else:
            raise ValueError(f"solver must be one of lbfgs, sgd, adam, got {self.solver!r}")
        model, history, _ = fit_features(X, labels, optim, n_classes=len(self.classes_), seed=self.random_state)
        self.model_ = model
        self.n_features_in_ = X.shape[1]
        self.n_iter_ = np.array([history[-1].get("iterations", len(history))])
        self.coef_ = model.linear.weight.detach().cpu().numpy().copy()
        self.intercept_ = model.linear.bias.detach().cpu().numpy().copy()
        return self

    def decision_function(self, X):
        if not hasattr(self, "model_"):
            raise ValueError("this LogisticRegression is not fitted yet; call fit first")
        X = self._features(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with {self.n_features_in_}")
        return self.model_.logits(X).cpu().numpy()

    def predict_proba(self, X):
        import numpy as np

        z = self.decision_function(X)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        import numpy as np

        return np.log(self.predict_proba(X))

    def predict(self, X):
        scores = self.decision_function(X)
        return self.classes_[scores.argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        import numpy as np

        return float(np.average(self.predict(X) == np.asarray(y), weights=sample_weight))
