"""Damaged training copies (``training/damage.py``): what they are made of, and what training takes."""

import dataclasses

import numpy as np
import pytest
import torch

from conftest import one_line_error, run_main
from mnist_logreg import build_config
from mnist_logreg.data import train_val_split
from mnist_logreg.reading import images, lite
from mnist_logreg.reading.modelfile import shipped_run
from mnist_logreg.training import damage
from mnist_logreg.training.train import prepare


@pytest.fixture(scope="module")
def test_digits(mnist):
    picked = np.arange(0, 10000, 250)  # 40 test digits, every class
    return mnist.test_images.numpy()[picked], mnist.test_labels.numpy()[picked]


def test_each_kind_of_damage_changes_the_digit_and_leaves_it_readable(test_digits):
    """Damage a person would still read: the shipped model reads most of each kind, and
    none of them leaves the digit as it was."""
    digits, labels = test_digits
    model = lite.load_run(shipped_run())
    for name, family in damage.FAMILIES.items():
        rng = np.random.default_rng(0)
        out = np.stack([family(d / 255.0, rng) for d in digits])
        assert out.shape == (len(digits), 28, 28) and out.min() >= 0 and out.max() <= 1, name
        changed = np.abs(out - digits / 255.0).max(axis=(1, 2)) > 0.2
        assert changed.mean() >= 0.9, (name, changed.mean())
        read = [_read(o) for o in out]
        ok = np.array([r is not None for r in read])
        seen = np.stack([r for r in read if r is not None])
        accuracy = (np.argmax(model.predict_proba(seen), axis=1) == labels[ok]).sum() / len(labels)
        assert accuracy >= 0.7, (name, accuracy)  # a "no digit" answer counts as wrong


def _read(x: np.ndarray) -> np.ndarray | None:
    """What the model sees of a float image in [0, 1], as ``predict`` reads it (None: "no digit")."""
    from PIL import Image

    try:
        return images.to_mnist(Image.fromarray(np.round(x * 255).astype(np.uint8)))
    except images.NoDigit:
        return None


def test_copies_are_the_same_for_any_number_of_processes(test_digits, monkeypatch):
    monkeypatch.setattr(damage, "CHUNK", 15)  # 40 digits: three chunks
    digits, _ = test_digits
    one, refused_one = damage.damage_round(digits, seed=3, rnd=1, workers=1)
    two, refused_two = damage.damage_round(digits, seed=3, rnd=1, workers=2)
    assert np.array_equal(one, two) and np.array_equal(refused_one, refused_two)
    other, _ = damage.damage_round(digits, seed=3, rnd=2, workers=1)
    assert not np.array_equal(one, other)  # each round its own damage


def test_a_fraction_of_a_copy_per_digit():
    idx = np.arange(100, 200)
    assert np.array_equal(damage.pick(idx, 1.5, 0), idx)
    half = damage.pick(idx, 1.5, 1)
    assert len(half) == 50 and len(set(half)) == 50 and set(half) <= set(idx) and np.all(np.diff(half) > 0)
    assert np.array_equal(damage.pick(idx, 1.5, 1), half)  # seeded
    assert len(damage.pick(idx, 1.5, 2)) == 0


def test_training_adds_copies_of_the_training_split_only(mnist, monkeypatch):
    """With a damage that changes nothing, the copies are the reader's view of exactly the
    training split's digits, in order: none of the validation split's."""
    monkeypatch.setattr(damage, "FAMILIES", {"none": lambda x, rng: x})
    monkeypatch.setattr(damage, "version", lambda: "test: no damage")
    small = dataclasses.replace(mnist, train_images=mnist.train_images[:300], train_labels=mnist.train_labels[:300])
    config = build_config(select=False, damaged=1.0, val_size=60)
    prepared = prepare(config, small, torch.device("cpu"))
    train_idx, _ = train_val_split(300, 60)
    expected = np.stack([_read(d / 255.0) for d in small.train_images[train_idx].numpy()])
    assert prepared.images.shape[0] == 240 + 240
    assert np.array_equal(prepared.images[240:].numpy(), expected)
    assert torch.equal(prepared.labels[240:], small.train_labels[train_idx])
    off = prepare(dataclasses.replace(config, augment=dataclasses.replace(config.augment, damaged=0.0)), small,
                  torch.device("cpu"))
    assert off.images.shape[0] == 240


def test_no_copies_of_images_that_are_not_28x28(mnist):
    """The reader makes 28x28 digits: other sizes train without copies (the knob says so)."""
    padded = torch.nn.functional.pad(mnist.train_images[:200], (2, 2, 2, 2))
    small = dataclasses.replace(mnist, train_images=padded, train_labels=mnist.train_labels[:200],
                                test_images=torch.nn.functional.pad(mnist.test_images[:50], (2, 2, 2, 2)),
                                test_labels=mnist.test_labels[:50])
    prepared = prepare(build_config(select=False, damaged=2.0, val_size=40), small, torch.device("cpu"))
    assert prepared.images.shape[0] == 160


@pytest.mark.parametrize("value", ["-1", "4.5", "nan"])
def test_out_of_range_damage_is_refused(value, tmp_path):
    one_line_error(run_main("train", "--damaged", value, "--out", str(tmp_path / "o")), "--damaged must be")


def test_runs_saved_before_damage_load_without_it():
    from mnist_logreg.config import TrainConfig

    saved = build_config().to_dict()
    del saved["augment"]["damaged"]
    assert TrainConfig.from_dict(saved).augment.damaged == 0.0
