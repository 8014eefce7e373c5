"""Pure metric functions: logits/probabilities and labels in, numbers out. No I/O.

Conventions follow scikit-learn (tested against ``sklearn.metrics``): the confusion
matrix has true classes in rows and predictions in columns; precision of a class that
is never predicted is 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CALIBRATION_BINS = 15


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label."""
    return (logits.argmax(dim=1) == labels).double().mean().item()


def log_loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean cross-entropy (negative log-likelihood) in nats."""
    return F.cross_entropy(logits.double(), labels).item()


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels.view(-1, 1)).any(dim=1).double().mean().item()


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """[n_classes, n_classes] int64 counts: row = true class, column = predicted class."""
    flat = labels.long() * n_classes + predictions.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).view(n_classes, n_classes)


def per_class_scores(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Precision, recall, F1 and support per class from a confusion matrix."""
    cm = cm.double()
    tp = cm.diag()
    predicted = cm.sum(dim=0)
    support = cm.sum(dim=1)
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-300), torch.zeros_like(tp))
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.long()}


def averaged_scores(scores: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Macro (unweighted) and support-weighted averages of precision, recall and F1."""
    weights = scores["support"].double() / scores["support"].sum()
    out = {}
    for name in ("precision", "recall", "f1"):
        out[name] = {"macro": scores[name].mean().item(), "weighted": (scores[name] * weights).sum().item()}
    return out


def reliability(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = CALIBRATION_BINS) -> dict[str, torch.Tensor]:
    """Per confidence bin (equal width on [0, 1]): mean confidence, accuracy and count."""
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    # Bin i holds confidences in (i/n, (i+1)/n]; a confidence of exactly 0 joins bin 0.
    bins = (confidence.double() * n_bins).ceil().long().clamp(1, n_bins) - 1
    count = torch.bincount(bins, minlength=n_bins).double()
    conf_sum = torch.bincount(bins, weights=confidence.double(), minlength=n_bins)
    acc_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    safe = count.clamp_min(1)
    return {"confidence": conf_sum / safe, "accuracy": acc_sum / safe, "count": count.long(),
            "edges": torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)}


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = CALIBRATION_BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins."""
    r = reliability(probs, labels, n_bins)
    return ((r["confidence"] - r["accuracy"]).abs() * r["count"]).sum().item() / labels.numel()


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Every metric of the evaluation report, as JSON-ready numbers and lists."""
    n_classes = logits.shape[1]
    probs = torch.softmax(logits.double(), dim=1)
    predictions = logits.argmax(dim=1)
    cm = confusion_matrix(predictions, labels, n_classes)
    scores = per_class_scores(cm)
    return {
        "accuracy": accuracy(logits, labels),
        "log_loss": log_loss(logits, labels),
        "top2_accuracy": top_k_accuracy(logits, labels, 2),
        "top3_accuracy": top_k_accuracy(logits, labels, 3),
        "expected_calibration_error": expected_calibration_error(probs, labels),
        "n_samples": int(labels.numel()),
        "per_class": {k: v.tolist() for k, v in scores.items()},
        "averages": averaged_scores(scores),
        "confusion_matrix": cm.tolist(),
    }
