import numpy as np
import pytest
import torch

from mnist_logreg import metrics

skm = pytest.importorskip("sklearn.metrics")


@pytest.fixture(scope="module")
def case():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (2000,), generator=g)
    logits = torch.randn(2000, 10, generator=g) * 2
    logits[torch.arange(2000), labels] += 2.5  # mostly right, sometimes not
    logits[:, 7] -= 20  # class 7 is never predicted: precision 0 by convention
    return logits, labels


def test_accuracy_and_log_loss(case):
    logits, labels = case
    probs = torch.softmax(logits.double(), 1).numpy()
    assert metrics.accuracy(logits, labels) == pytest.approx(skm.accuracy_score(labels, logits.argmax(1)), abs=1e-12)
    assert metrics.log_loss(logits, labels) == pytest.approx(skm.log_loss(labels, probs, labels=range(10)), rel=1e-6)


def test_confusion_matrix(case):
    logits, labels = case
    ours = metrics.confusion_matrix(logits.argmax(1), labels, 10).numpy()
    np.testing.assert_array_equal(ours, skm.confusion_matrix(labels, logits.argmax(1), labels=range(10)))
    assert np.trace(ours) / ours.sum() == pytest.approx(metrics.accuracy(logits, labels))


def test_per_class_and_averages(case):
    logits, labels = case
    pred = logits.argmax(1).numpy()
    cm = metrics.confusion_matrix(logits.argmax(1), labels, 10)
    scores = metrics.per_class_scores(cm)
    p, r, f, s = skm.precision_recall_fscore_support(labels.numpy(), pred, labels=range(10), zero_division=0)
    np.testing.assert_allclose(scores["precision"].numpy(), p, atol=1e-6)
    np.testing.assert_allclose(scores["recall"].numpy(), r, atol=1e-6)
    np.testing.assert_allclose(scores["f1"].numpy(), f, atol=1e-6)
    np.testing.assert_array_equal(scores["support"].numpy(), s)
    avg = metrics.averaged_scores(scores)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        for kind in ("macro", "weighted"):
            ref = fn(labels.numpy(), pred, labels=range(10), average=kind, zero_division=0)
            assert avg[name][kind] == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("k", [2, 3])
def test_top_k(case, k):
    logits, labels = case
    ref = skm.top_k_accuracy_score(labels.numpy(), logits.double().numpy(), k=k, labels=range(10))
    assert metrics.top_k_accuracy(logits, labels, k) == pytest.approx(ref, abs=1e-12)


def test_calibration_error_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0])
    # Bins (width 1/15): 0.9 -> bin 13, 0.8 -> bin 11, 0.7 -> bin 10, 0.6 -> bin 8; one sample each.
    expected = (abs(0.9 - 1) + abs(0.8 - 0) + abs(0.7 - 1) + abs(0.6 - 1)) / 4
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(expected)
    r = metrics.reliability(probs, labels)
    assert r["count"].sum() == 4 and r["count"][13] == 1


def test_perfectly_calibrated_is_near_zero():
    g = torch.Generator().manual_seed(1)
    conf = torch.rand(200000, generator=g, dtype=torch.float64) * 0.5 + 0.5
    labels = (torch.rand(200000, generator=g, dtype=torch.float64) > conf).long()  # class 0 with prob conf
    probs = torch.stack([conf, 1 - conf], 1)
    assert metrics.expected_calibration_error(probs, labels) < 0.01


def test_classification_metrics_is_json_ready(case):
    import json

    logits, labels = case
    out = metrics.classification_metrics(logits, labels)
    json.dumps(out)
    cm = np.array(out["confusion_matrix"])
    assert np.trace(cm) / cm.sum() == pytest.approx(out["accuracy"])
