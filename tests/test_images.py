import io

import numpy as np
import pytest
import torch
from PIL import Image

from digits import photo, png_bytes
from mnist_logreg.images import ImageError, load_digit, otsu_threshold
from mnist_logreg.runs import load_run


def test_mnist_digit_comes_back_like_itself(mnist):
    """An MNIST digit, already in MNIST's conventions, passes through nearly unchanged."""
    agree = 0
    for i in range(50):
        d = mnist.test_images[i].numpy()
        out = load_digit(png_bytes(d)).double() / 255
        ref = torch.from_numpy(d).double() / 255
        agree += torch.nn.functional.cosine_similarity(out.flatten(), ref.flatten(), dim=0) > 0.8
    assert agree >= 40


def test_output_follows_mnist_conventions(mnist):
    rng = np.random.default_rng(0)
    out = load_digit(photo(mnist.test_images[0].numpy(), rng)).double()
    assert out.shape == (28, 28)
    rows = torch.nonzero(out.sum(1)).flatten()
    cols = torch.nonzero(out.sum(0)).flatten()
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 22  # fits the 20x20 box (+ resampling edge)
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    m = out.sum()
    assert abs((ys * out).sum() / m - 13.5) < 1 and abs((xs * out).sum() / m - 13.5) < 1
    assert out[0].sum() == 0 and out[:, 0].sum() == 0  # clean black background


def test_photos_of_digits_are_recognised(mnist, default_run):
    """MNIST test digits pasted large and off-centre on paper-like and board-like photos."""
    ck = load_run(default_run)
    rng = np.random.default_rng(1)
    n = 300
    idx = torch.randperm(10000, generator=torch.Generator().manual_seed(0))[:n]
    labels = mnist.test_labels[idx]
    plain = (ck.logits(mnist.test_images[idx]).argmax(1) == labels).double().mean().item()
    results = {}
    for polarity in ("dark-on-light", "light-on-dark"):
        for fmt in ("JPEG", "PNG"):
            digits = torch.stack([load_digit(photo(mnist.test_images[i].numpy(), rng, polarity, fmt=fmt))
                                  for i in idx.tolist()])
            results[(polarity, fmt)] = (ck.logits(digits).argmax(1) == labels).double().mean().item()
    print(f"\nplain test accuracy on these {n} digits: {plain:.3f}; photos: "
          + ", ".join(f"{p}/{f}: {a:.3f}" for (p, f), a in results.items()))
    for acc in results.values():
        assert acc >= plain - 0.04


def test_transparency_is_flattened_onto_white(mnist):
    d = mnist.test_images[3].numpy()
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., 3] = d  # black ink whose opacity is the digit; the rest transparent
    from_alpha = load_digit(png_bytes(rgba, "RGBA"))
    on_white = load_digit(png_bytes(255 - d))
    assert torch.equal(from_alpha, on_white)


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF", "WEBP"])
def test_other_formats(mnist, fmt):
    buf = io.BytesIO()
    Image.fromarray(mnist.test_images[0].numpy()).save(buf, format=fmt)
    assert load_digit(buf.getvalue()).sum() > 0


@pytest.mark.parametrize(
    "data, match",
    [
        (b"hello, not an image", "not an image in a supported format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not an image"),
        (b"%PDF-1.4 fake", "not an image"),
        (png_bytes(np.full((28, 28), 255, dtype=np.uint8)), "no digit found"),
    ],
)
def test_bad_images(data, match):
    with pytest.raises(ImageError, match=match):
        load_digit(data)


def test_truncated_image(mnist):
    data = png_bytes(mnist.test_images[0].numpy())
    with pytest.raises(ImageError, match="malformed|cannot read|not an image"):
        load_digit(data[: len(data) // 2])


def test_too_many_pixels():
    buf = io.BytesIO()
    Image.new("L", (8000, 5100), 255).save(buf, format="PNG")  # 40.8 megapixels
    with pytest.raises(ImageError, match="more than the 40 allowed"):
        load_digit(buf.getvalue())


def test_otsu_separates_two_levels():
    values = np.concatenate([np.full(100, 0.2), np.full(50, 0.8)])
    assert 0.2 <= otsu_threshold(values) < 0.8


@pytest.mark.parametrize("fmt, mode", [("PNG", "L"), ("JPEG", "L"), ("PNG", "I;16"), ("PNG", "P")])
def test_a_huge_image_is_decoded_at_reduced_size(mnist, default_run, monkeypatch, fmt, mode):
    """A 31-megapixel photo of a digit reaches the per-pixel work at most WORK_SIDE a side
    (JPEG decodes at reduced scale, the others are reduced right after decoding) and is
    still read as the digit it shows."""
    import mnist_logreg.images as images

    seen = []
    real = images.to_grayscale
    monkeypatch.setattr(images, "to_grayscale", lambda img: seen.append(img.size) or real(img))
    digit = 255 - np.kron(mnist.test_images[0].numpy(), np.ones((200, 200), np.uint8))  # 5600 x 5600
    pil = Image.fromarray(digit)
    pil = pil.convert(mode) if mode != "I;16" else Image.fromarray(digit.astype(np.uint16) * 257)
    assert pil.mode == mode
    buf = io.BytesIO()
    pil.save(buf, format=fmt)
    out = load_digit(buf.getvalue())
    assert max(seen[-1]) <= 1024, seen  # WORK_SIDE, written out: the test must not follow a change of it
    assert int(load_run(default_run).logits(out.unsqueeze(0)).argmax()) == int(mnist.test_labels[0])
