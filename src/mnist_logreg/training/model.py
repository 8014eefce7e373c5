"""The model: exactly one linear layer from features to class logits, and the whole
recogniser (``Classifier``: the run's preprocessing in front of that layer)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .preprocess import Preprocessor

# Evaluation needs no gradient, so it can take big bites; this bounds its memory.
EVAL_CHUNK = 16384


class SoftmaxRegression(nn.Module):
    """Multinomial logistic regression: ``logits = x @ W.T + b``.

    It returns logits; the softmax and the cross-entropy live outside (in the loss,
    in ``predict_proba``), where they can be fused and computed stably.
    """

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(n_features, n_classes)

    @property
    def n_features(self) -> int:
        return self.linear.in_features

    @property
    def n_classes(self) -> int:
        return self.linear.out_features

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """nn.Linear's own initialisation (uniform in +-1/sqrt(fan_in)), from ``generator``."""
        bound = 1.0 / math.sqrt(self.n_features)
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound, generator=generator)
            self.linear.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    @torch.no_grad()
    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Logits [N, C] of features [N, D] for evaluation: no graph, in chunks of ``EVAL_CHUNK`` rows."""
        w, b = self.linear.weight, self.linear.bias
        # W @ x^T is the fast layout for 10 outputs (see gradients.TorchEngine); logits come back [N, C].
        return torch.cat([torch.addmm(b.view(-1, 1), w, chunk.t()).t() for chunk in features.split(EVAL_CHUNK)])


class Classifier(nn.Module):
    """A run's ``Preprocessor`` in front of its ``SoftmaxRegression``: images [N, H, W] -> logits.

    The one inference path. ``evaluate``, ``predict`` and ``serve`` call ``logits``; the
    exported ONNX and TorchScript graphs are ``forward`` with a softmax on top. (Training
    preprocesses the whole training set once instead, through the same ``Preprocessor``.)
    """

    def __init__(self, preprocess: Preprocessor, model: SoftmaxRegression):
        super().__init__()
        self.preprocess = preprocess
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.preprocess(images))

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for evaluation: no graph, the linear layer in chunks (``SoftmaxRegression.logits``)."""
        return self.model.logits(self.preprocess(images))
