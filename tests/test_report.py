import json
import re

import numpy as np
import pytest

from conftest import run_main

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_dir):
    out = tmp_path_factory.mktemp("rep") / "run"
    proc = run_main("train", "--data-dir", str(small_dir), "--out", str(out), "--optimizer", "sgd", "--lr", "0.1",
                   "--epochs", "3", "--val-size", "200", "--deskew", "--normalize", "per-pixel", "--report",
                   "--tensorboard")
    assert proc.returncode == 0, proc.stderr
    assert "report written to" in proc.stdout and "macro" in proc.stdout
    return out


def test_report_files(run):
    report = run / "report"
    names = sorted(p.name for p in report.iterdir())
    assert names == sorted(["confusion_matrix.png", "weight_templates.png", "most_confident_errors.png",
                            "training_curves.png", "reliability.png", "report.html", "report.md",
                            "evaluation.json"])
    for png in report.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    page = (report / "report.html").read_text()
    # Self-contained: five embedded figures, nothing fetched from anywhere.
    assert len(re.findall(r"src='data:image/png;base64,", page)) == 5
    assert not re.search(r"(src|href)=['\"]https?:", page)
    assert "![Confusion matrix](confusion_matrix.png)" in (report / "report.md").read_text()


def test_evaluation_json_against_scikit_learn(run, small_dir):
    skm = pytest.importorskip("sklearn.metrics")
    from mnist_logreg.data import load_dataset
    from mnist_logreg.training.checkpoint import load_run

    ev = json.loads((run / "report" / "evaluation.json").read_text())
    cm = np.array(ev["confusion_matrix"])
    assert np.trace(cm) / cm.sum() == pytest.approx(ev["accuracy"], abs=1e-12)
    metrics = json.loads((run / "metrics.json").read_text())
    assert ev["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-12)

    ds = load_dataset(data_dir=small_dir)
    pred = load_run(run).logits(ds.test_images).argmax(1).numpy()
    p, r, f, s = skm.precision_recall_fscore_support(ds.test_labels.numpy(), pred, labels=range(10), zero_division=0)
    np.testing.assert_allclose(ev["per_class"]["precision"], p, atol=1e-6)
    np.testing.assert_allclose(ev["per_class"]["recall"], r, atol=1e-6)
    np.testing.assert_allclose(ev["per_class"]["f1"], f, atol=1e-6)
    for key in ("top2_accuracy", "top3_accuracy", "expected_calibration_error", "log_loss"):
        assert key in ev


def test_tensorboard_events(run):
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_report_never_half_written(run, monkeypatch, small_dir):
    from mnist_logreg import evaluate, report

    before = (run / "report" / "evaluation.json").read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "plot_reliability", boom)
    with pytest.raises(RuntimeError):
        evaluate.evaluate_run(run, str(small_dir))
    assert (run / "report" / "evaluation.json").read_bytes() == before  # the old report is intact
    assert not [p for p in run.iterdir() if p.name.startswith(".report")]


def test_other_image_size_is_refused(run, tmp_path, mnist):
    from conftest import write_small
    from mnist_logreg.data import Dataset

    small = Dataset(mnist.train_images[:200, 4:24, 4:24].contiguous(), mnist.train_labels[:200],
                    mnist.test_images[:50, 4:24, 4:24].contiguous(), mnist.test_labels[:50])
    folder = write_small(tmp_path, small, 200, 50)
    proc = run_main("evaluate", "--run", str(run), "--data-dir", str(folder))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "trained on 28x28 images but this dataset has 20x20" in proc.stderr


def test_compare(run, tmp_path, small_dir):
    other = tmp_path / "other"
    proc = run_main("train", "--data-dir", str(small_dir), "--out", str(other), "--optimizer", "adam", "--lr", "0.01",
                   "--epochs", "2", "--val-size", "200")
    assert proc.returncode == 0, proc.stderr
    proc = run_main("compare", str(run), str(other), "--out", str(tmp_path / "cmp.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "optim.optimizer" in proc.stdout and "test_accuracy" in proc.stdout
    rows = (tmp_path / "cmp.csv").read_text().splitlines()
    assert len(rows) == 3 and "sgd" in rows[1] and "adam" in rows[2]
    proc = run_main("compare", str(tmp_path))
    assert proc.returncode == 2 and "not a finished run" in proc.stderr
