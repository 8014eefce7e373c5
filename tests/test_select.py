"""The default recipe chooses its preprocessing on the validation split of the data at hand."""

import json

import pytest
import torch

from conftest import run_main, write_small
from mnist_logreg import build_config, train
from mnist_logreg.config import PREPROCESS_CANDIDATES
from mnist_logreg.data import Dataset, default_val_size, load_dataset


def test_default_split_is_a_fraction_with_a_floor():
    assert default_val_size(60000) == 5000  # MNIST: as before
    assert default_val_size(12000) == 1000
    assert default_val_size(1000) == 200  # the floor
    assert default_val_size(300) == 150  # never more than half


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory, small_dir):
    out = tmp_path_factory.mktemp("select") / "run"
    proc = run_main("train", "--data-dir", str(small_dir), "--out", str(out), "--epochs", "3")
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_every_candidate_and_the_choice_are_recorded(selected_run):
    out, stdout = selected_run
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    selection = config["selection"]
    assert selection == metrics["selection"]
    scores = selection["val_accuracy"]
    assert set(scores) == set(PREPROCESS_CANDIDATES)
    chosen = selection["chosen"]
    assert scores[chosen] == max(scores.values())
    # The run is the chosen recipe: its settings, its validation accuracy.
    for name, value in PREPROCESS_CANDIDATES[chosen].items():
        assert config["preprocess"][name] == value
    assert config["preprocess"]["select"] is False and metrics["val_accuracy"] == scores[chosen]
    line = next(ln for ln in stdout.splitlines() if ln.startswith("preprocessing chosen on validation"))
    assert chosen in line and all(f"{name} {acc * 100:.2f}%" in line for name, acc in scores.items())


def test_the_chosen_model_is_the_fixed_recipe_it_names(small_dir):
    ds = load_dataset(data_dir=small_dir)
    config = build_config(epochs=2)
    result = train(config, ds)
    fixed = train(config.candidates()[result.selection["chosen"]], ds)
    assert torch.equal(result.model.linear.weight, fixed.model.linear.weight)
    assert torch.equal(result.preprocessor.mean, fixed.preprocessor.mean)


def test_the_choice_never_looks_at_the_test_set(small_dir):
    ds = load_dataset(data_dir=small_dir)
    g = torch.Generator().manual_seed(0)
    scrambled = Dataset(ds.train_images, ds.train_labels,
                        torch.randint(0, 256, ds.test_images.shape, generator=g, dtype=torch.uint8),
                        ds.test_labels[torch.randperm(len(ds.test_labels), generator=g)], source="scrambled")
    a, b = train(build_config(epochs=2), ds), train(build_config(epochs=2), scrambled)
    assert a.selection["val_accuracy"] == b.selection["val_accuracy"]
    assert torch.equal(a.model.linear.weight, b.model.linear.weight)


def test_a_fixed_preset_means_exactly_that_recipe(tmp_path, small_dir):
    out = tmp_path / "run"
    proc = run_main("train", "--preset", "deskewed", "--data-dir", str(small_dir), "--out", str(out), "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert "selection" not in config and "selection" not in json.loads((out / "metrics.json").read_text())
    pre = config["preprocess"]
    assert pre["deskew"] is True and pre["moment_norm"] is False and pre["gamma"] == 1.0 and pre["select"] is False
    assert "preprocessing chosen" not in proc.stdout


def test_a_thousand_images_of_a_published_set_train_with_the_defaults(tmp_path, mnist):
    """The first 1,000 MNIST training images beside the full MNIST test set: a user's dataset."""
    data = write_small(tmp_path / "data", mnist, 1000, 10000)
    out = tmp_path / "run"
    proc = run_main("train", "--data-dir", str(data), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data_line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("data: "))
    assert "t10k-images, t10k-labels match the published checksums" in data_line
    assert "train-images, train-labels differ in size" in data_line and "1,000 training images" in data_line
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == 800 and metrics["n_val"] == 200 and metrics["n_test"] == 10000
    assert metrics["test_accuracy"] > 0.85


def test_no_validation_split_no_choice(tmp_path, small_dir):
    proc = run_main("train", "--data-dir", str(small_dir), "--val-size", "0", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--select chooses the preprocessing on a validation split" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_gamma_raises_the_pixels_to_a_power():
    from mnist_logreg.config import PreprocessConfig
    from mnist_logreg.training.preprocess import Preprocessor

    images = torch.arange(0, 256, dtype=torch.uint8).repeat(4).reshape(1, 32, 32)
    p = Preprocessor(PreprocessConfig(gamma=0.5, normalize="none", deskew=False, moment_norm=False, directions=False),
                     (32, 32))
    expected = (images.double() / 255).sqrt().reshape(1, -1)
    assert torch.allclose(p(images).double(), expected, atol=1e-7)
    q = Preprocessor(PreprocessConfig(gamma=0.5, normalize="per-pixel", deskew=False, moment_norm=False,
                                      directions=False), (32, 32))
    features = q.fit_standardize(q.images(images.repeat(3, 1, 1)))
    assert torch.equal(features, q.standardize(q.images(images.repeat(3, 1, 1))))
