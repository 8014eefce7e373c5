"""Learning from corrections: serve --collect saves the digits people correct, and
train --add learns from them (the exported page's zip: tests/test_web.py)."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from conftest import one_line_error, run_main

pytest.importorskip("fastapi")


@pytest.fixture()
def collecting(default_run, tmp_path):
    from fastapi.testclient import TestClient

    from mnist_logreg.reading.lite import load_run
    from mnist_logreg.serve import create_app

    folder = tmp_path / "collected"
    with TestClient(create_app(load_run(default_run), collect=str(folder))) as client:
        yield client, folder


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_serve_collect_saves_the_digit_the_model_saw(collecting, mnist):
    client, folder = collecting
    assert client.get("/healthz").json()["collect"] is True
    seen = client.post("/api/predict", files={"image": ("d.png", _png(255 - mnist.test_images[0].numpy()),
                                                        "image/png")}).json()["preprocessed"]
    r = client.post("/api/correct", json={"preprocessed": seen, "label": 4})
    assert r.status_code == 200, r.text
    saved = folder / r.json()["saved"]
    assert saved.parent == folder / "4" and np.array_equal(np.asarray(Image.open(saved)), np.array(seen, np.uint8))
    # the same digit again is the same file, not a second one
    assert client.post("/api/correct", json={"preprocessed": seen, "label": 4}).json()["saved"] == r.json()["saved"]
    assert len(list(folder.glob("*/*.png"))) == 1


@pytest.mark.parametrize("payload, needle", [
    ({"preprocessed": [[0] * 28] * 28, "label": "../../etc"}, "'label' must be one of the model's classes"),
    ({"preprocessed": [[0] * 28] * 28, "label": 10}, "'label' must be one of the model's classes"),
    ({"preprocessed": [[0] * 28] * 28, "label": True}, "'label' must be one of the model's classes"),
    ({"preprocessed": [[0] * 27] * 28, "label": 3}, "must be 28x28 integers from 0 to 255"),
    ({"preprocessed": [[300] * 28] * 28, "label": 3}, "must be 28x28 integers from 0 to 255"),
    ({"preprocessed": "abc", "label": 3}, "must be"),
    ([1, 2], "must be an object"),
])
def test_a_bad_correction_is_400_and_writes_nothing(collecting, payload, needle):
    client, folder = collecting
    r = client.post("/api/correct", json=payload)
    assert r.status_code == 400 and needle in r.json()["error"], r.text
    assert not list(folder.rglob("*.png"))


def test_a_full_collection_is_507_and_no_collection_is_404(collecting, default_run, monkeypatch):
    from fastapi.testclient import TestClient

    import mnist_logreg.serve as serve
    from mnist_logreg.reading.lite import load_run

    client, folder = collecting
    monkeypatch.setattr(serve, "MAX_COLLECTED", 1)
    digit = [[0] * 28] * 27 + [[255] * 28]
    assert client.post("/api/correct", json={"preprocessed": digit, "label": 1}).status_code == 200
    r = client.post("/api/correct", json={"preprocessed": [[0] * 28] * 28, "label": 2})
    assert r.status_code == 507 and "full" in r.json()["error"]
    with TestClient(serve.create_app(load_run(default_run))) as plain:
        assert plain.get("/healthz").json()["collect"] is False
        assert plain.post("/api/correct", json={"preprocessed": digit, "label": 1}).status_code == 404


def _writer(digits, angle=40.0):
    """A "new writer": MNIST digits written turned by ``angle`` degrees (the page held
    askew), read as predict reads them. Deskewing undoes a slant, not a rotation."""
    from mnist_logreg.reading.images import to_mnist

    out = []
    for d in digits:
        big = Image.fromarray(d).resize((84, 84), Image.Resampling.BILINEAR)
        turned = big.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
        out.append(to_mnist(Image.fromarray(255 - np.asarray(turned))))
    return np.stack(out)


def _collected(folder, mnist, per_class, start=0):
    labels = mnist.train_labels.numpy()
    for c in range(10):
        picked = np.flatnonzero(labels == c)[start:start + per_class]
        (folder / str(c)).mkdir(parents=True, exist_ok=True)
        for i, digit in zip(picked, _writer(mnist.train_images[picked].numpy())):
            Image.fromarray(digit).save(folder / str(c) / f"{i}.png")
    return folder


# The default recipe on all of MNIST plus the corrections: 25-60 s (its damaged copies are
# read unless test_model_card's training read them first): make test-minutes.
@pytest.mark.minutes
def test_twenty_corrections_a_class_teach_a_new_writer(default_run, mnist, tmp_path):
    """20 corrected digits of each class by a writer the default model reads poorly: that
    writer's other digits read >= 85% and >= 8 points better, MNIST's test set at most 0.3
    worse. Measured 2026-12-06: 77.8% -> 87.2%, MNIST 99.05% -> 98.97% (the model shipped
    before the damaged training copies read this writer at 67.3%, and the test asked for
    10 points from there)."""
    from mnist_logreg.reading.lite import load_run

    folder = _collected(tmp_path / "mine", mnist, 20)
    proc = run_main("train", "--add", str(folder), "--add-weight", "16", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "plus 200 of your own digits x 16" in proc.stdout
    held = _writer(mnist.test_images[:400].numpy())
    labels = mnist.test_labels[:400].numpy()
    before = (load_run(default_run).logits(held).argmax(1) == labels).mean()
    after = (load_run(tmp_path / "run").logits(held).argmax(1) == labels).mean()
    base = json.loads((default_run / "metrics.json").read_text())["test_accuracy"]
    mnist_after = json.loads((tmp_path / "run" / "metrics.json").read_text())["test_accuracy"]
    print(f"\nnew writer: {before:.1%} -> {after:.1%}; MNIST test {base:.2%} -> {mnist_after:.2%}")
    assert after >= 0.85 and after - before >= 0.08 and base - mnist_after <= 0.003


def test_the_weight_is_chosen_on_a_held_out_part_of_them(small_dir, mnist, tmp_path):
    from mnist_logreg.config import ADD_WEIGHTS

    folder = _collected(tmp_path / "mine", mnist, 8, start=3000)
    proc = run_main("train", "--data", str(small_dir), "--add", str(folder), "--epochs", "2", "--no-select",
                    "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    added = json.loads((tmp_path / "run" / "metrics.json").read_text())["added"]
    scores = {int(w): a for w, a in added["held_out_accuracy"].items()}
    assert sorted(scores) == list(ADD_WEIGHTS) and added["digits"] == 80
    assert added["weight"] == max(ADD_WEIGHTS, key=lambda w: (scores[w], -w))


def test_added_digits_never_enter_the_validation_split(small_dir, mnist, tmp_path):
    """The validation split stays the data's own: its images and accuracy are those of
    the same training without --add."""
    import torch

    from mnist_logreg import build_config
    from mnist_logreg.data import load_dataset
    from mnist_logreg.data.datasets import with_added
    from mnist_logreg.training.train import prepare

    ds = load_dataset(data_dir=str(small_dir))
    extra = with_added(ds, ds.test_images[:30], ds.test_labels[:30], 4)
    config = build_config(select=False)
    plain = prepare(config, ds, torch.device("cpu"))
    added = prepare(config, extra, torch.device("cpu"))
    assert torch.equal(plain.val[1], added.val[1])
    # The training split, the person's digits, then the damaged copies of both.
    k = plain.labels.numel() - plain.n_damaged
    assert added.labels.numel() - added.n_damaged == k + 120
    assert torch.equal(added.labels[k:k + 120], ds.test_labels[:30].repeat(4))
    assert torch.equal(added.labels[:k], plain.labels[:k])
    assert 100 <= added.n_damaged - plain.n_damaged <= 120  # theirs damaged too (a few answered "no digit")


def test_bad_add_folders_are_one_line(tmp_path, small_dir):
    one_line_error(run_main("train", "--data", str(small_dir), "--add", str(tmp_path / "none"), "--out",
                            str(tmp_path / "r")), "no such folder")
    (tmp_path / "named" / "cat").mkdir(parents=True)
    one_line_error(run_main("train", "--data", str(small_dir), "--add", str(tmp_path / "named"), "--out",
                            str(tmp_path / "r")), "must be named by its class number")
    one_line_error(run_main("train", "--add-weight", "0", "--out", str(tmp_path / "r")),
                   "--add-weight must be an integer from 1")
