import json

import pytest
import torch

from conftest import one_line_error, run_cli, run_main


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, small_dir):
    out = tmp_path_factory.mktemp("run") / "r"
    proc = run_cli("train", "--data-dir", str(small_dir), "--out", str(out), "--optimizer", "sgd", "--lr", "0.1",
                   "--epochs", "2", "--val-size", "200", "--normalize", "per-pixel", "--deskew")
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and str(out) in proc.stdout
    return out


def test_train_writes_the_run_folder(small_run):
    names = sorted(p.name for p in small_run.iterdir())
    assert names == ["config.json", "history.csv", "metrics.json", "model.safetensors"]
    metrics = json.loads((small_run / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_seconds", "samples_per_second", "epochs", "device", "seed"):
        assert key in metrics
    assert metrics["epochs"] == 2 and metrics["device"] == "cpu" and metrics["n_test"] == 500
    assert 0.6 < metrics["test_accuracy"] <= 1
    config = json.loads((small_run / "config.json").read_text())
    assert config["optim"]["lr"] == 0.1 and config["preprocess"]["deskew"] is True
    header = (small_run / "history.csv").read_text().splitlines()[0]
    assert "train_loss" in header and "val_accuracy" in header
    assert not list(small_run.glob("*.tmp")) and not list(small_run.glob(".*"))


def test_evaluate_reproduces_the_metrics(small_run, small_dir):
    proc = run_main("evaluate", "--run", str(small_run), "--data-dir", str(small_dir), "--no-report")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    saved = json.loads((small_run / "metrics.json").read_text())
    assert out["test_accuracy"] == saved["test_accuracy"]
    assert out["test_loss"] == pytest.approx(saved["test_loss"], rel=1e-6)


def test_saved_normalisation_is_reused(small_run):
    from mnist_logreg import load_run

    ck = load_run(small_run)
    assert ck.preprocessor.config.normalize == "per-pixel" and ck.preprocessor.config.deskew
    assert ck.preprocessor.std.min() >= 0.1 and ck.preprocessor.mean.abs().sum() > 0


@pytest.mark.parametrize(
    "args, needles",
    [
        (["train", "--preset", "nope"], ["unknown preset 'nope'"]),
        (["train", "--lr", "-1"], ["--lr must be a positive number"]),
        (["train", "--lr", "abc"], ["argument --lr: invalid float value: 'abc'"]),
        (["train", "--epochs", "2.5"], ["argument --epochs: invalid int value"]),
        (["train", "--optimizer", "rmsprop"], ["argument --optimizer: invalid choice"]),
        (["train", "--rotate", "-3"], ["--rotate must be a number >= 0"]),
        (["train", "--scale-min", "0"], ["--scale-min must be > 0"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    ],
)
def test_bad_flags_are_one_line_errors(args, needles, tmp_path):
    one_line_error(run_main(*args, "--out", str(tmp_path / "o")) if args[0] == "train" else run_main(*args), *needles)
    assert not (tmp_path / "o").exists()


def test_evaluate_without_model(tmp_path):
    one_line_error(run_main("evaluate", "--run", str(tmp_path)), "no model.safetensors")
    one_line_error(run_main("evaluate", "--run", str(tmp_path / "missing")), "no such run folder")


def test_model_of_the_wrong_shape(small_run, tmp_path):
    import shutil

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(small_run, bad)
    with safe_open(str(small_run / "model.safetensors"), "pt") as fh:
        meta = fh.metadata()
    tensors = load_file(str(small_run / "model.safetensors"))
    tensors["linear.weight"] = torch.zeros(10, 100)
    save_file(tensors, str(bad / "model.safetensors"), metadata=meta)
    one_line_error(run_main("evaluate", "--run", str(bad)), "linear.weight has shape (10, 100), expected (10, 784)")


def test_corrupt_model_file(small_run, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(small_run, bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    one_line_error(run_main("evaluate", "--run", str(bad)), "model.safetensors")


class _Payload:
    """Unpickling this creates the folder ``path``: the proof that a pickle was loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return os.mkdir, (self.path,)


def test_pickle_is_never_loaded(small_run, tmp_path):
    """A pickle renamed to model.safetensors is refused, not executed."""
    import pickle
    import shutil

    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(live)))
    assert live.is_dir()  # the payload runs code when unpickled
    bad = tmp_path / "bad"
    shutil.copytree(small_run, bad)
    marker = tmp_path / "pwned"
    (bad / "model.safetensors").write_bytes(pickle.dumps({"linear.weight": _Payload(marker)}))
    one_line_error(run_main("evaluate", "--run", str(bad)), "not a readable safetensors model file")
    assert not marker.exists()


def test_corrupt_dataset(tmp_path, small_dir):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_dir, data)
    (data / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bnot gzip at all")
    one_line_error(run_main("train", "--data-dir", str(data), "--out", str(tmp_path / "o")), "corrupt gzip")
    assert not (tmp_path / "o").exists()


def test_offline_empty_data_dir(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_main("train", "--data-dir", str(empty), "--dataset", "fashion-mnist", "--out", str(tmp_path / "o"))
    one_line_error(proc, "cannot download fashion-mnist", str(empty))


@pytest.mark.slow
def test_tutorial_preset_on_real_mnist(tmp_path):
    proc = run_main("train", "--preset", "tutorial", "--out", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert 0.815 <= metrics["test_accuracy"] <= 0.835  # the tutorial's ~82.5%
    assert metrics["epochs"] == 5 and metrics["n_train"] == 60000


def test_version_is_the_changelogs_latest():
    """--version, the package metadata and the newest CHANGELOG entry say the same version."""
    import re

    from conftest import ROOT
    from mnist_logreg import __version__

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    latest = re.search(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    proc = run_main("--version")
    assert proc.stdout.strip() == f"mnist-logreg {__version__}" and __version__ == project == latest.group(1)


def test_a_split_that_leaves_too_little_to_train_on_is_refused(small_dir, tmp_path):
    """--val-size of all images but a few trained on those few and ended in 'training
    diverged'; now it is refused naming the flag and the largest value that trains."""
    proc = run_main("train", "--data", str(small_dir), "--val-size", "1995", "--out", str(tmp_path / "run"))
    one_line_error(proc, "--val-size 1995 leaves 5 of the 2,000 training images", "--val-size at most 1,990")
    assert not (tmp_path / "run").exists()
    one_line_error(run_main("train", "--preset", "", "--out", str(tmp_path / "run")), "unknown preset ''")
