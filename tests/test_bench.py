import pytest
import torch

from mnist_logreg.bench import format_table, full_batch_epoch, tutorial_loop
from mnist_logreg.data import Dataset


@pytest.fixture(scope="module")
def tiny(mnist):
    return Dataset(mnist.train_images[:1000], mnist.train_labels[:1000], mnist.test_images[:300],
                   mnist.test_labels[:300])


def test_tutorial_loop_trains_and_reports_its_models_accuracy(tiny):
    """The row's accuracy is a plain evaluation of the model it trained, and it did train."""
    pytest.importorskip("torchvision")
    from mnist_logreg.metrics import accuracy

    torch.manual_seed(0)
    untrained = torch.nn.Linear(28 * 28, 10)  # the loop's own initialisation (same seed)
    seconds, acc, model = tutorial_loop(tiny, epochs=1, seed=0)
    assert seconds > 0
    assert not torch.equal(model.weight, untrained.weight)
    with torch.no_grad():
        logits = model(tiny.test_images.reshape(-1, 28 * 28).float() / 255)
    assert acc == accuracy(logits, tiny.test_labels)


def test_our_rows_report_their_models_accuracy(tiny):
    from mnist_logreg.api import test_metrics
    from mnist_logreg.bench import _ours

    row, checkpoint = _ours(tiny, "tutorial", 2, "cpu", epochs=2)
    assert row.epochs == 2 and row.repeats == 2
    assert row.test_accuracy == test_metrics(checkpoint, tiny)["test_accuracy"]
    assert row.samples_per_second == pytest.approx(2 * 1000 / row.train_seconds)


def test_floor_and_full_batch_figures(tiny):
    floor, full = full_batch_epoch(tiny, torch.device("cpu"), rounds=2, repeats=2)
    assert floor["read_bandwidth_gb_s"] > 0 and floor["matmul_gflop_s"] > 0
    assert full["flops"] == 2 * 2 * 1000 * 784 * 10 and full["multiple_of_floor"] > 0
    assert full["shape"] == [1000, 784] and full["pytorch_ops_epoch_seconds"] > 0


def test_table_format():
    result = {"rows": [dict(method="a", epochs=1, train_seconds=2.0, samples_per_second=10.0, test_accuracy=0.5,
                            speedup_vs_tutorial=1.0)],
              "full_batch_epoch": {"epoch_seconds": 0.01, "floor_seconds": 0.005, "multiple_of_floor": 2.0,
                                   "shape": [1000, 784], "path": "C kernel", "pytorch_ops_epoch_seconds": 0.02},
              "machine": {"read_bandwidth_gb_s": 30.0, "matmul_gflop_s": 100.0}, "device": "cpu", "threads": 2,
              "torch": "x", "inference_images_per_second": 1e6, "peak_rss_mb": 100.0}
    text = format_table(result)
    assert "| a | 1 | 2.000 | 10 | 50.00% | 1.0x |" in text and "2.00x the floor" in text
