"""The on-disk cache: identical results, damaged files rebuilt, concurrent runs safe, failures harmless."""

import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from conftest import run_main
from mnist_logreg import build_config
from mnist_logreg import cache as disk_cache
from mnist_logreg.data import load_dataset
from mnist_logreg.training.train import prepare


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("MNIST_LOGREG_NO_CACHE", raising=False)
    return tmp_path / "c" / "cache"


def entries(folder):
    return sorted(folder.glob("*.bin")) if folder.is_dir() else []


def test_entry_round_trip_and_checks():
    key = {"what": "test", "n": 1}
    entry = {"a": torch.randn(3, 5), "b": torch.arange(7, dtype=torch.uint8), "empty": torch.zeros(0, 4),
             "names": ["x", "y"]}
    raw = bytearray(b"".join(bytes(p) for p in disk_cache.encode(key, entry)))
    out = disk_cache.decode(raw, key)
    assert torch.equal(out["a"], entry["a"]) and torch.equal(out["b"], entry["b"]) and out["names"] == ["x", "y"]
    assert out["empty"].shape == (0, 4)
    with pytest.raises(ValueError, match="another key"):
        disk_cache.decode(raw, {"what": "other"})
    damaged = bytearray(raw)
    damaged[-70] ^= 1  # a bit of tensor "a" or "b"
    with pytest.raises(ValueError, match="damaged"):
        disk_cache.decode(damaged, key)
    with pytest.raises(ValueError):
        disk_cache.decode(raw[:-100], key)


def test_cached_features_equal_fresh_ones(cache_dir, small_dir):
    config = build_config("moment-normalized", val_size=200)  # one entry: the features (no damaged copies)
    os.environ["MNIST_LOGREG_NO_CACHE"] = "1"
    try:
        dataset = load_dataset(data_dir=small_dir)
        fresh = prepare(config, dataset, torch.device("cpu"))
    finally:
        del os.environ["MNIST_LOGREG_NO_CACHE"]
    assert entries(cache_dir) == []
    first = prepare(config, dataset, torch.device("cpu"))  # builds and stores
    assert len(entries(cache_dir)) == 1
    second = prepare(config, dataset, torch.device("cpu"))  # reads back
    for p in (first, second):
        assert torch.equal(p.features, fresh.features) and torch.equal(p.val[0], fresh.val[0])
        assert torch.equal(p.preprocessor.mean, fresh.preprocessor.mean)
        assert torch.equal(p.preprocessor.target_std, fresh.preprocessor.target_std)
    # Other settings, another entry.
    prepare(build_config("moment-normalized", val_size=200, gamma=0.5), dataset, torch.device("cpu"))
    assert len(entries(cache_dir)) == 2
    # Damaged copies: their own entry, and the features of the training split with them.
    with_copies = prepare(build_config("moment-normalized", val_size=200, damaged=1.0), dataset, torch.device("cpu"))
    assert len(entries(cache_dir)) == 4 and with_copies.n_damaged > 1700


def test_a_damaged_entry_is_ignored_and_rebuilt(cache_dir, small_dir, caplog):
    config = build_config("deskewed", val_size=200)
    dataset = load_dataset(data_dir=small_dir)
    good = prepare(config, dataset, torch.device("cpu")).features.clone()
    for damage in ("flip", "truncate"):
        for path in entries(cache_dir):
            data = bytearray(path.read_bytes())
            if damage == "flip":
                data[len(data) // 2] ^= 0xFF
            else:
                data = data[: len(data) // 3]
            path.write_bytes(bytes(data))
        with caplog.at_level(logging.WARNING, logger="mnist_logreg.cache"):
            again = prepare(config, load_dataset(data_dir=small_dir), torch.device("cpu"))
        assert torch.equal(again.features, good)
        assert "ignoring the cache file" in caplog.text
        caplog.clear()
        for path in entries(cache_dir):  # rewritten whole
            assert disk_cache.load(json.loads(_header(path))["key"]) is not None


def _header(path):
    raw = path.read_bytes()
    start = len(disk_cache.MAGIC) + 8
    n = int.from_bytes(raw[len(disk_cache.MAGIC):start], "little")
    return raw[start:start + n]


def test_an_unwritable_cache_costs_nothing_but_a_warning(tmp_path, monkeypatch, small_dir, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(blocker))
    with caplog.at_level(logging.WARNING, logger="mnist_logreg.cache"):
        prepared = prepare(build_config("deskewed", val_size=200, damaged=1.0), load_dataset(data_dir=small_dir),
                           torch.device("cpu"))
    assert prepared.features.shape == (1800 + prepared.n_damaged, 784) and prepared.n_damaged > 1700
    assert "cannot write the cache file" in caplog.text


def test_two_runs_started_together_share_the_cache_safely(tmp_path, small_dir, monkeypatch, caplog):
    env = dict(os.environ, MNIST_LOGREG_CACHE=str(tmp_path / "c"), PYTHONWARNINGS="ignore")
    env.pop("MNIST_LOGREG_NO_CACHE", None)
    procs = [subprocess.Popen([sys.executable, "-m", "mnist_logreg", "train", "--data-dir", str(small_dir),
                               "--out", str(tmp_path / f"run{i}"), "--epochs", "2"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    metrics = [json.loads((tmp_path / f"run{i}" / "metrics.json").read_text()) for i in range(2)]
    assert metrics[0]["test_accuracy"] == metrics[1]["test_accuracy"]
    assert metrics[0]["selection"]["val_accuracy"] == metrics[1]["selection"]["val_accuracy"]
    folder = tmp_path / "c" / "cache"
    assert not list(folder.glob(".*.tmp"))
    assert len(entries(folder)) == 7  # the dataset, the damaged copies and five candidates' features
    # A third run (in this process: the two above are the concurrency) reads them all back
    # and trains the same model.
    monkeypatch.setenv("MNIST_LOGREG_CACHE", env["MNIST_LOGREG_CACHE"])
    monkeypatch.delenv("MNIST_LOGREG_NO_CACHE", raising=False)
    with caplog.at_level(logging.INFO, logger="mnist_logreg"):
        proc = run_main("train", "--data-dir", str(small_dir), "--out", str(tmp_path / "run3"), "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    assert sum(m.startswith("read from the cache") for m in caplog.messages) == 7
    third = json.loads((tmp_path / "run3" / "metrics.json").read_text())
    assert third["test_accuracy"] == metrics[0]["test_accuracy"] and third["test_loss"] == metrics[0]["test_loss"]


def test_the_folder_is_kept_under_its_size_least_recently_used_first(cache_dir):
    entry = {"x": torch.zeros(1000)}  # 4,000 bytes
    paths = [disk_cache.store({"n": i}, entry) for i in range(3)]
    for i, path in enumerate(paths):
        os.utime(path, (1000 + i, 1000 + i))
    assert disk_cache.load({"n": 0}) is not None  # used now: the most recent
    newest = disk_cache.store({"n": 3}, entry)
    disk_cache.prune(cache_dir, keep=newest, max_bytes=3 * newest.stat().st_size)
    assert sorted(p.name for p in entries(cache_dir)) == sorted(p.name for p in (paths[0], paths[2], newest))
