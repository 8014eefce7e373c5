import numpy as np
import pytest
import torch

from mnist_logreg import metrics

skm = pytest.importorskip("sklearn.metrics")


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    logits = (rng.standard_normal((2000, 10)) * 2).astype(np.float32)
    logits[np.arange(2000), labels] += 2.5  # mostly right, sometimes not
    logits[:, 7] -= 20  # class 7 is never predicted: precision 0 by convention
    return logits, labels


def test_accuracy_and_log_loss(case):
    logits, labels = case
    probs = metrics.softmax(logits)
    assert metrics.accuracy(logits, labels) == pytest.approx(skm.accuracy_score(labels, logits.argmax(1)), abs=1e-12)
    assert metrics.log_loss(logits, labels) == pytest.approx(skm.log_loss(labels, probs, labels=range(10)), rel=1e-6)


def test_confusion_matrix(case):
    logits, labels = case
    ours = metrics.confusion_matrix(logits.argmax(1), labels, 10)
    np.testing.assert_array_equal(ours, skm.confusion_matrix(labels, logits.argmax(1), labels=range(10)))
    assert np.trace(ours) / ours.sum() == pytest.approx(metrics.accuracy(logits, labels))


def test_per_class_and_averages(case):
    logits, labels = case
    pred = logits.argmax(1)
    cm = metrics.confusion_matrix(pred, labels, 10)
    scores = metrics.per_class_scores(cm)
    p, r, f, s = skm.precision_recall_fscore_support(labels, pred, labels=range(10), zero_division=0)
    np.testing.assert_allclose(scores["precision"], p, atol=1e-6)
    np.testing.assert_allclose(scores["recall"], r, atol=1e-6)
    np.testing.assert_allclose(scores["f1"], f, atol=1e-6)
    np.testing.assert_array_equal(scores["support"], s)
    avg = metrics.averaged_scores(scores)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        for kind in ("macro", "weighted"):
            ref = fn(labels, pred, labels=range(10), average=kind, zero_division=0)
            assert avg[name][kind] == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("k", [2, 3])
def test_top_k(case, k):
    logits, labels = case
    ref = skm.top_k_accuracy_score(labels, logits.astype(np.float64), k=k, labels=range(10))
    assert metrics.top_k_accuracy(logits, labels, k) == pytest.approx(ref, abs=1e-12)


def test_calibration_error_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 1, 1, 0])
    # Bins (width 1/15): 0.9 -> bin 13, 0.8 -> bin 11, 0.7 -> bin 10, 0.6 -> bin 8; one sample each.
    expected = (abs(0.9 - 1) + abs(0.8 - 0) + abs(0.7 - 1) + abs(0.6 - 1)) / 4
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(expected)
    r = metrics.reliability(probs, labels)
    assert r["count"].sum() == 4 and r["count"][13] == 1


def test_perfectly_calibrated_is_near_zero():
    rng = np.random.default_rng(1)
    conf = rng.random(200000) * 0.5 + 0.5
    labels = (rng.random(200000) > conf).astype(np.int64)  # class 0 with prob conf
    probs = np.stack([conf, 1 - conf], 1)
    assert metrics.expected_calibration_error(probs, labels) < 0.01


def test_tensors_are_read_as_their_values(case):
    """Training passes PyTorch tensors: the same numbers as the arrays they hold."""
    logits, labels = case
    t_logits, t_labels = torch.from_numpy(logits), torch.from_numpy(labels)
    assert metrics.accuracy(t_logits, t_labels) == metrics.accuracy(logits, labels)
    assert metrics.log_loss(t_logits, t_labels) == pytest.approx(
        torch.nn.functional.cross_entropy(t_logits.double(), t_labels).item(), rel=1e-12)


def test_classification_metrics_is_json_ready(case):
    import json

    logits, labels = case
    out = metrics.classification_metrics(logits, labels)
    json.dumps(out)
    cm = np.array(out["confusion_matrix"])
    assert np.trace(cm) / cm.sum() == pytest.approx(out["accuracy"])
