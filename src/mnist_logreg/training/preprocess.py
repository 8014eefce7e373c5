"""Everything that happens to the pixels before the linear layer.

Data flows: uint8 images [N, H, W] -> float in [0, 1] -> (deskew, moment normalisation)
-> (augment, training only) -> (gamma) -> (stroke directions) -> flatten -> (standardise)
-> features [N, H*W].
``Preprocessor`` is the fitted part, an ``nn.Module`` whose buffers (normalisation and
moment statistics) are saved inside the model file; ``model.Classifier`` puts it in front
of the linear layer, so training, evaluation, prediction, ``serve`` and the exported graphs
all run this one code. Augmentation is a separate function that only the trainer calls.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AugmentConfig, PreprocessConfig
from ..reading.lite import MAX_SCALE, PIXEL_MAX, blur_pool_matrix

# Deskewing at 128x the batch size of the data would need gigabytes; chunk it.
_CHUNK = 8192


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W] -> float32 in [0, 1] (float input is passed through)."""
    if images.dtype == torch.uint8:
        return torch.div(images, PIXEL_MAX)  # one op: uint8 / float -> float32
    return images.float()


def _pixel_grid(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(h, device=device, dtype=torch.float32)
    xs = torch.arange(w, device=device, dtype=torch.float32)
    return ys.view(1, h, 1), xs.view(1, 1, w)


def warp(images: torch.Tensor, src_x: torch.Tensor, src_y: torch.Tensor) -> torch.Tensor:
    """Sample ``images`` [N, H, W] at source pixel coordinates [N, H, W] (bilinear, zeros outside)."""
    n, h, w = images.shape
    # grid_sample wants (x, y) in [-1, 1] with align_corners=False: pixel j is at (2j + 1) / W - 1.
    grid = torch.stack(((2 * src_x + 1) / w - 1, (2 * src_y + 1) / h - 1), dim=-1)
    return F.grid_sample(images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False).squeeze(1)


def raw_moments(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Mass, centre of mass (cx, cy), var(x), var(y) and cov(x, y) of each image, in pixels.

    Computed from the row and column sums and one matrix product, rather than from
    [N, H, W] temporaries: a few passes over the data instead of a dozen. The moment
    arithmetic runs in float64 (as do the results): var = E[y^2] - E[y]^2 subtracts
    numbers near 200 to get numbers near 30, which in float32 leaves errors large enough
    to move resampled pixels (and make an exported ONNX copy disagree beyond 1e-5).
    """
    n, h, w = images.shape
    ys = torch.arange(h, device=images.device, dtype=torch.float64)
    xs = torch.arange(w, device=images.device, dtype=torch.float64)
    rows = images.sum(dim=2).double()  # [N, H]: mass per row
    cols = images.sum(dim=1).double()  # [N, W]: mass per column
    row_x = (images @ xs.to(images.dtype)).double()  # [N, H]: x-weighted mass per row (images' dtype)
    mass = rows.sum(dim=1).clamp_min(1e-6)
    cy = rows @ ys / mass
    cx = cols @ xs / mass
    var_y = (rows @ (ys * ys) / mass - cy * cy).clamp_min(0)
    var_x = (cols @ (xs * xs) / mass - cx * cx).clamp_min(0)
    cov_xy = row_x @ ys / mass - cx * cy
    return mass, cx, cy, var_x, var_y, cov_xy


def deskew(images: torch.Tensor) -> torch.Tensor:
    """Straighten each image [N, H, W] (float) by shearing away the x-y covariance.

    For an image with centre of mass c and second moments var(y), cov(x, y), the output
    pixel (x, y) samples the input at x' = cx + (x - x0) + a (y - y0), y' = cy + (y - y0)
    with a = cov(x, y) / var(y) and (x0, y0) the image centre: the result has zero x-y
    covariance and its centre of mass at the centre. Blank images are left as they are.
    """
    return geometric_normalize(images, shear=True, target_std=None)


def spreads(images: torch.Tensor, shear: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the spread (std, pixels) along y, and along x (once deskewed if ``shear``)."""
    _, _, _, var_x, var_y, cov_xy = raw_moments(images)
    return var_y.sqrt(), _spread_x(var_x, var_y, cov_xy, shear)


def _spread_x(var_x, var_y, cov_xy, shear: bool) -> torch.Tensor:
    # After the shear x' = x - a y with a = cov/var(y): var(x') = var(x) - cov^2 / var(y).
    if not shear:
        return var_x.sqrt()
    return (var_x - cov_xy * cov_xy / var_y.clamp_min(1e-6)).clamp_min(0).sqrt()


def geometric_normalize(images: torch.Tensor, shear: bool, target_std: torch.Tensor | None) -> torch.Tensor:
    """Centre each image [N, H, W] by its mass; optionally deskew and normalise its size.

    ``shear``: remove the x-y covariance (deskewing). ``target_std`` (y, x), if given:
    also scale the digit so its vertical spread, and its horizontal spread once
    deskewed, equal these (moment normalisation), within a factor ``MAX_SCALE``.
    One bilinear ``grid_sample`` per image; blank images are left as they are.
    """
    if images.shape[0] > _CHUNK:
        return torch.cat([geometric_normalize(c, shear, target_std) for c in images.split(_CHUNK)])
    n, h, w = images.shape
    # Moments from float64 pixels: float32 sums, rounded differently by another runtime
    # (ONNX), would move the resampled pixels by ~1e-5 (see raw_moments).
    _, cx, cy, var_x, var_y, cov_xy = raw_moments(images.double())
    blank = images.sum(dim=(1, 2)) <= 0
    zero = torch.zeros_like(var_y)
    alpha = torch.where(var_y > 1e-6, cov_xy / var_y.clamp_min(1e-6), zero) if shear else zero
    alpha = torch.where(blank, zero, alpha)
    one = torch.ones_like(var_y)
    if target_std is not None:
        target = target_std.double()
        std_y, std_x = var_y.sqrt(), _spread_x(var_x, var_y, cov_xy, shear)
        sy = (std_y / target[0]).clamp(1 / MAX_SCALE, MAX_SCALE)
        sx = (std_x / target[1]).clamp(1 / MAX_SCALE, MAX_SCALE)
        sy, sx = torch.where(blank, one, sy), torch.where(blank, one, sx)
    else:
        sy, sx = one, one
    cx = torch.where(blank, torch.full_like(cx, (w - 1) / 2), cx)
    cy = torch.where(blank, torch.full_like(cy, (h - 1) / 2), cy)
    y0, x0 = (h - 1) / 2, (w - 1) / 2
    # Output pixel (x, y) samples the input at
    #   x' = cx + sx (x - x0) + alpha sy (y - y0),   y' = cy + sy (y - y0).
    # grid_sample wants normalised coordinates g = (2 p + 1) / size - 1, an affine function
    # of (x, y) too; its coefficients are computed per image in float64 and only then
    # rounded, so the per-pixel grid is three float32 operations, identical in any
    # runtime that executes the same graph (ONNX included).
    kx = cx - sx * x0 - alpha * sy * y0
    gx = (((2 * kx + 1) / w - 1), 2 * sx / w, 2 * alpha * sy / w)
    gy = (((2 * (cy - sy * y0) + 1) / h - 1), torch.zeros_like(sy), 2 * sy / h)
    return warp_affine(images, gx, gy)


def warp_affine(images: torch.Tensor, gx: tuple, gy: tuple) -> torch.Tensor:
    """Bilinear resampling where each image's normalised source grid is affine in (x, y):
    g = c0 + c1 x + c2 y with per-image coefficients ``gx`` and ``gy`` (zeros outside)."""
    n, h, w = images.shape
    ys, xs = _pixel_grid(h, w, images.device)
    v = lambda t: t.to(images.dtype).view(n, 1, 1)  # noqa: E731
    grid_x = v(gx[0]) + v(gx[1]) * xs + v(gx[2]) * ys
    grid_y = v(gy[0]) + v(gy[1]) * xs + v(gy[2]) * ys
    grid = torch.stack((grid_x, grid_y), dim=-1)
    return F.grid_sample(images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False).squeeze(1)


# Stroke directions: the gradient (Sobel) of the normalised image, split by the
# parallelogram rule between its two nearest of 8 directions and merged with the opposite
# ones into 4 orientations (Liu, Nakashima, Sako and Fujisawa, "Handwritten digit
# recognition: investigation of normalization and feature extraction techniques",
# Pattern Recognition 37(2), 2004). Each orientation's map is blurred (Gaussian, sigma 1
# pixel) and averaged over 2x2 blocks: four 14x14 planes, tiled 2x2 into a 28x28 "image"
# of 784 values. A linear layer on them is still one nn.Linear(784, 10); it no longer
# has to learn where a stroke is from its ink alone, but where a stroke of each slant is,
# which a template separates far better (docs/explanation/preprocessing.md).
@functools.cache
def _blur_pool_matrix(n: int) -> torch.Tensor:
    """[n/2, n]: a Gaussian blur (zeros outside) followed by averaging pairs of pixels
    (``lite.blur_pool_matrix``, the one definition). Built once per size: serve computes
    stroke directions for every request."""
    return torch.tensor(blur_pool_matrix(n))


def stroke_directions(images: torch.Tensor) -> torch.Tensor:
    """float images [N, H, W] (H, W even) -> [N, H, W]: four (H/2)x(W/2) orientation planes
    (vertical strokes, one diagonal, horizontal, the other diagonal), tiled 2x2.

    Square roots of the pooled gradient strengths: a variance-stabilising transform
    (Liu et al. 2004) that gives faint and bold strokes comparable weight.
    """
    if images.shape[0] > _CHUNK:
        return torch.cat([stroke_directions(c) for c in images.split(_CHUNK)])
    n, h, w = images.shape
    p = F.pad(images, (1, 1, 1, 1))
    # Sobel, separably: smooth [1, 2, 1] across, difference along.
    across_rows = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # [N, H, W+2]
    across_cols = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]  # [N, H+2, W]
    gx = across_rows[:, :, 2:] - across_rows[:, :, :-2]
    gy = across_cols[:, 2:] - across_cols[:, :-2]
    ax, ay = gx.abs(), gy.abs()
    lo, hi = torch.minimum(ax, ay), torch.maximum(ax, ay)
    diagonal = lo * math.sqrt(2)  # the share of the diagonal direction
    straight = hi - lo  # the share of the nearer axis
    zero = torch.zeros_like(gx)
    same_sign = gx * gy >= 0
    planes = torch.stack((torch.where(ax >= ay, straight, zero), torch.where(same_sign, diagonal, zero),
                          torch.where(ax < ay, straight, zero), torch.where(same_sign, zero, diagonal)), dim=1)
    rows, cols = _blur_pool_matrix(h).to(images.device), _blur_pool_matrix(w).to(images.device)
    pooled = (rows @ planes @ cols.T).clamp_min(0).sqrt()  # [N, 4, H/2, W/2]
    return pooled.view(n, 2, 2, h // 2, w // 2).permute(0, 1, 3, 2, 4).reshape(n, h, w)


class Preprocessor(nn.Module):
    """Fitted pixel preprocessing: to float, optional deskew and size, gamma, stroke directions,
    flatten, standardise.

    images [N, H, W] (uint8, or float in [0, 1]) -> features [N, H*W]. The statistics
    (buffers ``mean``, ``std``, ``target_std``) come from the training split only. The
    settings are plain attributes, fixed at construction: a traced or exported graph
    contains only the steps this run uses.
    """

    def __init__(self, config: PreprocessConfig, image_shape: tuple[int, int]):
        super().__init__()
        self.config = config
        self.image_shape = tuple(image_shape)
        n_pixels = self.image_shape[0] * self.image_shape[1]
        self.register_buffer("mean", torch.zeros(n_pixels))
        self.register_buffer("std", torch.ones(n_pixels))
        # (y, x) spreads for --moment-norm, from the training set
        self.register_buffer("target_std", torch.zeros(2))

    @property
    def n_features(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    @property
    def geometric(self) -> bool:
        return self.config.deskew or self.config.moment_norm

    def fit_geometry(self, images: torch.Tensor) -> Preprocessor:
        """Moment normalisation's target spreads: the training images' medians, or the
        config's ``target_spreads`` where it fixes them."""
        if self.config.moment_norm and self.config.target_spreads is not None:
            self.target_std = torch.tensor(self.config.spreads, dtype=torch.float32)
        elif self.config.moment_norm:
            x = to_float(images)
            std_y, std_x = zip(*(spreads(c, self.config.deskew) for c in x.split(_CHUNK)))
            self.target_std = torch.stack([torch.cat(std_y).median(), torch.cat(std_x).median()]).float().cpu()
        return self

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8/float [N, H, W] -> float images after the geometric steps (deskew, size)."""
        x = to_float(images)
        if self.geometric:
            target = self.target_std.to(x.device) if self.config.moment_norm else None
            x = geometric_normalize(x, shear=self.config.deskew, target_std=target)
        return x

    def unscaled(self, images: torch.Tensor) -> torch.Tensor:
        """float images [N, H, W] -> features [N, H*W] before standardisation: pixel values
        in [0, 1] raised to ``gamma`` (identity at 1, the default), then, with
        ``directions``, the stroke-direction planes instead of the pixels."""
        x = images
        if self.config.gamma != 1:
            # Bilinear resampling of non-negative pixels stays non-negative; the clamp guards
            # rounding, where a negative base would make a NaN.
            x = x.clamp_min(0).pow(self.config.gamma)
        if self.config.directions:
            x = stroke_directions(x)
        return x.flatten(1)

    def standardize(self, images: torch.Tensor) -> torch.Tensor:
        """float images [N, H, W] -> features [N, H*W]: ``unscaled``, then standardisation."""
        return self._scale(self.unscaled(images))

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.normalize == "none":
            return x
        return torch.sub(x, self.mean.to(x.device)).div_(self.std.to(x.device))

    def fit_standardize(self, images: torch.Tensor) -> torch.Tensor:
        """``fit(images)``, then ``standardize(images)``, computing ``unscaled`` once for both."""
        x = self.unscaled(images)
        self._fit_features(x)
        return self._scale(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.standardize(self.images(images))

    def fit(self, images: torch.Tensor) -> Preprocessor:
        """Compute normalisation statistics from training images, as returned by ``images()``.

        Taking the already deskewed images lets the trainer deskew the set only once.
        """
        self._fit_features(self.unscaled(images))
        return self

    def _fit_features(self, x: torch.Tensor) -> None:
        if self.config.normalize == "none":
            return
        if self.config.normalize == "global":
            x = x.double()
            self.mean = torch.full((self.n_features,), x.mean().item())
            self.std = torch.full((self.n_features,), x.std().item())
        else:
            # One pass over float32 (PyTorch accumulates float sums in double on the CPU):
            # twice as fast as converting to float64 first, the same statistics here.
            std, mean = torch.std_mean(x, dim=0)
            # Pixels that are almost always blank (the borders) would be blown up to huge
            # values by a tiny std; the floor keeps them near zero instead.
            self.mean, self.std = mean, std.clamp_min(self.config.std_floor)
        self.mean = self.mean.float().cpu()
        self.std = self.std.float().cpu()


def smooth_noise(n: int, h: int, w: int, sigma: float, generator: torch.Generator, device) -> torch.Tensor:
    """Random smooth displacement fields [n, 2, h, w] with values in about [-1, 1].

    Simard et al. blur white noise with a Gaussian of width sigma; blurring full-size
    noise costs a large convolution per image. Uniform noise on a grid with spacing
    ``sigma`` pixels, upsampled bicubically, gives fields of the same smoothness for a
    fraction of the cost.
    """
    gh, gw = max(2, round(h / sigma) + 1), max(2, round(w / sigma) + 1)
    coarse = torch.rand(n, 2, gh, gw, generator=generator, device=device) * 2 - 1
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)


def augment(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Randomly distort a batch of float images [N, H, W], each image independently.

    Affine: rotation, zoom, shear and shift drawn per image; elastic: a random
    displacement field smoothed by a Gaussian (Simard, Steinkraus and Platt, 2003).
    Both are folded into one sampling grid, so a batch costs a single ``grid_sample``.
    All randomness comes from ``generator``: the same seed gives the same batch.
    """
    kinds = config.kinds
    if not kinds or config.augment_prob == 0:
        return images
    if "presentation" in kinds:
        geometric = tuple(k for k in kinds if k != "presentation")
        if geometric:
            images = augment(images, dataclasses.replace(config, augment=",".join(geometric)), generator)
        out = present(images, generator)
        if config.augment_prob < 1:
            keep = torch.rand(images.shape[0], generator=generator, device=images.device) >= config.augment_prob
            out = torch.where(keep.view(-1, 1, 1), images, out)
        return out
    n, h, w = images.shape
    dev = images.device

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=dev) * (hi - lo) + lo

    ys, xs = _pixel_grid(h, w, dev)
    y0, x0 = (h - 1) / 2, (w - 1) / 2
    dx = (xs - x0).expand(n, h, w)
    dy = (ys - y0).expand(n, h, w)
    src_x, src_y = dx, dy
    if "affine" in kinds:
        theta = uniform(-config.rotate, config.rotate, n) * (math.pi / 180)
        shear = torch.tan(uniform(-config.shear, config.shear, n) * (math.pi / 180))
        # Zoom by s means sampling the input at coordinates divided by s (log-uniform in s).
        inv_s = torch.exp(-uniform(math.log(config.scale_min), math.log(config.scale_max), n))
        tx = uniform(-config.translate, config.translate, n)
        ty = uniform(-config.translate, config.translate, n)
        cos, sin = torch.cos(theta), torch.sin(theta)
        # Source = R(theta) @ Shear @ (out / s) - t, per image.
        a11, a12 = cos * inv_s, (cos * shear - sin) * inv_s
        a21, a22 = sin * inv_s, (sin * shear + cos) * inv_s
        v = lambda t: t.view(n, 1, 1)  # noqa: E731
        src_x = v(a11) * dx + v(a12) * dy - v(tx)
        src_y = v(a21) * dx + v(a22) * dy - v(ty)
    if "elastic" in kinds:
        disp = smooth_noise(n, h, w, config.elastic_sigma, generator, dev) * config.elastic_alpha
        src_x = src_x + disp[:, 0]
        src_y = src_y + disp[:, 1]
    out = warp(images, src_x + x0, src_y + y0)
    if config.augment_prob < 1:
        keep = torch.rand(n, generator=generator, device=dev) >= config.augment_prob
        out = torch.where(keep.view(n, 1, 1), images, out)
    return out


# The presentation family: how a digit reaches the reader other than as an MNIST scan.
# Each image gets one of them, at a random strength (mixed with the original).
PRESENTATIONS = ("clean", "blur", "thicker", "thinner", "low_res")


def present(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image [N, H, W] one of PRESENTATIONS at a random strength: a Gaussian blur
    (sigma 1 px at 28x28), a thicker or thinner stroke (3x3 grey dilation or erosion), or a
    lower resolution (area-reduced to 8-14 px a side and scaled back up bilinearly). Each
    result keeps the image's brightest ink: the reader stretches contrast the same way."""
    n, h, w = images.shape
    dev = images.device
    x = images.unsqueeze(1)
    taps = torch.exp(-0.5 * torch.arange(-2, 3, dtype=x.dtype, device=dev) ** 2)
    taps = taps / taps.sum()
    blur = F.conv2d(F.conv2d(x, taps.view(1, 1, 1, 5), padding=(0, 2)), taps.view(1, 1, 5, 1), padding=(2, 0))
    thicker = F.max_pool2d(x, 3, 1, 1)
    thinner = -F.max_pool2d(-x, 3, 1, 1)
    side = int(torch.randint(8, 15, (1,), generator=generator, device=dev))
    low = F.interpolate(F.interpolate(x, size=(side, side), mode="area"), size=(h, w), mode="bilinear",
                        align_corners=False)
    options = torch.stack((x, blur, thicker, thinner, low)).squeeze(2)  # [5, N, H, W]
    pick = torch.randint(0, len(PRESENTATIONS), (n,), generator=generator, device=dev)
    out = options[pick, torch.arange(n, device=dev)]
    strength = torch.rand(n, 1, 1, generator=generator, device=dev) * 0.7 + 0.3
    out = images + strength * (out - images)
    peak = images.amax(dim=(1, 2), keepdim=True)
    return out * (peak / out.amax(dim=(1, 2), keepdim=True).clamp_min(1e-6))
