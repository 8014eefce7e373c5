"""Damaged copies of training digits, read as ``predict`` reads: what real inputs look like.

MNIST's training digits are clean scans. The images people bring are not: sensor grain,
dead pixels, a blot of ink or a coffee stain over a stroke, a line of the form or a
doodle through the digit, an outline instead of a filled stroke (an edge filter, a
hollow font, a stencil), a smear or an out-of-focus shot, a digit written at a tilt. A
linear model trained on clean scans only has never been told that a stroke through
a 5 is not part of it. Here each extra training digit is a copy of a training digit with
one such damage at a random strength, drawn from broad ranges (written from what the
damage is, not from any benchmark's code or settings), and then read by
``reading.images.to_mnist``, the path ``predict`` takes, so the model learns on what it
will be shown. The clean digits all stay in the training set: the copies are added.

Light ink on black, float [28, 28] in [0, 1], in and out; each family takes a NumPy
generator, so a seed gives the same copies on every machine.
"""

from __future__ import annotations

import functools
import math

import numpy as np

SIDE = 28
# The copies' seed, the same whatever the training seed: reading them is what costs (half
# a minute for MNIST), and one set, cached, serves every seed, tuning's final run included;
# the training seed still orders the batches and starts the weights.
SEED = 0


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur, zeros outside (the paper beyond the image is empty)."""
    r = max(1, int(3 * sigma + 0.5))
    t = np.arange(-r, r + 1)
    k = np.exp(-t * t / (2 * sigma * sigma))
    k /= k.sum()
    x = np.apply_along_axis(np.convolve, 0, x, k, mode="same")
    return np.apply_along_axis(np.convolve, 1, x, k, mode="same")


def _stroke(points: np.ndarray, width: float) -> np.ndarray:
    """A polyline through ``points`` (x, y) drawn with a round pen of ``width`` pixels:
    each pixel's ink falls off linearly over the last pixel of the pen's half-width."""
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    dist = np.full((SIDE, SIDE), np.inf)
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        dist = np.minimum(dist, np.hypot(xs - x0 - t * dx, ys - y0 - t * dy))
    return np.clip(width / 2 + 0.5 - dist, 0, 1)


def grain(x, rng):
    """Sensor grain: photon counts (few photons: dark, fast shots) and read noise."""
    photons = math.exp(rng.uniform(math.log(2), math.log(40)))
    y = rng.poisson(x * photons) / photons
    return np.clip(y + rng.normal(0, rng.uniform(0, 0.12), x.shape), 0, 1)


def dead_pixels(x, rng):
    """Pixels stuck dark or bright, anywhere from a few to a quarter of them."""
    hit = rng.random(x.shape) < rng.uniform(0.02, 0.25)
    value = (rng.random(x.shape) < rng.uniform(0.2, 0.8)).astype(np.float64)
    return np.where(hit, value, x)


def blots(x, rng):
    """Blots of ink or stain, a few pixels across, over or under the strokes."""
    y = x.copy()
    for _ in range(rng.integers(1, 6)):
        cy, cx = rng.uniform(0, SIDE, 2)
        ry, rx = rng.uniform(0.8, 3.5, 2)
        ys, xs = np.mgrid[0:SIDE, 0:SIDE]
        inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
        level = rng.uniform(0.1, 0.9)
        y = np.where(inside, level if rng.random() < 0.6 else np.maximum(y, level), y)
    return y


def line_through(x, rng):
    """A stroke that is not the digit: a ruled line, a wavy or zigzag doodle, solid or
    dashed, across the frame or part of it."""
    n = int(rng.integers(2, 12))
    x0, x1 = sorted(rng.uniform(-2, SIDE + 1, 2))
    if x1 - x0 < 8:
        x0, x1 = -1.0, SIDE
    y0 = rng.uniform(0, SIDE)
    slope = rng.uniform(-0.5, 0.5)
    xs = np.linspace(x0, x1, n + 1)
    wobble = rng.uniform(0, 3) * (rng.choice([-1, 1], n + 1) if rng.random() < 0.5 else
                                  np.sin(np.linspace(0, rng.uniform(2, 12), n + 1)))
    points = np.stack([xs, y0 + slope * (xs - x0) + wobble], axis=1)
    if rng.random() < 0.5:
        points = points[:, ::-1]  # across the other way
    line = _stroke(points, rng.uniform(0.7, 2.0)) * rng.uniform(0.5, 1.0)
    if rng.random() < 0.4:  # dashed
        period = int(rng.integers(3, 7))
        along = np.add.outer(np.arange(SIDE), np.arange(SIDE)) if rng.random() < 0.5 else \
            np.tile(np.arange(SIDE), (SIDE, 1))
        line = line * ((along % period) < period / 2)
    return np.maximum(x, line)


def outline(x, rng):
    """The strokes' outline instead of the strokes: an edge filter, a hollow font."""
    s = _blur(x, rng.uniform(0.3, 1.2))
    gy, gx = np.gradient(s)
    edge = np.hypot(gx, gy)
    edge = edge / max(edge.max(), 1e-9)
    return np.where(edge > rng.uniform(0.15, 0.4), 1.0, 0.0) if rng.random() < 0.6 else np.clip(edge * 1.5, 0, 1)


def smear(x, rng):
    """A shaken camera or an out-of-focus one: a streak along one direction, or a blur."""
    if rng.random() < 0.5:
        return np.clip(_blur(x, rng.uniform(0.5, 1.8)) * rng.uniform(1.0, 1.6), 0, 1)
    angle, length = rng.uniform(0, math.pi), int(rng.integers(3, 10))
    p = np.pad(x, length)
    out = np.zeros_like(x)
    for i in range(length):
        dx, dy = int(round(i * math.cos(angle))), int(round(i * math.sin(angle)))
        out += p[length - dy:length - dy + SIDE, length - dx:length - dx + SIDE]
    return np.clip(out / length * rng.uniform(1.0, 2.0), 0, 1)


def tilt(x, rng):
    """Written or photographed at a tilt: rotated up to 35 degrees about the centre."""
    from PIL import Image

    img = Image.fromarray(np.round(x * 255).astype(np.uint8))
    return np.asarray(img.rotate(rng.uniform(-35, 35), Image.Resampling.BILINEAR), dtype=np.float64) / 255


FAMILIES = {f.__name__: f for f in (grain, dead_pixels, blots, line_through, outline, smear, tilt)}


def damaged(digits: np.ndarray, seed) -> tuple[np.ndarray, np.ndarray]:
    """uint8 digits [N, 28, 28] (light ink on black) -> (each one damaged by a family
    chosen at random and read by ``to_mnist``, uint8 [N, 28, 28]; which of them the reader
    answered "no digit", those left blank)."""
    from PIL import Image

    from ..reading import images

    rng = np.random.default_rng(seed)
    names = list(FAMILIES)
    out = np.zeros((len(digits), SIDE, SIDE), dtype=np.uint8)
    refused = np.zeros(len(digits), dtype=bool)
    for i, d in enumerate(digits):
        y = FAMILIES[names[rng.integers(len(names))]](d.astype(np.float64) / 255, rng)
        try:
            out[i] = images.to_mnist(Image.fromarray(np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)))
        except images.NoDigit:
            refused[i] = True
    return out, refused


# Copies are made in chunks of this many digits, each chunk seeded on its own (by the seed,
# the round and its position), so the copies are the same for any number of processes.
CHUNK = 500


def _chunk(args) -> tuple[np.ndarray, np.ndarray]:
    digits, seed = args
    return damaged(digits, seed)


def damage_round(images: np.ndarray, seed: int = SEED, rnd: int = 0, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One damaged copy of every digit of ``images`` (uint8 [N, 28, 28]) as ``damaged``
    returns them, read in ``workers`` forked processes (about 0.5 ms a copy each).

    The copies depend on ``images``, ``seed`` and ``rnd`` alone, not on which of them are
    validated on: the training split takes its own digits' copies, and another validation
    split reuses the same round."""
    import multiprocessing

    jobs = [(images[s:s + CHUNK], [seed, rnd, k]) for k, s in enumerate(range(0, len(images), CHUNK))]
    if workers > 1 and len(jobs) > 1 and "fork" in multiprocessing.get_all_start_methods():
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
            parts = list(pool.map(_chunk, jobs))
    else:
        parts = [_chunk(job) for job in jobs]
    if not parts:
        return np.zeros((0, SIDE, SIDE), dtype=np.uint8), np.zeros(0, dtype=bool)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def pick(idx: np.ndarray, per_digit: float, rnd: int, seed: int = SEED) -> np.ndarray:
    """Which digits of ``idx`` get a copy in round ``rnd``: all of them in each whole round
    of ``per_digit``, a seeded share of them in its fractional last one."""
    share = min(max(per_digit - rnd, 0.0), 1.0)
    if share >= 1:
        return idx
    return np.sort(np.random.default_rng([seed, rnd]).permutation(idx)[:int(share * len(idx) + 0.5)])


@functools.cache
def version() -> str:
    """A digest of what makes the copies (this module and the reader): the disk cache's key.
    Read once per process: the source does not change under a running program."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).resolve().parent
    return hashlib.sha256(b"".join(p.read_bytes() for p in (here / "damage.py", here.parent / "reading" / "images.py"))
                          ).hexdigest()[:16]
