"""The model shipped in the package: what the default recipe trains, described by
docs/model-card.md, and used by predict, serve and export when no --run is given."""

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import one_line_error, run_main
from mnist_logreg.reading.lite import load_run
from mnist_logreg.reading.modelfile import MODEL_FILE, shipped_run

CARD = Path(__file__).resolve().parents[1] / "docs" / "model-card.md"


@pytest.mark.minutes
def test_the_shipped_model_is_what_the_default_recipe_trains(mnist, tmp_path):
    """The default recipe trained on MNIST here (45 s: make test-minutes): a change of the
    recipe (or of training, or of the reader its damaged copies go through) that was not
    shipped again (make default-model) fails here. The other tests use the shipped run."""
    from mnist_logreg import build_config, train_run

    train_run(build_config(), tmp_path / "run", dataset=mnist)
    shipped, trained = load_run(shipped_run()), load_run(tmp_path / "run")
    assert shipped.config.to_dict() == trained.config.to_dict()
    assert set(shipped.tensors) == set(trained.tensors)
    for name, value in trained.tensors.items():
        # Float tolerance: another CPU's kernel path may round its sums differently.
        np.testing.assert_allclose(shipped.tensors[name], value, rtol=1e-4, atol=1e-4 * np.abs(value).max(),
                                   err_msg=name)


def test_the_model_card_describes_the_shipped_file():
    card = CARD.read_text()
    run = shipped_run()
    data = (run / MODEL_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() in card
    assert f"{len(data):,} bytes" in card
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"**{metrics['test_accuracy']:.2%}** on MNIST's 10,000 test digits" in card
    assert f"test loss {metrics['test_loss']:.4f}" in card
    assert metrics["n_train"] == 55_000 and metrics["n_damaged"] > 54_000
    assert metrics["data"].startswith("mnist: every file matches")
    assert re.search(r"at commit [0-9a-f]{7}", card)


def test_predict_export_without_run_use_the_shipped_model(mnist, tmp_path, monkeypatch):
    image = tmp_path / "seven.png"
    Image.fromarray(255 - mnist.test_images[0].numpy()).resize((140, 140)).save(image)
    proc = run_main("predict", str(image), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] == 7
    (note,) = proc.stderr.strip().splitlines()
    assert "no --run given: using the model shipped with mnist-logreg" in note and "99.05%" in note
    # export writes here, never into the installed package
    before = sorted(os.listdir(shipped_run()))
    monkeypatch.chdir(tmp_path)
    proc = run_main("export", "--format", "web")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "digits.html").is_file() and sorted(os.listdir(shipped_run())) == before
    # a --run that is not there is still refused, not replaced by the shipped model
    one_line_error(run_main("predict", "--run", str(tmp_path / "nowhere"), str(image)), "no such run folder")
