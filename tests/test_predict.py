import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli, run_main
from digits import photo, png_bytes


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory, mnist):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(3)
    for i in range(6):
        (folder / f"digit{i}-label{int(mnist.test_labels[i])}.jpg").write_bytes(
            photo(mnist.test_images[i].numpy(), rng, "dark-on-light"))
    (folder / "notes.txt").write_text("not an image, and not picked up from a folder")
    return folder


def test_predict_files_and_folder(default_run, image_dir, tmp_path):
    seen = tmp_path / "seen"
    files = sorted(image_dir.glob("*.jpg"))
    proc = run_cli("predict", "--run", str(default_run), str(files[0]), str(image_dir), "--top", "2",
                   "--save-preprocessed", str(seen))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 + 6
    correct = 0
    for line in lines:
        file, label, prob, top = line.split("\t")
        assert 0 < float(prob.rstrip("%")) <= 100 and len(top.split()) == 2
        correct += f"label{label}" in file
    assert correct >= 6
    pngs = sorted(p.name for p in seen.iterdir())
    assert len(pngs) == 7 and all(Image.open(seen / n).size == (28, 28) for n in pngs)


def test_predict_json(default_run, image_dir):
    files = sorted(image_dir.glob("*.jpg"))[:2]
    proc = run_main("predict", "--run", str(default_run), *map(str, files), "--json", "--top", "3")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in rows] == list(map(str, files))
    assert all(len(r["top"]) == 3 and r["top"][0]["label"] == r["label"] for r in rows)
    assert all(r["top"][0]["probability"] >= r["top"][1]["probability"] for r in rows)


def test_no_digit_is_label_null_with_a_reason(default_run, mnist, tmp_path):
    """--json: a blank page gets label null and why; two digits side by side are a number
    (label null: not one digit); neither is an error (exit 0), and a real digit beside them is read."""
    (tmp_path / "blank.png").write_bytes(png_bytes(np.full((60, 80), 250, np.uint8)))
    pair = np.hstack([mnist.test_images[0].numpy(), mnist.test_images[1].numpy()])
    (tmp_path / "pair.png").write_bytes(png_bytes(255 - pair))
    (tmp_path / "one.png").write_bytes(png_bytes(mnist.test_images[2].numpy()))
    proc = run_main("predict", "--run", str(default_run), str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {Path(r["file"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert rows["blank.png"] == {"file": str(tmp_path / "blank.png"), "label": None, "number": None,
                                  "reason": "the image is blank"}
    pair_number = f"{int(mnist.test_labels[0])}{int(mnist.test_labels[1])}"
    assert rows["pair.png"]["label"] is None and rows["pair.png"]["number"] == pair_number
    (left, right) = rows["pair.png"]["digits"]
    assert left["box"][2] <= 30 and right["box"][0] >= 26  # each digit's box, in the image's pixels
    one = rows["one.png"]
    assert one["label"] == int(mnist.test_labels[2]) and one["number"] == str(one["label"])
    text = run_main("predict", "--run", str(default_run), str(tmp_path / "pair.png"))
    assert text.returncode == 0 and f"\t{pair_number}\t2 digits\t" in text.stdout


def test_predict_reads_an_amount(default_run, mnist, tmp_path):
    """A point between digits: "72.10" in text (4 digits, the point shown with its reason)
    and in --json (an entry of label "." with no probability)."""
    digits = [mnist.test_images[i].numpy() for i in range(4)]
    yy, xx = np.mgrid[0:28, 0:8]
    blot = np.where((yy - 21) ** 2 + (xx - 4) ** 2 <= 9, 255, 0).astype(np.uint8)
    gap = np.zeros((28, 6), np.uint8)
    row = np.hstack([digits[0], digits[1], gap, blot, gap, digits[2], digits[3]])
    (tmp_path / "amount.png").write_bytes(png_bytes(255 - np.pad(row, 6)))
    want = "{}{}.{}{}".format(*(int(mnist.test_labels[i]) for i in range(4)))
    text = run_main("predict", "--run", str(default_run), str(tmp_path / "amount.png"))
    assert text.returncode == 0 and f"\t{want}\t4 digits\t" in text.stdout, text.stdout
    assert ".:a point between digits" in text.stdout
    row = json.loads(run_main("predict", "--run", str(default_run), str(tmp_path / "amount.png"), "--json").stdout)
    assert row["number"] == want and [d["label"] for d in row["digits"]][2] == "."
    assert row["digits"][2]["probability"] is None and row["digits"][2]["reason"] == "a point between digits"


def test_predict_matches_the_model(default_run, mnist, tmp_path):
    """The CLI's answer equals the model's own prediction on the same 28x28 image."""
    from mnist_logreg.reading.images import load_digit
    from mnist_logreg.training.checkpoint import load_run

    path = tmp_path / "d.png"
    Image.fromarray(mnist.test_images[7].numpy()).save(path)
    proc = run_main("predict", "--run", str(default_run), str(path), "--json")
    out = json.loads(proc.stdout)
    probs = load_run(default_run).predict_proba(load_digit(path).unsqueeze(0))[0]
    assert out["label"] == int(probs.argmax()) and out["probability"] == pytest.approx(float(probs.max()))


def test_bad_files_are_one_line_errors(default_run, image_dir, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = sorted(image_dir.glob("*.jpg"))[0]
    proc = run_main("predict", "--run", str(default_run), str(bad), str(good), str(tmp_path / "missing.png"))
    assert proc.returncode == 2
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in proc.stderr
    assert "bad.png" in errors[0] and "missing.png: file not found" in errors[1]
    assert len(proc.stdout.strip().splitlines()) == 1  # the good one still predicted


def test_predict_needs_a_run(tmp_path, image_dir):
    proc = run_main("predict", "--run", str(tmp_path), str(image_dir))
    assert proc.returncode == 2 and "no model.safetensors" in proc.stderr


@pytest.fixture(scope="module")
def gamma_run(tmp_path_factory, small_dir):
    """A run with the gamma rung (what the default chooses on Fashion-MNIST)."""
    out = tmp_path_factory.mktemp("gamma") / "run"
    proc = run_main("train", "--data-dir", str(small_dir), "--out", str(out), "--preset", "normalized",
                   "--gamma", "0.5", "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("run", ["default_run", "gamma_run"])
def test_export_matches_pytorch(run, mnist, tmp_path, fmt, request):
    from mnist_logreg.training.checkpoint import load_run

    run = request.getfixturevalue(run)
    out = tmp_path / f"model.{fmt}"
    proc = run_main("export", "--run", str(run), "--format", fmt, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    ck = load_run(run)
    pixels = mnist.test_images.float() / 255
    expected = ck.predict_proba(mnist.test_images).numpy()
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = np.concatenate([session.run(["probabilities"], {"pixels": chunk.numpy()})[0]
                              for chunk in pixels.split(2500)])
    else:
        module = torch.jit.load(str(out))
        with torch.no_grad():
            got = torch.cat([module(chunk) for chunk in pixels.split(2500)]).numpy()
    assert got.shape == expected.shape
    # float32 throughout; the default's weight decay of 3e-4 gives logits about three times
    # those of 3e-3, and rounding grows with them (largest difference 1.8e-5 measured)
    assert np.abs(got - expected).max() <= 5e-5


def test_export_bad_format(default_run):
    proc = run_main("export", "--run", str(default_run), "--format", "pickle")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
