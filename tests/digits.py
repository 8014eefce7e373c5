"""Photo-like digit images made from MNIST test digits, for the recogniser's tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def photo(digit: np.ndarray, rng: np.random.Generator, polarity: str = "dark-on-light", size: int = 360,
          fmt: str = "JPEG") -> bytes:
    """A 28x28 MNIST digit enlarged, off-centre, on a lit, noisy background, encoded."""
    scale = rng.uniform(5, 9)
    side = int(28 * scale)
    big = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    big = big.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    ink = np.asarray(big, dtype=np.float64) / 255.0
    canvas = np.zeros((size, size))
    top, left = rng.integers(0, size - side + 1), rng.integers(0, size - side + 1)
    canvas[top:top + side, left:left + side] = ink
    ys, xs = np.mgrid[0:size, 0:size] / size
    # Uneven light across the sheet, and sensor noise.
    light = 0.8 + 0.15 * (rng.uniform(-1, 1) * xs + rng.uniform(-1, 1) * ys)
    noise = rng.normal(0, 0.03, (size, size))
    if polarity == "dark-on-light":  # pen on paper
        img = light * (1 - 0.85 * canvas) + noise
    else:  # chalk on a board
        img = 0.12 + 0.1 * (xs - ys) + 0.75 * canvas * light + noise
    arr = np.clip(img * 255, 0, 255).astype(np.uint8)
    pil = Image.fromarray(arr)
    if fmt == "JPEG":
        pil = pil.convert("RGB")
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **({"quality": int(rng.integers(60, 90))} if fmt == "JPEG" else {}))
    return buf.getvalue()


def png_bytes(arr, mode=None) -> bytes:
    """An array as the bytes of a PNG file (``mode`` as Pillow's, e.g. "RGBA"; default from the array)."""
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def map_in_processes(fn, items: list) -> list:
    """``[fn(x) for x in items]`` in forked processes, one per core: the tests that read
    thousands of images are CPU-bound, and a process each uses the second core that a
    serial test leaves idle. ``fn`` must be a module-level function (it is sent by name)."""
    import multiprocessing

    from mnist_logreg.system import cores

    workers = min(cores(), 4)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods() or len(items) < 50:
        return [fn(x) for x in items]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(fn, items, chunksize=max(1, len(items) // (4 * workers)))


def amount(left: np.ndarray, right: np.ndarray, size: float, gap: int = 3) -> np.ndarray:
    """Two rows of ink (float, 1 = ink; ``number_bench.compose``'s) joined by a round point
    ``size`` times the taller one's height across, on their common baseline, as an amount is
    written ("12.50"): float ink."""
    h = max(left.shape[0], right.shape[0])
    r = size * h / 2
    side = int(np.ceil(2 * r)) + 2
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    dot = np.clip(r + 0.5 - np.hypot(yy - side / 2, xx - side / 2), 0, 1)  # antialiased at its rim
    out = np.zeros((h + 2, left.shape[1] + right.shape[1] + side + 2 * gap))
    out[h - left.shape[0]:h, :left.shape[1]] = left
    x = left.shape[1] + gap
    out[h + 1 - side:h + 1, x:x + side] = dot
    out[h - right.shape[0]:h, x + side + gap:] = right
    return out
