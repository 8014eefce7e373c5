"""How well the whole reading path reads digits it was not tuned on: a robustness benchmark.

MNIST's *test* digits, changed in ways defined outside this project, go through what
``predict`` does (a Pillow image -> ``images.to_mnist`` -> the NumPy engine), and each row
of the table is one change: accuracy (a "no digit" answer counts as wrong) and the share
of "no digit" answers.

- The 15 corruptions of MNIST-C (Mu and Gilmer, 2019, "MNIST-C: A Robustness Benchmark for
  Computer Vision"), written here from the paper's descriptions with NumPy alone, at the
  severities it uses for the published set. Their inputs and outputs are 28x28, light ink
  on black, as in the paper.
- The ways people hand us digits: dark ink on paper of any brightness, low resolution
  scaled up, the digit filling its frame, blur, a thick marker or a thin pen, strong JPEG,
  and a small digit on a 640x480 photo of a sheet in uneven light.

Everything is seeded: the same digits, the same corruptions, the same table. The digits
are a fixed stratified sample (the same number of each class, chosen with a fixed seed).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable

import numpy as np

SEED = 2019
SIDE = 28

# --- helpers --------------------------------------------------------------------------


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur, edges repeated, the kernel cut at 4 sigma (as scikit-image's
    ``filters.gaussian``, which MNIST-C uses)."""
    r = int(4 * sigma + 0.5)
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-t * t / (2 * sigma * sigma))
    k /= k.sum()
    out = np.asarray(x, dtype=np.float64)
    for axis in (0, 1):
        p = np.pad(out, [(r, r) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        n = out.shape[axis]
        out = sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(2 * r + 1))
    return out


def warp(x: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Bilinear sampling: output (row r, column c) reads the input at ``inverse`` @ (c, r, 1);
    zeros outside (scikit-image's ``transform.warp`` with order 1, mode "constant")."""
    h, w = x.shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = inverse[0, 0] * cc + inverse[0, 1] * rr + inverse[0, 2]
    sy = inverse[1, 0] * cc + inverse[1, 1] * rr + inverse[1, 2]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    out = np.zeros((h, w))
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xx, yy = x0 + dx, y0 + dy
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            out += np.where(inside, x[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0) * wx * wy
    return out


def _about_centre(m: np.ndarray) -> np.ndarray:
    """The 2x2 map ``m`` as a 3x3 affine map that keeps the image's centre (13.5, 13.5) fixed."""
    c = (SIDE - 1) / 2
    out = np.eye(3)
    out[:2, :2] = m
    out[:2, 2] = c - m @ np.array([c, c])
    return out


def _line(c0: float, r0: float, c1: float, r1: float) -> np.ndarray:
    """A soft line between two points over columns c0..c1 (MNIST-C's line: intensity
    log(1 - d / 2.3) + 1 at vertical distance d, nothing beyond 2.3 pixels)."""
    if c1 == c0:
        return np.zeros((SIDE, SIDE))
    cc, rr = np.meshgrid(np.arange(SIDE, dtype=np.float64), np.arange(SIDE, dtype=np.float64))
    slope = (r1 - r0) / (c1 - c0)
    d = np.clip(np.abs(rr - (slope * (cc - c0) + r0)), 0, 2.3 - 1e-10)
    out = np.clip(np.log(1 - d / 2.3) + 1, 0, 1)
    out[:, :int(math.floor(c0))] = 0
    out[:, int(math.ceil(c1)):] = 0
    return out


def plasma(rng: np.random.Generator, size: int = 256, decay: float = 1.4) -> np.ndarray:
    """A diamond-square fractal height map in [0, 1] (the fog of ImageNet-C and MNIST-C)."""
    m = np.zeros((size, size))
    step, wibble = size, 100.0

    def jitter(a):
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        corners = m[0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        m[half:size:step, half:size:step] = jitter(square)
        centres = m[half:size:step, half:size:step]
        corners = m[0:size:step, 0:size:step]
        m[0:size:step, half:size:step] = jitter(centres + np.roll(centres, 1, axis=0)
                                                + corners + np.roll(corners, -1, axis=1))
        m[half:size:step, 0:size:step] = jitter(centres + np.roll(centres, 1, axis=1)
                                                + corners + np.roll(corners, -1, axis=0))
        step //= 2
        wibble /= decay
    m -= m.min()
    return m / m.max()


def canny(x: np.ndarray, sigma: float = 1.0, low: float = 0.1, high: float = 0.2) -> np.ndarray:
    """Canny's edge detector (Gaussian smoothing, Sobel gradients, thinning to the local
    maxima across the edge, hysteresis), with scikit-image's defaults as MNIST-C uses them."""
    s = gaussian(x, sigma)
    p = np.pad(s, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    mag = np.hypot(gx, gy)
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180) % 180
    q = np.pad(mag, 1)
    h, w = x.shape
    nb = {0: (0, 1), 45: (1, 1), 90: (1, 0), 135: (1, -1)}
    keep = np.zeros_like(mag, dtype=bool)
    for a, (dy, dx) in nb.items():
        sector = (np.abs(angle - a) <= 22.5) | (np.abs(angle - a) >= 157.5) if a == 0 else np.abs(angle - a) < 22.5
        ahead = q[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        behind = q[1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
        keep |= sector & (mag >= ahead) & (mag >= behind)
    keep[0], keep[-1], keep[:, 0], keep[:, -1] = False, False, False, False
    strong, weak = keep & (mag >= high), keep & (mag >= low)
    edges = strong.copy()
    while True:  # weak edges joined to strong ones (8-neighbours), to a fixed point
        grown = np.pad(edges, 1)
        near = np.zeros_like(edges)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= grown[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        new = weak & near
        if (new == edges).all():
            return edges.astype(np.float64)
        edges = new | edges


# --- MNIST-C's 15 corruptions: float [28, 28] in [0, 1] (light ink) -> the same ------------
# Severities: those of the published MNIST-C (each function's default in the paper's code).


def shot_noise(x, rng):
    c = 3  # severity 5: photon counts with 3 photons at full brightness
    return np.clip(rng.poisson(x * c) / c, 0, 1)


def impulse_noise(x, rng):
    amount = 0.17  # severity 4: salt and pepper on 17% of the pixels, half each
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    out = x.copy()
    out[hit & salt], out[hit & ~salt] = 1.0, 0.0
    return out


def glass_blur(x, rng):
    sigma, delta, rounds = 0.7, 1, 2  # severity 1: blur, shuffle pixels locally, blur again
    y = np.floor(np.clip(gaussian(x, sigma), 0, 1) * 255)
    flat = y.ravel().tolist()
    span = range(SIDE - delta, delta, -1)
    for _ in range(rounds):
        # Each pixel, last to first, swaps with a neighbour up to ``delta`` away half the time;
        # the swaps are sequential (a pixel may travel), so the loop stays, on a Python list.
        coins = (rng.random(len(span) ** 2) < 0.5).tolist()
        moves = rng.integers(-delta, delta, size=(len(span) ** 2, 2)).tolist()
        k = 0
        for h in span:
            for w in span:
                if coins[k]:
                    dx, dy = moves[k]
                    a, b = h * SIDE + w, (h + dy) * SIDE + w + dx
                    flat[a], flat[b] = flat[b], flat[a]
                k += 1
    return np.clip(gaussian(np.array(flat).reshape(SIDE, SIDE) / 255, sigma), 0, 1)


def motion_blur(x, rng):
    radius, sigma = 10, 3  # severity 1: a one-sided Gaussian streak of 21 taps, at -45..45 degrees
    angle = math.radians(rng.uniform(-45, 45))
    taps = np.arange(2 * radius + 1)
    k = np.exp(-taps * taps / (2 * sigma * sigma))
    k /= k.sum()
    p = np.pad(x, 2 * radius + 1, mode="edge")
    o = 2 * radius + 1
    out = np.zeros_like(x)
    for i, weight in zip(taps, k):
        dx, dy = int(round(i * math.cos(angle))), int(round(i * math.sin(angle)))
        out += weight * p[o + dy:o + dy + SIDE, o + dx:o + dx + SIDE]
    return np.clip(out, 0, 1)


def shear(x, rng):
    c = 0.4 * rng.choice([-1, 1])  # severity 2
    return np.clip(warp(x, _about_centre(np.array([[1, -math.sin(c)], [0, math.cos(c)]]))), 0, 1)


def scale(x, rng):
    s = 1 / 0.7  # severity 3: the digit shrunk to 70% about the centre
    return np.clip(warp(x, _about_centre(np.eye(2) * s)), 0, 1)


def rotate(x, rng):
    a = 0.4 * rng.choice([-1, 1])  # severity 2: 0.4 radians (23 degrees) either way
    return np.clip(warp(x, _about_centre(np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]))), 0, 1)


def brightness(x, rng):
    return np.clip(x + 0.5, 0, 1)  # severity 5: +0.5 on HSV's value, i.e. on the grey level


def translate(x, rng):
    dx, dy = 3 * rng.choice([-1, 1], size=2)  # severity 3: 3 pixels along each axis
    m = np.eye(3)
    m[0, 2], m[1, 2] = dx, dy
    return np.clip(warp(x, m), 0, 1)


def stripe(x, rng):
    out = x.copy()  # the 7 columns at either side inverted
    out[:, :7] = 1 - out[:, :7]
    out[:, 21:] = 1 - out[:, 21:]
    return out


def fog(x, rng):
    strength = 3.0  # severity 5: (3.0, decay 1.4)
    top = x.max()
    y = x + strength * plasma(rng, decay=1.4)[:SIDE, :SIDE]
    return np.clip(y * top / (top + strength), 0, 1)


def spatter(x, rng):
    # Severity 4: blurred noise above a level becomes mud (grey 63/255) over the digit.
    liquid = gaussian(rng.normal(0.65, 0.3, x.shape), 1)
    liquid[liquid < 0.65] = 0
    m = gaussian((liquid > 0.65).astype(np.float64), 1.5)
    m[m < 0.8] = 0
    return np.clip(x * (1 - m) + 63 / 255 * m, 0, 1)


def dotted_line(x, rng):
    r0, r1 = rng.integers(0, 27, size=2)
    line = _line(0, r0, 27, r1)
    for start in range(0, 28, 4):  # dashes of 2 pixels, gaps of 2
        line[:, start:start + 2] = 0
    return np.clip(x + line, 0, 1)


def zigzag(x, rng):
    a = b = 2.0  # half-period and amplitude of the zigzag
    c0, c1 = 2, 25
    r0 = int(rng.integers(0, 27))
    r1 = r0 + int(rng.integers(-5, 5))
    theta = math.atan((r1 - r0) / (c1 - c0))
    d = (c1 - c0) / math.cos(theta)
    points = [(0.0, 0.0)]
    ri = 0.0
    for i in range(int((d - a) // (2 * a)) + 1):
        ri = (-1) ** i * b
        points.append(((2 * i + 1) * a, ri))
    last = 2 * a * (d // (2 * a))
    if d != last:
        points.append((d, ri / (2 * (d - last))))
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cs, rs = rot @ np.array(points).T
    cs, rs = cs + c0, rs + r0
    out = x.copy()
    for i in range(1, len(cs)):
        out = np.clip(out + _line(cs[i - 1], rs[i - 1], cs[i], rs[i]), 0, 1)
    return out


def canny_edges(x, rng):
    return canny(x)


MNIST_C: dict[str, Callable] = {f.__name__: f for f in (
    shot_noise, impulse_noise, glass_blur, motion_blur, shear, scale, rotate, brightness,
    translate, stripe, fog, spatter, dotted_line, zigzag, canny_edges)}


# --- the ways people hand us digits: uint8 [28, 28] (light ink) -> a Pillow image ----------


def _resize(a: np.ndarray, w: int, h: int, method=None) -> np.ndarray:
    from PIL import Image

    method = Image.Resampling.BICUBIC if method is None else method
    img = Image.fromarray(np.clip(np.round(a * 255), 0, 255).astype(np.uint8))
    return np.asarray(img.resize((w, h), method), dtype=np.float64) / 255


def _paper(ink: np.ndarray, paper: float, pen: float) -> np.ndarray:
    """Ink coverage in [0, 1] -> grey levels: ``paper`` where there is none, ``pen`` where full."""
    return paper + (pen - paper) * ink


def _gray(a: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.clip(np.round(a * 255), 0, 255).astype(np.uint8))


def _crop(x: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(x.max(axis=1) > 0), np.flatnonzero(x.max(axis=0) > 0)
    return x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _running_max(a: np.ndarray, k: int, op=np.maximum) -> np.ndarray:
    r = k // 2
    p = np.pad(a, r, mode="edge")
    h, w = a.shape
    out = p[r:r + h, r:r + w].copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out = op(out, p[r + dy:r + dy + h, r + dx:r + dx + w])
    return out


def dark_on_white(x, rng):
    """A scan: dark ink on white paper, 4x MNIST's size, smooth."""
    return _gray(_paper(_resize(x, 112, 112), 1.0, 0.1))


def _paper_at(level: int):
    def present(x, rng):
        # Paper at this grey level (dim or bright light), the ink a fifth as bright.
        return _gray(_paper(_resize(x, 112, 112), level / 255, 0.2 * level / 255))
    present.__name__ = f"paper_{level}"
    return present


def _low_res(n: int):
    def present(x, rng):
        # Cropped to the digit, reduced to n x n (17 grey levels: counts of a 4x4 block of a
        # binary 32x32, as in the UCI digits), then scaled up smoothly: soft, frame-filling.
        d = _crop(x)
        h, w = d.shape
        side = max(h, w)
        sq = np.zeros((side, side))
        sq[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = d
        small = np.round(_resize(sq, n, n, method=_box()) * 16) / 16
        return _gray(_paper(_resize(small, 64, 64), 1.0, 0.0))
    present.__name__ = f"low_res_{n}"
    return present


def _box():
    from PIL import Image

    return Image.Resampling.BOX


def frame_filling(x, rng):
    """Cropped to the digit's bounding box, no margin at all, dark on white, 4x."""
    d = _crop(x)
    return _gray(_paper(_resize(d, 4 * d.shape[1], 4 * d.shape[0]), 1.0, 0.1))


def _blur(sigma: float):
    def present(x, rng):
        return _gray(_paper(np.clip(gaussian(_resize(x, 80, 80), sigma), 0, 1), 1.0, 0.1))
    present.__name__ = f"blur_{sigma:g}"
    return present


def marker(x, rng):
    """A thick felt marker: strokes widened by about 1 MNIST pixel on each side (4x scale)."""
    return _gray(_paper(_running_max(_resize(x, 112, 112), 9), 1.0, 0.1))


def thin_pen(x, rng):
    """A thin pen: strokes narrowed by about 0.75 MNIST pixel on each side (4x scale)."""
    return _gray(_paper(_running_max(_resize(x, 112, 112), 7, np.minimum), 1.0, 0.1))


def jpeg_15(x, rng):
    from PIL import Image

    buf = io.BytesIO()
    dark_on_white(x, rng).save(buf, format="JPEG", quality=15)
    return Image.open(io.BytesIO(buf.getvalue()))


def photo(x, rng):
    """A 640x480 photo of a sheet: the digit 60 to 100 pixels high somewhere on it, light
    falling off across the sheet, a little lens blur and sensor noise, saved as JPEG."""
    size = int(rng.integers(60, 101))
    return sheet_photo(_resize(x, size, size), rng)


def sheet_photo(ink_patch: np.ndarray, rng):
    """``ink_patch`` (float, 1 = ink) placed at random on a 640x480 photo of a sheet, light
    falling off across the sheet, a little lens blur and sensor noise, saved as JPEG."""
    from PIL import Image

    h, w = 480, 640
    ph, pw = ink_patch.shape
    top, left = int(rng.integers(20, h - ph - 20)), int(rng.integers(20, w - pw - 20))
    ink = np.zeros((h, w))
    pad = 4  # the blur reaches this far out of the digit's patch: only that patch is blurred
    ink[top - pad:top + ph + pad, left - pad:left + pw + pad] = gaussian(np.pad(ink_patch, pad), 0.8)
    angle = rng.uniform(0, 2 * math.pi)
    ramp_y = (np.arange(h) / w - 0.5) * np.sin(angle)
    ramp_x = (np.arange(w) / w - 0.5) * np.cos(angle)
    paper = (0.55 + 0.35 * (0.5 + ramp_y[:, None] + ramp_x[None, :])) * rng.uniform(0.85, 1.0)
    gray = paper * (1 - 0.85 * ink) + rng.normal(0, 0.02, (h, w))
    buf = io.BytesIO()
    _gray(np.clip(gray, 0, 1)).save(buf, format="JPEG", quality=85)
    return Image.open(io.BytesIO(buf.getvalue()))


PRESENTATIONS: dict[str, Callable] = {f.__name__: f for f in (
    dark_on_white, *(_paper_at(v) for v in (60, 100, 160, 200)), *(_low_res(n) for n in (8, 12, 16)),
    frame_filling, _blur(2), _blur(4), marker, thin_pen, jpeg_15, photo)}


def clean(x, rng):
    """MNIST's own test digit, as it is."""
    return _gray(x)


def corrupted_image(name: str, digit: np.ndarray, rng: np.random.Generator):
    """One test digit (uint8 [28, 28]) under the named row, as the Pillow image a user would give."""
    x = digit.astype(np.float64) / 255
    if name == "clean":
        return clean(x, rng)
    if name in MNIST_C:
        return _gray(MNIST_C[name](x, rng))
    return PRESENTATIONS[name](x, rng)


ROWS = ("clean", *MNIST_C, *PRESENTATIONS)


def sample(labels: np.ndarray, per_class: int, seed: int = SEED) -> np.ndarray:
    """A fixed stratified sample: ``per_class`` indices of each class, sorted."""
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picked))


# Digits are corrupted and read in chunks of this many, each chunk seeded on its own (by
# row and position): the work spreads evenly over processes, and the table is the same
# for any number of them.
CHUNK = 50


def read_chunk(name: str, digits: np.ndarray, chunk: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Each digit under the named row through the reading path: uint8 [N, 28, 28] as the
    model sees them, and which of them were answered "no digit"."""
    from .reading import images

    rng = np.random.default_rng([seed, ROWS.index(name), chunk])
    seen = np.zeros((len(digits), SIDE, SIDE), dtype=np.uint8)
    refused = np.zeros(len(digits), dtype=bool)
    for i, d in enumerate(digits):
        try:
            seen[i] = images.to_mnist(corrupted_image(name, d, rng))
        except images.NoDigit:
            refused[i] = True
    return seen, refused


def _read_chunk(args) -> tuple[np.ndarray, np.ndarray]:
    return read_chunk(*args)


def run_robustness(model, digits: np.ndarray, labels: np.ndarray, rows: tuple[str, ...] = ROWS,
                   workers: int = 1, progress: Callable[[str], None] | None = None) -> dict:
    """The table: per row, accuracy, "no digit" rate and count; MNIST-C's mean over its 15.

    Digits are read in ``workers`` processes; the model runs here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    out: dict = {"rows": {}}
    classes = np.asarray(model.classes)
    t0 = time.perf_counter()
    starts = range(0, len(digits), CHUNK)
    jobs = [(name, digits[s:s + CHUNK], k) for name in rows for k, s in enumerate(starts)]
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        results = pool.map(_read_chunk, jobs)
    else:
        pool, results = None, map(_read_chunk, jobs)
    try:
        for name in rows:
            parts = [next(results) for _ in starts]
            seen = np.concatenate([p[0] for p in parts])
            refused = np.concatenate([p[1] for p in parts])
            predicted = classes[np.argmax(model.predict_proba(seen), axis=1)]
            correct = (predicted == labels) & ~refused
            r = out["rows"][name] = {"accuracy": float(correct.mean()), "no_digit": float(refused.mean()),
                                     "n": int(len(labels))}
            if progress:
                progress(f"{name:>15}: {r['accuracy'] * 100:6.2f}%  no digit {r['no_digit'] * 100:5.2f}%")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    corrupted = [out["rows"][n]["accuracy"] for n in MNIST_C if n in out["rows"]]
    out["mnist_c_mean"] = float(np.mean(corrupted)) if corrupted else None
    out["seconds"] = time.perf_counter() - t0
    return out


def format_robustness(result: dict) -> str:
    clean_acc = result["rows"].get("clean", {}).get("accuracy")
    lines = ["| row | accuracy | no digit | vs clean (points) |", "|---|---:|---:|---:|"]
    for name, r in result["rows"].items():
        drop = f"{(r['accuracy'] - clean_acc) * 100:+.1f}" if clean_acc is not None and name != "clean" else ""
        lines.append(f"| {name} | {r['accuracy'] * 100:.1f}% | {r['no_digit'] * 100:.1f}% | {drop} |")
    if result.get("mnist_c_mean") is not None:
        lines.append(f"| **MNIST-C mean (15)** | **{result['mnist_c_mean'] * 100:.1f}%** | | |")
    return "\n".join(lines)


def plot_robustness(result: dict, path) -> None:
    """A horizontal bar chart of accuracy per row (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["rows"])
    acc = [result["rows"][n]["accuracy"] * 100 for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(names) + 1))
    colours = ["#4c72b0" if n in MNIST_C else "#55a868" if n in PRESENTATIONS else "#555555" for n in names]
    ax.barh(names[::-1], acc[::-1], color=colours[::-1])
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy through the whole reading path (%)")
    ax.set_title(f"robustness (MNIST-C mean {result['mnist_c_mean'] * 100:.1f}%)")
    for i, v in enumerate(acc[::-1]):
        ax.text(min(v + 0.5, 90), i, f"{v:.1f}", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def benchmark(run_dir=None, per_class: int = 100, workers: int = 1, data_dir: str | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    """The whole benchmark for a run folder (``None``: the default recipe, trained now)."""
    import tempfile

    from .data import load_dataset
    from .reading import lite

    dataset = load_dataset(data_dir=data_dir)
    labels, digits = dataset.test_labels.numpy(), dataset.test_images.numpy()
    if dataset.n_classes != 10 or digits.shape[1:] != (SIDE, SIDE):
        from .errors import UserError

        raise UserError("the robustness benchmark reads digits: it needs MNIST's 28x28 test digits, 10 classes")
    picked = sample(labels, per_class)
    with tempfile.TemporaryDirectory() as tmp:
        if run_dir is None:
            from .api import train_run
            from .config import build_config

            if progress:
                progress("no --run given: training the default recipe first")
            train_run(build_config(), f"{tmp}/run", dataset=dataset)
            model, name = lite.load_run(f"{tmp}/run"), "the default recipe, trained for this benchmark"
        else:
            model, name = lite.load_run(run_dir), str(run_dir)
    result = run_robustness(model, digits[picked], labels[picked], workers=workers, progress=progress)
    result.update(run=name, per_class=per_class, digits=int(len(picked)), seed=SEED)
    return result
