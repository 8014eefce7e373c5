"""A trained model run with NumPy alone: ``predict`` without importing PyTorch.

Importing PyTorch costs about 1.5 s and, with the CUDA build, about 650 MB of resident
memory before any work; NumPy, Pillow and safetensors cost about 30 MB. Classifying a few
photos needs none of PyTorch: the model is one matrix, and the preprocessing a handful of
array operations. This module is ``preprocess.Preprocessor`` and ``model.Classifier``
rewritten in NumPy, step for step (the same float64 moments, the same float32 sampling
grid, the same bilinear rule as ``grid_sample``); ``tests/test_lite.py`` holds it to the
PyTorch path on all 10,000 MNIST test digits. Training, ``evaluate``, ``serve`` and the
exports keep the PyTorch path, which is the reference.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from .modelfile import ModelFile, check_image_shape, model_path, read_model_file, run_class_names

PIXEL_MAX = 255.0
# Moment normalisation never stretches or shrinks a digit by more than this factor: a
# "1" is narrow by nature, and blowing it up to an average width would destroy it.
MAX_SCALE = 2.0
DIRECTION_SIGMA = 1.0
DIRECTION_RADIUS = 3
CHUNK = 1024  # images a time through the features (LiteModel.logits)


@functools.cache
def blur_pool_matrix(n: int) -> np.ndarray:
    """[n/2, n] float32: a Gaussian blur (zeros outside) followed by averaging pairs of pixels.
    Built once per size; ``preprocess`` uses this one too, as a tensor."""
    t = np.arange(-DIRECTION_RADIUS, DIRECTION_RADIUS + 1, dtype=np.float64)
    g = np.exp(-t * t / (2 * DIRECTION_SIGMA ** 2))
    g = g / g.sum()
    m = np.zeros((n // 2, n), dtype=np.float64)
    for i in range(n // 2):
        for centre in (2 * i, 2 * i + 1):
            for k, value in zip(range(centre - DIRECTION_RADIUS, centre + DIRECTION_RADIUS + 1), g):
                if 0 <= k < n:
                    m[i, k] += value / 2
    out = m.astype(np.float32)
    out.flags.writeable = False  # cached and shared
    return out


def raw_moments(images: np.ndarray) -> tuple[np.ndarray, ...]:
    """float64 images [N, H, W] -> mass, cx, cy, var(x), var(y), cov(x, y) (preprocess.raw_moments)."""
    _, h, w = images.shape
    ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    rows, cols = images.sum(axis=2), images.sum(axis=1)
    row_x = images @ xs
    mass = np.maximum(rows.sum(axis=1), 1e-6)
    cy, cx = rows @ ys / mass, cols @ xs / mass
    var_y = np.maximum(rows @ (ys * ys) / mass - cy * cy, 0)
    var_x = np.maximum(cols @ (xs * xs) / mass - cx * cx, 0)
    cov_xy = row_x @ ys / mass - cx * cy
    return mass, cx, cy, var_x, var_y, cov_xy


def geometric_views(images: np.ndarray, shear: bool, targets: list[np.ndarray | None]) -> np.ndarray:
    """float32 [N, H, W] -> [len(targets) * N, H, W]: the images centred, optionally
    deskewed, and normalised in size to each of ``targets`` in turn (a target_std, or None:
    no size normalisation), as preprocess.geometric_normalize does; their moments found
    once, all warped in one batch."""
    n, h, w = images.shape
    _, cx, cy, var_x, var_y, cov_xy = raw_moments(images.astype(np.float64))
    blank = images.sum(axis=(1, 2), dtype=np.float32) <= 0
    zero, one = np.zeros(n), np.ones(n)
    alpha = np.where(var_y > 1e-6, cov_xy / np.maximum(var_y, 1e-6), zero) if shear else zero
    alpha = np.where(blank, zero, alpha)
    cx = np.where(blank, (w - 1) / 2, cx)
    cy = np.where(blank, (h - 1) / 2, cy)
    y0, x0 = (h - 1) / 2, (w - 1) / 2
    gx, gy = [], []
    for target_std in targets:
        if target_std is not None:
            target = target_std.astype(np.float64)
            std_y = np.sqrt(var_y)
            std_x = np.sqrt(np.maximum(var_x - cov_xy * cov_xy / np.maximum(var_y, 1e-6), 0)) if shear \
                else np.sqrt(var_x)
            # np.clip's bounds as np.minimum of np.maximum: the same values, without its overhead.
            sy = np.where(blank, one, np.minimum(np.maximum(std_y / target[0], 1 / MAX_SCALE), MAX_SCALE))
            sx = np.where(blank, one, np.minimum(np.maximum(std_x / target[1], 1 / MAX_SCALE), MAX_SCALE))
        else:
            sy, sx = one, one
        kx = cx - sx * x0 - alpha * sy * y0
        gx.append(((2 * kx + 1) / w - 1, 2 * sx / w, 2 * alpha * sy / w))
        gy.append(((2 * (cy - sy * y0) + 1) / h - 1, zero, 2 * sy / h))
    if len(targets) == 1:
        return _warp_affine(images, gx[0], gy[0])
    return _warp_affine(np.concatenate([images] * len(targets)),
                        *(tuple(np.concatenate(parts) for parts in zip(*g)) for g in (gx, gy)))


def _zero_border(images: np.ndarray) -> np.ndarray:
    """images [N, H, W] in a one-pixel border of zeros: np.pad's, without its cost (a fifth
    of one digit's features)."""
    n, h, w = images.shape
    out = np.zeros((n, h + 2, w + 2), dtype=images.dtype)
    out[:, 1:-1, 1:-1] = images
    return out


def _warp_affine(images: np.ndarray, gx: tuple, gy: tuple) -> np.ndarray:
    """Bilinear sampling at a per-image affine grid in grid_sample's normalised coordinates
    (align_corners=False, zeros outside), the grid built in float32 as PyTorch builds it."""
    n, h, w = images.shape
    ys = np.arange(h, dtype=np.float32).reshape(1, h, 1)
    xs = np.arange(w, dtype=np.float32).reshape(1, 1, w)
    v = lambda a: np.asarray(a, dtype=np.float32).reshape(n, 1, 1)  # noqa: E731
    grid_x = v(gx[0]) + v(gx[1]) * xs + v(gx[2]) * ys
    grid_y = v(gy[0]) + v(gy[1]) * xs + v(gy[2]) * ys
    # Normalised -> pixel coordinates: ((g + 1) * size - 1) / 2, as grid_sample does.
    ix = ((grid_x + 1) * np.float32(w) - 1) / 2
    iy = ((grid_y + 1) * np.float32(h) - 1) / 2
    x0, y0 = np.floor(ix), np.floor(iy)
    fx, fy = ix - x0, iy - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    # The images in a border of zeros: a neighbour outside the image, its index clipped to
    # the border, reads 0 there (no mask to make and apply: a third of one digit's sampling).
    flat = _zero_border(images.astype(np.float32, copy=False)).reshape(-1)
    at = np.arange(n).reshape(n, 1, 1) * ((h + 2) * (w + 2))
    # Each neighbour's row and column in the bordered images, clipped to the border
    # (np.minimum of np.maximum: np.clip's own overhead was a tenth of a number's features).
    cols = [np.minimum(np.maximum(x0 + dx, -1), w) + 1 for dx in (0, 1)]
    out = np.zeros((n, h, w), dtype=np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        row = at + (np.minimum(np.maximum(y0 + dy, -1), h) + 1) * (w + 2)
        for col, wx in zip(cols, (1 - fx, fx)):
            out += flat[row + col] * (wx * wy)
    return out


def stroke_directions(images: np.ndarray) -> np.ndarray:
    """float32 images [N, H, W] (H, W even) -> four orientation planes tiled 2x2 (preprocess.stroke_directions)."""
    n, h, w = images.shape
    p = _zero_border(images)
    across_rows = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]
    across_cols = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]
    gx = across_rows[:, :, 2:] - across_rows[:, :, :-2]
    gy = across_cols[:, 2:] - across_cols[:, :-2]
    ax, ay = np.abs(gx), np.abs(gy)
    lo, hi = np.minimum(ax, ay), np.maximum(ax, ay)
    diagonal = lo * np.float32(math.sqrt(2))
    straight = hi - lo
    zero = np.zeros_like(gx)
    same_sign = gx * gy >= 0
    planes = np.stack((np.where(ax >= ay, straight, zero), np.where(same_sign, diagonal, zero),
                       np.where(ax < ay, straight, zero), np.where(same_sign, zero, diagonal)), axis=1)
    pooled = np.sqrt(np.maximum(blur_pool_matrix(h) @ planes @ blur_pool_matrix(w).T, 0))
    return pooled.reshape(n, 2, 2, h // 2, w // 2).transpose(0, 1, 3, 2, 4).reshape(n, h, w)


class LiteModel:
    """A checked model file as arrays: images [N, H, W] -> probabilities, like ``Checkpoint``."""

    def __init__(self, mf: ModelFile):
        self.config, self.image_shape, self.classes = mf.config, mf.image_shape, mf.classes
        # The classes' names where the run's data named them (``load_run``): a model whose
        # ten classes are not the digits reads one item an image, never a number.
        self.class_names: list[str] | None = None
        self.tensors = mf.tensors

    def unscaled(self, images: np.ndarray) -> np.ndarray:
        """Features before standardisation (``Preprocessor.unscaled`` after its geometric steps)."""
        return unscaled_views([self], images)[0]

    def _target(self) -> np.ndarray | None:
        return self.tensors["preprocess.target_std"] if self.config.preprocess.moment_norm else None

    def shares_unscaled(self, other: LiteModel) -> bool:
        """Whether ``other``'s unscaled features of an image are this model's: the same
        geometric steps, to the same target spreads, the same gamma and planes."""
        a, b = self.config.preprocess, other.config.preprocess
        same = (a.deskew, a.moment_norm, a.gamma, a.directions) == (b.deskew, b.moment_norm, b.gamma, b.directions)
        return same and self.image_shape == other.image_shape and (not a.moment_norm or np.array_equal(
            self.tensors["preprocess.target_std"], other.tensors["preprocess.target_std"]))

    def features(self, images: np.ndarray, unscaled: np.ndarray | None = None) -> np.ndarray:
        """Standardised features; ``unscaled``: the images' unscaled features, if made already."""
        pre, t = self.config.preprocess, self.tensors
        x = self.unscaled(images) if unscaled is None else unscaled
        if pre.normalize != "none":
            x = (x - t["preprocess.mean"]) / t["preprocess.std"]
        return x

    def logits(self, images: np.ndarray, unscaled: np.ndarray | None = None) -> np.ndarray:
        images = np.asarray(images)
        check_image_shape(images.shape, self.image_shape)
        # In chunks: the sampling's index and weight arrays for 10,000 images at once took
        # 0.8 GB (evaluate), and a chunk's fit in the CPU's caches.
        w, b = self.tensors["linear.weight"].T, self.tensors["linear.bias"]
        return np.concatenate([self.features(images[i:i + CHUNK], None if unscaled is None else unscaled[i:i + CHUNK])
                               @ w + b for i in range(0, len(images), CHUNK)]) if len(images) else \
            np.zeros((0, len(self.classes)), np.float32)

    def predict_proba(self, images: np.ndarray, unscaled: np.ndarray | None = None) -> np.ndarray:
        """Probabilities [N, classes]; ``unscaled``: the images' unscaled features, if made
        already (by a model that ``shares_unscaled`` with this one)."""
        z = self.logits(images, unscaled)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


def unscaled_views(models: list[LiteModel], images: np.ndarray) -> list[np.ndarray]:
    """Each model's ``unscaled`` features of the same images, each distinct one made once:
    models that differ only in moment normalisation (its target spreads, or none) share the
    images' moments, and their warps and stroke directions are made in one batch (a
    number's pieces, read by the digit model and the two piece checks: 5 pieces in 0.65 ms,
    against 0.81 ms for each distinct set made apart)."""
    views: list[LiteModel] = []  # one model for each distinct set of features
    of = []
    for m in models:
        k = next((k for k, v in enumerate(views) if v.shares_unscaled(m)), len(views))
        views += [m] if k == len(views) else []
        of.append(k)
    pre = [v.config.preprocess for v in views]
    if len({(p.deskew or p.moment_norm, p.deskew, p.gamma, p.directions, v.image_shape)
            for p, v in zip(pre, views)}) > 1:
        made = [unscaled_views([v], images)[0] for v in views]  # nothing shared but the images
        return [made[k] for k in of]
    p = pre[0]
    x = images.astype(np.float32) / np.float32(PIXEL_MAX) if images.dtype == np.uint8 \
        else images.astype(np.float32)
    n = len(x)
    if p.deskew or p.moment_norm:
        x = geometric_views(x, p.deskew, [v._target() for v in views])  # (the views one after another)
    if p.gamma != 1:
        x = np.maximum(x, 0) ** np.float32(p.gamma)
    if p.directions:
        x = stroke_directions(x)
    x = x.reshape(len(x), -1)
    return [x[k * n:(k + 1) * n] for k in of]


def web_spec(preprocess, image_shape, classes, tensors: dict[str, np.ndarray]) -> dict:
    """A model as the web page's recogniser (web/recognizer.js) takes it: the preprocessing
    settings, and the float32 tensors (the model file's names) in base64."""
    import base64

    def b64(name: str) -> str:
        return base64.b64encode(np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes()).decode("ascii")

    return {"imageShape": list(image_shape), "classes": list(classes),
            "preprocess": {"deskew": preprocess.deskew, "moment_norm": preprocess.moment_norm,
                           "gamma": float(preprocess.gamma), "normalize": preprocess.normalize,
                           "directions": preprocess.directions},
            "weight": b64("linear.weight"), "bias": b64("linear.bias"), "mean": b64("preprocess.mean"),
            "std": b64("preprocess.std"), "targetStd": b64("preprocess.target_std")}


def load_run(run_dir: str | os.PathLike) -> LiteModel:
    model = LiteModel(read_model_file(model_path(run_dir)))
    model.class_names = run_class_names(run_dir, len(model.classes))
    return model
