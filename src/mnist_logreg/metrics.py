"""Pure metric functions: logits/probabilities and labels in, numbers out. No I/O.

NumPy only, so that ``evaluate`` runs without PyTorch; training passes its tensors'
values (``np.asarray`` of a CPU tensor shares its memory). Conventions follow
scikit-learn (tested against ``sklearn.metrics``): the confusion matrix has true classes
in rows and predictions in columns; precision of a class that is never predicted is 0.
"""

from __future__ import annotations

import numpy as np

CALIBRATION_BINS = 15


def _array(x) -> np.ndarray:
    """An array from an array or a tensor (on any device: moved to the CPU first)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)


def softmax(logits) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = _array(logits).astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def accuracy(logits, labels) -> float:
    """Fraction of rows whose arg-max equals the label."""
    return float((_array(logits).argmax(axis=1) == _array(labels)).mean())


def log_loss(logits, labels) -> float:
    """Mean cross-entropy (negative log-likelihood) in nats."""
    z = _array(logits).astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    log_norm = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    labels = _array(labels).astype(np.int64)
    return float((log_norm - z[np.arange(len(labels)), labels]).mean())


def top_k_accuracy(logits, labels, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores."""
    z = _array(logits)
    k = min(k, z.shape[1])
    top = np.argsort(-z, axis=1, kind="stable")[:, :k]
    return float((top == _array(labels)[:, None]).any(axis=1).mean())


def confusion_matrix(predictions, labels, n_classes: int) -> np.ndarray:
    """[n_classes, n_classes] int64 counts: row = true class, column = predicted class."""
    flat = _array(labels).astype(np.int64) * n_classes + _array(predictions).astype(np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_scores(cm) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix."""
    cm = _array(cm).astype(np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
    denom = precision + recall
    f1 = np.where(denom > 0, 2 * precision * recall / np.maximum(denom, 1e-300), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def averaged_scores(scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Macro (unweighted) and support-weighted averages of precision, recall and F1."""
    weights = scores["support"] / scores["support"].sum()
    return {name: {"macro": float(scores[name].mean()), "weighted": float((scores[name] * weights).sum())}
            for name in ("precision", "recall", "f1")}


def reliability(probs, labels, n_bins: int = CALIBRATION_BINS) -> dict[str, np.ndarray]:
    """Per confidence bin (equal width on [0, 1]): mean confidence, accuracy and count."""
    probs = _array(probs).astype(np.float64)
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = (predicted == _array(labels)).astype(np.float64)
    # Bin i holds confidences in (i/n, (i+1)/n]; a confidence of exactly 0 joins bin 0.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64), 1, n_bins) - 1
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    safe = np.maximum(count, 1)
    return {"confidence": conf_sum / safe, "accuracy": acc_sum / safe, "count": count.astype(np.int64),
            "edges": np.linspace(0, 1, n_bins + 1)}


def expected_calibration_error(probs, labels, n_bins: int = CALIBRATION_BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins."""
    r = reliability(probs, labels, n_bins)
    return float((np.abs(r["confidence"] - r["accuracy"]) * r["count"]).sum() / _array(labels).size)


def test_scores(logits, labels) -> dict:
    """What a run records of its test set: ``test_accuracy``, ``test_loss``, ``n_test``."""
    labels = _array(labels)
    return {"test_accuracy": accuracy(logits, labels), "test_loss": log_loss(logits, labels),
            "n_test": int(labels.size)}


def classification_metrics(logits, labels) -> dict:
    """Every metric of the evaluation report, as JSON-ready numbers and lists."""
    logits, labels = _array(logits), _array(labels)
    n_classes = logits.shape[1]
    cm = confusion_matrix(logits.argmax(axis=1), labels, n_classes)
    scores = per_class_scores(cm)
    return {
        "accuracy": accuracy(logits, labels),
        "log_loss": log_loss(logits, labels),
        "top2_accuracy": top_k_accuracy(logits, labels, 2),
        "top3_accuracy": top_k_accuracy(logits, labels, 3),
        "expected_calibration_error": expected_calibration_error(softmax(logits), labels),
        "n_samples": int(labels.size),
        "per_class": {k: v.tolist() for k, v in scores.items()},
        "averages": averaged_scores(scores),
        "confusion_matrix": cm.tolist(),
    }
