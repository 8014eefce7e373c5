"""``lite`` (NumPy) against the reference, the PyTorch ``Classifier``: the same probabilities
on real digits for every preprocessing, and ``predict`` without importing PyTorch."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mnist_logreg.config import build_config
from mnist_logreg.reading.lite import LiteModel, blur_pool_matrix
from mnist_logreg.reading.modelfile import read_model_file
from mnist_logreg.training.checkpoint import load_model, model_bytes
from mnist_logreg.training.model import Classifier, SoftmaxRegression
from mnist_logreg.training.preprocess import Preprocessor, _blur_pool_matrix

PREPROCESSINGS = {
    "raw": dict(normalize="none", deskew=False, moment_norm=False, directions=False),
    "global": dict(normalize="global", deskew=False, moment_norm=False, directions=False),
    "deskewed": dict(normalize="per-pixel", deskew=True, moment_norm=False, directions=False),
    "moment-normalized": dict(normalize="per-pixel", deskew=True, moment_norm=True, directions=False),
    "size only": dict(normalize="per-pixel", deskew=False, moment_norm=True, directions=False),
    "gamma": dict(normalize="per-pixel", deskew=False, moment_norm=False, gamma=0.5, directions=False),
    "directions": dict(normalize="per-pixel", deskew=True, moment_norm=True, directions=True),
}


@pytest.mark.parametrize("name", PREPROCESSINGS)
def test_lite_gives_the_reference_probabilities(mnist, tmp_path, name):
    """All 10,000 MNIST test digits: a fitted preprocessing and a linear layer of random
    weights (scaled so no class dominates) through both paths, via the model file."""
    config = build_config(select=False, **PREPROCESSINGS[name])
    pre = Preprocessor(config.preprocess, mnist.image_shape)
    pre.fit_geometry(mnist.train_images[:5000]).fit(pre.images(mnist.train_images[:5000]))
    linear = SoftmaxRegression(pre.n_features, 10)
    linear.reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():
        linear.linear.weight.mul_(30)  # confident, as a trained model is: logits spread over tens
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_bytes(Classifier(pre, linear), config, list(range(10))))

    images = mnist.test_images
    reference = load_model(path).logits(images).numpy()
    lite = LiteModel(read_model_file(path)).logits(images.numpy())
    assert lite.shape == reference.shape == (10_000, 10)
    # float32 features through two libraries: rounding, ~1e-6 of the logits' range.
    assert np.abs(lite - reference).max() < 1e-4 * np.abs(reference).max()
    assert (lite.argmax(1) == reference.argmax(1)).mean() >= 0.9999


def test_a_trained_model_agrees(default_run, mnist):
    reference = load_model(default_run / "model.safetensors").predict_proba(mnist.test_images).numpy()
    lite = LiteModel(read_model_file(default_run / "model.safetensors")).predict_proba(mnist.test_images.numpy())
    assert np.abs(lite - reference).max() < 1e-4
    assert (lite.argmax(1) == reference.argmax(1)).mean() >= 0.9999


def _warp_by_masks(images, gx, gy):
    """Bilinear sampling with zeros outside, each neighbour masked where it falls outside
    (how lite._warp_affine did it before its zero border): the reference."""
    n, h, w = images.shape
    ys, xs = np.arange(h, dtype=np.float32).reshape(1, h, 1), np.arange(w, dtype=np.float32).reshape(1, 1, w)
    v = lambda a: np.asarray(a, dtype=np.float32).reshape(n, 1, 1)  # noqa: E731
    ix = ((v(gx[0]) + v(gx[1]) * xs + v(gx[2]) * ys + 1) * np.float32(w) - 1) / 2
    iy = ((v(gy[0]) + v(gy[1]) * xs + v(gy[2]) * ys + 1) * np.float32(h) - 1) / 2
    x0, y0 = np.floor(ix), np.floor(iy)
    fx, fy = ix - x0, iy - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    flat, batch = images.reshape(n, h * w), np.arange(n).reshape(n, 1, 1)
    out = np.zeros((n, h, w), dtype=np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xx, yy = x0 + dx, y0 + dy
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            out += np.where(inside, flat[batch, np.where(inside, yy * w + xx, 0)], 0) * (wx * wy)
    return out


def test_sampling_reads_zeros_outside_the_image_to_the_last_bit():
    """lite._warp_affine (neighbours outside read from a zero border) equals the masked
    sampling bit for bit, on grids that shift, scale and shear images partly or wholly out."""
    from mnist_logreg.reading.lite import _warp_affine

    rng = np.random.default_rng(0)
    images = rng.random((32, 28, 28)).astype(np.float32)
    for t in range(40):
        gx, gy = ([rng.normal(0, 2, 32) for _ in range(3)] for _ in range(2))
        assert np.array_equal(_warp_affine(images, gx, gy), _warp_by_masks(images, gx, gy)), t


def test_the_blur_pool_matrix_is_defined_once():
    assert torch.equal(_blur_pool_matrix(28), torch.from_numpy(blur_pool_matrix(28).copy()))


def test_predict_never_imports_torch(default_run, mnist, tmp_path):
    """Half a second and ~70 MB instead of two seconds and ~670 MB (docs/reference/data.md)."""
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.test_images[0].numpy()).resize((200, 200)).save(image)  # a 7, dark on white
    code = ("import sys\nfrom mnist_logreg.cli import main\n"
            f"rc = main(['predict', '--run', {str(default_run)!r}, {str(image)!r}, '--json'])\n"
            "assert 'torch' not in sys.modules, 'predict imported torch'\nsys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert '"label": 7' in proc.stdout, proc.stdout


def test_evaluate_never_imports_torch(default_run, tmp_path):
    """The report for MNIST's 10,000 test digits on NumPy alone (issue 25): the model, the
    test split (checked against the published checksums), the metrics and the figures."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(default_run, run)
    code = ("import sys\nfrom mnist_logreg.cli import main\n"
            f"rc = main(['evaluate', '--run', {str(run)!r}, '--json'])\n"
            "assert 'torch' not in sys.modules, 'evaluate imported torch'\nsys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    expected = json.loads((default_run / "metrics.json").read_text())
    assert result["n_test"] == 10000 and result["test_accuracy"] == expected["test_accuracy"]
    assert (run / "report" / "report.html").is_file()


def test_both_paths_refuse_images_of_another_size(default_run):
    from mnist_logreg.errors import UserError

    wrong = np.zeros((2, 14, 14), np.uint8)
    path = default_run / "model.safetensors"
    for model in (load_model(path), LiteModel(read_model_file(path))):
        with pytest.raises(UserError, match="the model expects 28x28 images, got 14x14"):
            model.predict_proba(wrong)
