"""Pure metric functions: logits/probabilities and labels in, numbers out. No I/O."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label."""
    return (logits.argmax(dim=1) == labels).double().mean().item()


def log_loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean cross-entropy (negative log-likelihood) in nats."""
    return F.cross_entropy(logits.double(), labels).item()
