"""A person's digit image -> a 28x28 MNIST-style image, written once for every entry point.

MNIST's own recipe: light digit on a dark background, the digit scaled to fit a 20x20
box (keeping its aspect ratio, antialiased) and placed in the 28x28 frame so that its
centre of mass is at the centre. Photos and scans need more first: flatten transparency onto white,
go to grayscale, detect dark-on-light and invert it, and remove the background
(uneven paper, noise) with a threshold. The model's own preprocessing (deskewing,
normalisation) follows, from the run (``Checkpoint.logits``).
"""

from __future__ import annotations

import functools
import io
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError

if TYPE_CHECKING:
    import torch

#: Formats we agree to decode (Pillow decides by content, never by file name).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_PIXELS = 40_000_000
# Images are brought down to at most this many pixels a side right after decoding: the
# digit ends up 20 pixels high, and binarising it at 1,024 loses nothing a 20x20 box can
# show, while a 38-megapixel photo costs 40x less work and memory from there on.
WORK_SIDE = 1024
SIDE = 28
BOX = 20
# MNIST's digits have their centre of mass at pixel (14, 14) on average, not 13.5.
CENTRE = 14.0
# Ink below this (after stretching) is never part of a binarised stroke.
BINARY_MIN = 0.3


class ImageError(UserError):
    """An image that cannot be used: not an image, too large, empty, malformed."""


class NoDigit(ImageError):
    """A readable image with no single digit in it: an answer ("no digit here", and
    ``reason``), not an error. The model is never asked, so it cannot guess confidently."""

    def __init__(self, reason: str, name: str | None = None):
        super().__init__(f"{name + ': ' if name else ''}no digit: {reason}")
        self.reason = reason


BLANK = "the image is blank"
FAINT = "nothing stands out from the background"
NOTHING_LEFT = "nothing is left once the background is removed"
ALL_EDGES = "marks reach all four edges of the image (a texture or a scribble, not one digit)"
SEVERAL = "several marks side by side (more than one digit?)"
# A strip whose long side is over STRIP times its short side holds no digit (a row of 20
# digits is about 14 times as wide as tall); from about 128 times its light could not be
# flattened (the reduced copy would have no pixel across).
STRIP = 64
STRIPE = f"the image is over {STRIP} times as long as it is wide"
# Ink whose strongest strokes (90th percentile) stand less than this above the background
# level is paper grain or sensor noise, not a stroke: photos of empty paper measure 0.02,
# the faintest pencil digit of the tests 0.12.
MIN_CONTRAST = 0.05
# Side by side: two or more marks (regions grouped where they overlap across), each with
# this share of the ink and at least TALL of the ink's height, together at least as wide
# as tall.
SHARE, TALL = 0.1, 0.4


def open_image(source: str | os.PathLike | bytes, name: str | None = None):
    """Open and decode an image from a path or bytes, refusing non-image formats and huge
    images, at most ``WORK_SIDE`` pixels a side (``peek_image``, then ``decode_image``)."""
    name = name or (str(source) if not isinstance(source, bytes) else "image")
    return decode_image(peek_image(source, name), name)


def peek_image(source: str | os.PathLike | bytes, name: str | None = None):
    """The image's header only (format, size: microseconds), refusing non-images and huge ones."""
    from PIL import Image, UnidentifiedImageError

    name = name or (str(source) if not isinstance(source, bytes) else "image")
    fh = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            # Pillow warns above 89 megapixels and refuses above 179; our own limit, lower,
            # is checked below with a message of ours, so neither reaches the user raw.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fh, formats=list(FORMATS))
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: declares more pixels than Pillow will decode, far more than the "
                         f"{MAX_PIXELS // 1_000_000} megapixels allowed") from None
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image in a supported format ({', '.join(FORMATS)})") from None
    except (OSError, ValueError) as exc:
        # An OSError's own text repeats the path ("[Errno 40] ...: 'x.png'"): its reason only.
        raise ImageError(f"{name}: cannot read image ({getattr(exc, 'strerror', None) or exc})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name}: {w}x{h} is {w * h / 1e6:.0f} megapixels, more than the "
                         f"{MAX_PIXELS // 1_000_000} allowed")
    if w == 0 or h == 0:
        raise ImageError(f"{name}: empty image")
    return img


def decode_image(img, name: str = "image"):
    """Decode the pixels of a ``peek_image``, brought down to at most ``WORK_SIDE`` a side."""
    w, h = img.size
    factor = _reduction(w, h)
    try:
        img.seek(0)  # GIF and other animations: the first frame
        if factor > 1 and img.format == "JPEG":
            # JPEG decodes at 1/2, 1/4 or 1/8 scale directly (DCT scaling): no full-size pixels at all.
            img.draft(img.mode, (-(-w // factor), -(-h // factor)))
        img.load()
        factor = _reduction(*img.size)
        if factor > 1:
            img = _reducible(img).reduce(factor)  # box average in C, before any per-pixel Python
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name}: malformed image data ({exc})") from None
    return img


# Modes whose pixels ``Image.reduce`` can average as they are.
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F")


def _reducible(img):
    """``img`` in a mode ``reduce`` takes, losing nothing ``to_grayscale`` would keep.

    Palette indices must not be averaged (PA reduces without complaint, wrongly), and
    16-bit pixels keep their depth as 32-bit integers.
    """
    if img.mode in _REDUCIBLE:
        return img
    if img.mode.startswith("I;16"):
        return img.convert("I")
    if img.mode == "PA" or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    return img.convert("L")


def _reduction(w: int, h: int) -> int:
    """The integer factor that brings the longer side to at most ``WORK_SIDE``."""
    return -(-max(w, h) // WORK_SIDE)


def to_grayscale(img) -> np.ndarray:
    """float [H, W] in [0, 1]; transparency flattened onto white first."""
    return gray_levels(img)[0]


def gray_levels(img, gray: bool = True) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``to_grayscale``, the 8-bit levels it was made from (uint8 [H, W], the gray being
    level / 255) and the number of pixels at each level, or None, None for a deeper image.
    ``gray=False``: no gray (None) where there are levels (``_ink`` makes it if it needs it)."""
    from PIL import Image

    # An opaque image (the drawing page's canvas is RGBA with every alpha 255) stays what
    # it is on white: converted as it is, the same levels at a tenth of the cost (0.5 ms a
    # canvas in alpha_composite).
    opaque = img.mode in ("RGBA", "LA") and img.getchannel("A").getextrema()[0] == 255
    if not opaque and (img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        return arr / max(1.0, float(arr.max())), None, None
    if img.mode == "F":  # floating-point pixels (TIFF): in [0, 1] as they are, else scaled to it
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(arr.min()), float(arr.max())
        return (arr if lo >= 0 and hi <= 1 else (arr - lo) / max(hi - lo, 1e-12)), None, None
    luma = img if img.mode == "L" else img.convert("L")  # (only read: no copy needed)
    levels = np.asarray(luma)
    # How many pixels at each level: Pillow's histogram (C, one pass over bytes) is the
    # count np.bincount gives, without first widening every pixel to 8 bytes.
    count = np.array(luma.histogram(), dtype=np.intp)
    return (levels / 255.0 if gray else None), levels, count


def otsu_threshold(values: np.ndarray, more_zeros: int = 0) -> float:
    """The threshold in [0, 1] that best separates two groups of values (Otsu, 1979), with
    ``more_zeros`` values of 0 besides them (an ink map's paper outside the ink's box)."""
    # np.histogram(values, 256, (0, 1))'s counts, 10x faster: x * 256 is exact in floating
    # point, so its floor is the bin np.histogram picks (1.0 goes in the last bin, as there).
    values = values.ravel()
    zeros = values.size - np.count_nonzero(values)
    # Where most of an ink map is exactly 0 (the paper, removed), the zeros are counted, not
    # binned; 1.0's bin (256) is folded into the last afterwards, not clipped pixel by pixel.
    inked = values[values != 0] if 2 * zeros > values.size else values
    hist = np.bincount((inked * 256).astype(np.intp), minlength=257).astype(np.float64)
    hist[255] += hist[256]
    hist[0] += more_zeros + (zeros if inked is not values else 0)
    return _otsu(hist[:256])


_EDGES = np.linspace(0.0, 1.0, 257)  # Otsu's 256 bins over [0, 1], made once
_CENTRES = (_EDGES[:-1] + _EDGES[1:]) / 2


def _otsu(hist: np.ndarray) -> float:
    """Otsu's threshold from a histogram of 256 bins over [0, 1] (float counts)."""
    edges, centres = _EDGES, _CENTRES
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


# Uneven light (a shadow, a lamp) and whatever lies around the sheet (the table, seen in
# perspective) are large bright regions of the ink map; strokes are thin. A morphological
# opening (a minimum, then a maximum filter) with a window wider than any stroke keeps the
# former and erases the latter, so subtracting it leaves the strokes on a flat background
# (a "top-hat" transform, standard in document binarisation). It runs on a copy reduced to
# at most LIGHT_SIDE pixels a side; the window is a quarter of that copy's longer side.
# The copy is first extended by a window's width on every side, repeating its edges: a band
# along the frame (the table), or a stroke running along it, then holds whole windows and
# is background, while a stroke that merely reaches the frame does not, and is kept.
LIGHT_SIDE = 128


SMALL_WINDOW = 15


def _edge_rows(x: np.ndarray, r: int) -> np.ndarray:
    """``x`` with its first and last rows repeated ``r`` times more: np.pad(mode="edge")
    along the first axis, at a fraction of its cost."""
    out = np.empty((x.shape[0] + 2 * r, *x.shape[1:]), dtype=x.dtype)
    out[r:r + x.shape[0]] = x
    out[:r] = x[0]
    out[r + x.shape[0]:] = x[-1]
    return out


def _running(values: np.ndarray, k: int, axis: int, op) -> np.ndarray:
    """Minimum or maximum over windows of ``k`` (odd) along ``axis``, edges repeated.

    By doubling: the extreme of every run of 2, 4, 8... values, each from two of the
    previous, then any window as the extreme of the two runs of the largest such length
    that cover it from its two ends (a minimum or maximum is exact in any order, so the web
    page, which takes van Herk / Gil-Werman's running extremes, agrees). log2(k) passes
    over the values: a photo's background (k = 33) 0.7 -> 0.1 ms a pass.
    The work runs along the first axis of a contiguous copy: each step is then a whole row
    at once (along the last axis, NumPy goes pixel by pixel: 3x slower).
    """
    r = k // 2
    x = np.ascontiguousarray(np.moveaxis(values, axis, 0))
    n0 = x.shape[0]
    ufunc = np.minimum if op is np.min else np.maximum
    if k <= SMALL_WINDOW:
        # A short window is cheaper as shifted slices (the same extremes): 0.06 ms against
        # 0.6 ms for a 3-pixel window over a 200x170 crop, the van Herk's fixed costs. With
        # the edges repeated, a window that runs over an edge holds the same values as the
        # part of it inside, so each shift is taken against the part it overlaps (no padded
        # copy: np.pad's own cost was a tenth of a canvas digit's reading).
        out = x.copy()
        for s in range(1, r + 1):
            ufunc(out[s:], x[:-s], out=out[s:])
            ufunc(out[:-s], x[s:], out=out[:-s])
        return np.moveaxis(out, 0, axis)
    line = _edge_rows(x, r)
    runs, p = line, 1
    while 2 * p <= k:  # runs[i]: the extreme of line[i:i + 2p]
        runs = ufunc(runs[:-p], runs[p:])
        p *= 2
    out = ufunc(runs[:n0], runs[k - p:k - p + n0])  # line[i:i + k] = line[i:i + p] and line[i + k - p:i + k]
    return np.moveaxis(out, 0, axis)


def _dilate3(on: np.ndarray) -> np.ndarray:
    """``_running``'s maximum over 3x3 windows of a boolean image, edges repeated (a window
    over an edge holds what lies inside), as or-ed shifted slices: the rows' pass along the
    rows in place, not a transposed copy (30 -> 18 us on a canvas digit's box)."""
    rows = on.copy()
    rows[1:] |= on[:-1]
    rows[:-1] |= on[1:]
    out = rows.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def block_means(ink: np.ndarray, f: int, hs: int, ws: int) -> np.ndarray:
    """Means of f x f blocks of ``ink``, hs x ws of them from its top left corner (zeros
    beyond its edges), summed in a fixed order: the web page sums them the same way."""
    h, w = ink.shape
    if hs * f > h or ws * f > w:
        padded = np.zeros((max(h, hs * f), max(w, ws * f)))
        padded[:h, :w] = ink
        ink = padded
    small = np.zeros((hs, ws))
    for dy in range(f):
        for dx in range(f):
            small += ink[dy:dy + hs * f:f, dx:dx + ws * f:f]
    small /= f * f
    return small


def background(ink: np.ndarray) -> np.ndarray:
    """The slowly varying part of an ink map (see ``LIGHT_SIDE``), at the map's own size."""
    h, w = ink.shape
    f = -(-max(h, w) // LIGHT_SIDE)
    hs, ws = max(1, h // f), max(1, w // f)
    small = block_means(ink, f, hs, ws)
    k = max(hs, ws) // 4 | 1
    opened = _edge_rows(_edge_rows(small, k).T, k).T  # np.pad(small, k, mode="edge")
    for op in (np.min, np.max):
        opened = _running(_running(opened, k, 0, op), k, 1, op)
    opened = opened[k:k + hs, k:k + ws]
    # Back to full size: bilinear between the blocks' centres, clamped at the edges.
    ys = np.clip((np.arange(h) + 0.5) / f - 0.5, 0, hs - 1)
    xs = np.clip((np.arange(w) + 0.5) / f - 0.5, 0, ws - 1)
    y0 = np.minimum(ys.astype(np.intp), hs - 2 if hs > 1 else 0)
    x0 = np.minimum(xs.astype(np.intp), ws - 2 if ws > 1 else 0)
    y1, x1 = np.minimum(y0 + 1, hs - 1), np.minimum(x0 + 1, ws - 1)
    ty, tx = (ys - y0)[:, None], (xs - x0)[None, :]
    # Along x on the reduced rows first, then along y: element for element the same
    # products and sums as blending the four corners at full size, on hs rows instead of h
    # (3.6 -> 1 ms on a 360x360 photo).
    across = opened[:, x0] * (1 - tx) + opened[:, x1] * tx
    # The same products and sum in place: no full-size temporaries (a 640x480 photo).
    out = across[y0]
    out *= 1 - ty
    below = across[y1]
    below *= ty
    out += below
    return out


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Grayscale -> ink intensity in [0, 1] (ink bright, background exactly 0).

    Otsu's threshold splits ink from background; the background's level and noise
    (median and spread) are subtracted, so paper texture and sensor noise go to 0 while
    the digit keeps its antialiased edges.
    """
    return _ink(gray)[0]


def _ink(gray: np.ndarray, levels: np.ndarray | None = None,
         count: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, bool, tuple | None]:
    """``ink_map``, each ink pixel's region (``regions``; 0 where there is no ink), whether
    the background was left as it is (no light flattened, no grain to close), and the
    ink's box (``ink_box``; None where no ink is left).
    ``levels``, ``count``: the 8-bit levels ``gray`` was made from and their pixel counts
    (``gray_levels``), if it was."""
    shape = (gray if gray is not None else levels).shape
    if max(shape) > STRIP * min(shape):
        raise NoDigit(STRIPE)
    if gray is None and (not LEVELS or max(shape) <= LIGHT_SIDE):
        gray = levels / 255.0  # (gray_levels(img, gray=False) left it to be made here)
    if not LEVELS:
        levels = None
    clean = despeckle(gray) if max(shape) <= LIGHT_SIDE else gray
    changed = unband(clean, levels if clean is gray else None)
    if changed is not gray:  # no longer one value per 8-bit level
        gray, levels = changed, None
    if levels is not None:
        if count is None:
            count = np.bincount(levels.ravel(), minlength=256)
        grays = _Levels(np.arange(256) / 255.0, count, levels)  # level k's gray, as gray holds it
        vals = grays.with_values(1.0 - grays.value) if dark_ink(gray, grays) else grays
    else:
        vals = _Values(1.0 - gray if dark_ink(gray) else gray.copy())
    if vals.max() - vals.min() < 0.05:
        raise NoDigit(BLANK)
    flat = not uneven(vals.border())
    if not flat:
        ink = vals.image(lambda v: v)
        lit = background(ink)
        np.subtract(ink, lit, out=lit)
        vals = _Values(np.maximum(lit, 0.0, out=lit))
    t = vals.otsu()
    back, fore = vals.below(t), vals.above(t)
    level = back.median() if back.size else 0.0
    dev = back.deviation(level)
    spread = dev.percentile(99) if back.size else 0.0
    floor = min(level + 2 * spread + 1e-6, t)
    peak = fore.percentile(90) if fore.size else vals.max()
    if peak - level < MIN_CONTRAST:
        raise NoDigit(FAINT)

    def hard_of(v):
        return np.clip((v - floor) / max(peak - floor, 1e-6), 0.0, 1.0)

    soft_edges = flat and back.size
    hard = vals.image(hard_of) if max(shape) <= LIGHT_SIDE or not soft_edges else None
    if max(shape) <= LIGHT_SIDE:
        hard = strike_line(hard)
    # On even paper, the pixels under the threshold are the paper and the strokes' soft
    # edges; the edges, a minority, set the 99th percentile, and the floor above them cut
    # every stroke thinner and harder than it was (an MNIST digit lost its antialiased rim,
    # and 0.4% of them were misread for it). There the paper's own spread is estimated from
    # the median deviation (MAD_SPREAD times it: a normal background's 99th percentile), and
    # the strokes keep their soft edges next to what the hard floor found.
    if soft_edges:
        # Paper at one exact level (a drawing, a clean scan) is most of it: the median is 0
        # when over half the deviations are, and counting them costs a tenth of the median.
        mad = 0.0 if 2 * dev.zeros() > dev.size else dev.median()
        soft_floor = min(level + 2 * min(spread, MAD_SPREAD * mad) + 1e-6, t)
        on = hard > 0 if hard is not None else vals.mask(lambda v: hard_of(v) > 0)
        # The soft strokes next to the hard ones, worked out in the hard ink's box and a
        # pixel around it (beyond, nothing is near): the same pixels, a tenth of the image.
        ink = np.zeros(shape)
        box = ink_box(on)
        if box is not None:
            rows = slice(max(box[1] - 1, 0), min(box[3] + 1, shape[0]))
            cols = slice(max(box[0] - 1, 0), min(box[2] + 1, shape[1]))
            near = _dilate3(on[rows, cols])
            soft = vals.image(lambda v: np.clip((v - soft_floor) / max(peak - soft_floor, 1e-6), 0.0, 1.0),
                              (rows, cols))
            ink[rows, cols] = np.where(near, soft, 0.0)
            window = (rows, cols)
        else:
            window = (slice(0, 0), slice(0, 0))
    else:
        ink, window = hard, None
    ink, label, box = keep_digit(ink, window)
    return ink, label, flat, box


# An 8-bit image (a drawing, a scan, most photos before the light is flattened) has at
# most 256 values, one per level: the statistics _ink takes of the whole image (Otsu's
# threshold, medians, percentiles, counts) come from the 256 levels and how many pixels
# hold each, and an image made pixel by pixel from the values (v -> clip((v - floor) / s))
# from 256 values looked up by level. Each pixel's value depends on its level alone, so
# the numbers are exactly those of the whole image (tests/test_images.py compares the two
# on every presentation of the robustness benchmark), in a fraction of the time: a canvas
# digit is read 1.3-1.5x as fast (benchmarks/read_speed.py: 4.3-4.6 -> 2.9-3.4 ms, the
# same digits). LEVELS: off only to check that.
LEVELS = True


class _Values:
    """An image's values as an array (see ``_Levels``, which answers the same questions)."""

    def __init__(self, image: np.ndarray):
        self.array, self.size = image, image.size

    def image(self, fn, box=None) -> np.ndarray:
        """``fn`` of each pixel's value (within ``box``, a pair of slices, if given)."""
        return fn(self.array if box is None else self.array[box])

    def border(self) -> np.ndarray:
        return _border(self.array)

    def mask(self, test, box=None) -> np.ndarray:
        return self.image(test, box)

    def max(self) -> float:
        return float(self.array.max())

    def min(self) -> float:
        return float(self.array.min())

    def otsu(self) -> float:
        return otsu_threshold(self.array)

    def below(self, t: float) -> _Values:
        return _Values(self.array[self.array <= t])

    def above(self, t: float) -> _Values:
        return _Values(self.array[self.array > t])

    def deviation(self, level: float) -> _Values:
        return _Values(np.abs(self.array - level))

    def median(self) -> float:
        return median(self.array)

    def percentile(self, q: float) -> float:
        return percentile(self.array, q)

    def zeros(self) -> int:
        return self.size - np.count_nonzero(self.array)

    def quantiles(self, qs: tuple[float, ...]) -> list[float]:
        return quantiles(self.array, qs)

    def count_where(self, test) -> int:
        return int(np.count_nonzero(test(self.array)))


class _Levels:
    """An 8-bit image's values (see ``LEVELS``): ``value[k]`` for the pixels at level k,
    ``count[k]`` of them, ``levels`` each pixel's level (for ``image``)."""

    def __init__(self, value: np.ndarray, count: np.ndarray, levels: np.ndarray | None = None):
        self.value, self.count, self.levels = value, count, levels
        self.size = int(count.sum())

    def with_values(self, value: np.ndarray, count: np.ndarray | None = None) -> _Levels:
        """The same pixels, level k now holding ``value[k]`` (and ``count[k]`` of them)."""
        return _Levels(value, self.count if count is None else count, self.levels)

    def image(self, fn, box=None) -> np.ndarray:
        return fn(self.value)[self.levels if box is None else self.levels[box]]

    def border(self) -> np.ndarray:
        return self.value[_border(self.levels)]

    def mask(self, test, box=None) -> np.ndarray:
        """``image(test)`` for a ``test`` giving booleans. Where it holds for the levels from
        some k up (or up to some k), that is one comparison of the levels, the same mask at a
        fortieth of a lookup's cost; otherwise the lookup."""
        table = np.asarray(test(self.value), dtype=bool)
        levels = self.levels if box is None else self.levels[box]
        on = np.flatnonzero(table)
        if on.size == 0 or on.size == table.size or on[-1] - on[0] + 1 != on.size:
            return table[levels]
        if on[-1] == table.size - 1:
            return levels >= on[0]
        if on[0] == 0:
            return levels <= on[-1]
        return table[levels]

    def max(self) -> float:
        return float(self.value[self.count > 0].max())

    def min(self) -> float:
        return float(self.value[self.count > 0].min())

    def otsu(self) -> float:
        bins = np.minimum((self.value * 256).astype(np.intp), 255)
        return _otsu(np.bincount(bins, weights=self.count, minlength=256))

    def below(self, t: float) -> _Levels:
        return self.with_values(self.value, np.where(self.value <= t, self.count, 0))

    def above(self, t: float) -> _Levels:
        return self.with_values(self.value, np.where(self.value > t, self.count, 0))

    def deviation(self, level: float) -> _Levels:
        return self.with_values(np.abs(self.value - level), self.count)

    def ranked(self, ranks: list[int]) -> list[float]:
        """The values at positions ``ranks`` of all the pixels' values sorted."""
        order = np.argsort(self.value, kind="stable")
        cum = np.cumsum(self.count[order])
        return [float(self.value[order[int(np.searchsorted(cum, k, side="right"))]]) for k in ranks]

    def median(self) -> float:
        return _median(self.ranked, self.size)

    def percentile(self, q: float) -> float:
        return _percentile(self.ranked, self.size, q)

    def zeros(self) -> int:
        return int(self.count[self.value == 0].sum())

    def quantiles(self, qs: tuple[float, ...]) -> list[float]:
        bins = np.minimum((self.value * 1024).astype(np.intp), 1023)
        return quantiles_of(np.bincount(bins, weights=self.count, minlength=1024), qs)

    def count_where(self, test) -> int:
        return int(self.count[test(self.value)].sum())


# Percentiles of a whole image's values, exactly as NumPy's percentile (method "linear")
# gives them, without partitioning all of them: the values (in [0, 1]) are counted into
# RANK_BUCKETS buckets by floor(v * RANK_BUCKETS), an order-preserving map, and only the
# bucket holding the wanted rank is partitioned. The 99th percentile of a 640x480 photo's
# background: 1.1 ms instead of 1.9-2.2; the same number to the last bit
# (tests/test_images.py holds it to NumPy's). (The median gains nothing this way: it
# falls among the paper's many equal values.)
RANK_BUCKETS = 1024


def _ranked(values: np.ndarray, ranks: list[int]) -> list[float]:
    """The values at positions ``ranks`` of ``values`` sorted (values in [0, 1])."""
    bucket = np.clip((values * RANK_BUCKETS).astype(np.intp), 0, RANK_BUCKETS - 1)
    cum = np.cumsum(np.bincount(bucket, minlength=RANK_BUCKETS))
    found, out = {}, []
    for k in ranks:
        j = int(np.searchsorted(cum, k, side="right"))
        if j not in found:
            found[j] = values[bucket == j]
        inside = found[j]
        i = k - (int(cum[j - 1]) if j else 0)
        # Most of an image is often one exact value (the paper's level, or 0 once it is
        # removed), which NumPy's partition handles slowly (50 ms for 180,000 ties among a
        # few others): the ranks that fall among the bucket's smallest value are that value,
        # and only the rest is partitioned.
        lo = inside.min()
        ties = np.count_nonzero(inside == lo)
        if i < ties:
            out.append(float(lo))
        else:
            rest = inside[inside != lo]
            out.append(float(np.partition(rest, i - ties)[i - ties]))
    return out


def percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` for values in [0, 1], NumPy's arithmetic step by step."""
    return _percentile(lambda ranks: _ranked(values, ranks), values.size, q)


def median(values: np.ndarray) -> float:
    """``np.median(values)`` for values in [0, 1], to the last bit: a 640x480 photo's
    background (300,000 values) in about a third of the time of NumPy's partition."""
    return _median(lambda ranks: _ranked(values, ranks), values.size)


def _median(ranked, n: int) -> float:
    """np.median of n values, ``ranked(ranks)`` giving those at sorted positions: the
    middle one, or the mean of the middle two (NumPy's mean of two: their sum over 2)."""
    if n % 2:
        return ranked([n // 2])[0]
    a, b = ranked([n // 2 - 1, n // 2])
    return (a + b) / 2


def _percentile(ranked, n: int, q: float) -> float:
    """``np.percentile`` of n values, ``ranked(ranks)`` giving those at sorted positions."""
    quantile = q / 100
    virtual = (n - 1) * quantile  # numpy's virtual index for "linear"
    if virtual >= n - 1:
        return ranked([n - 1])[0]
    if virtual < 0:
        return ranked([0])[0]
    below = math.floor(virtual)
    a, b = ranked([below, below + 1])
    gamma = virtual - below
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma  # numpy's _lerp


def _sorted_median(values: np.ndarray) -> float:
    """``np.median`` of a few values (an image's border), from one sort: NumPy's own call
    costs more than the sort."""
    ranked = np.sort(values)
    return float(_median(lambda ranks: [ranked[k] for k in ranks], ranked.size))


def _sorted_percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(values, qs)`` of a few values, from one sort (see ``_sorted_median``)."""
    ranked = np.sort(values)
    return [_percentile(lambda ranks: [ranked[k] for k in ranks], ranked.size, q) for q in qs]


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of values in [0, 1] on a 1/1024 grid: the lowest bin edge below which at
    least that share of the values lies. Linear time (no sort), and the page's the same."""
    return quantiles_of(np.bincount(np.minimum((values.ravel() * 1024).astype(np.intp), 1023), minlength=1024), qs)


def quantiles_of(hist: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``quantiles`` from the values' counts in the 1,024 bins."""
    cum = np.cumsum(hist)
    return [int(np.searchsorted(cum, q * cum[-1])) / 1024 for q in qs]


# The ink is what stands farthest out from the paper: the border (mostly paper) gives the
# paper's level, and the ink is on the side of it that the image reaches farthest into
# (its 0.2% darkest or brightest pixels: a small digit on a large photo still holds more),
# provided that what lies beyond halfway to that extreme is a minority (under a third of
# the image: MNIST's test digits reach 0.29). An absolute rule (a bright border means dark
# ink) fails on grey paper in both directions: paper in dim light is darker than one half,
# a corrupted MNIST digit's background lighter. It stays for what is not a minority: an
# empty sheet whose lit half is brighter than its shadowed border, or a digit that fills
# its frame.
POLARITY_TAIL, MINORITY = 0.002, 1 / 3


# A band along an edge of the image can be inverted against the rest: a scanner's black
# margin, a dark table beside the sheet, MNIST-C's stripe (the outer columns inverted).
# Such a band ends at a straight cut: a step of over PANEL_STEP between two neighbouring
# columns (or rows) in at least PANEL_SHARE of the lines across it (MNIST-C's stripe:
# 23 to 28 of 28; a digit's antialiased edge crossing it takes the rest). The bands at the
# edges, each under PANEL_EDGE of the side, are inverted where their level (median) lies
# over one half from that of the panel between them, so that one paper surrounds the
# digit, unless nothing would be left to read. A digit that fills its frame (a low-
# resolution 1 scaled up without smoothing has straight steps too) is left alone: the
# panel between its cuts is a stroke, all one level, not paper holding at least PANEL_INK
# (and under half) of ink with paper at both ends (at most PANEL_ENDS of them ink).
PANEL_STEP, PANEL_SHARE, PANEL_EDGE, PANEL_INK, PANEL_ENDS = 0.5, 0.75, 1 / 3, 0.02, 0.1


def unband(gray: np.ndarray | None, levels: np.ndarray | None = None) -> np.ndarray | None:
    """``gray`` with inverted edge bands turned back (see ``PANEL_STEP``): bands of
    columns, then of rows. ``levels``: the 8-bit levels of ``gray``, if it has them (then
    ``gray`` may be None: it is made from them only where a band is found)."""
    # In whole levels, a step |a - b| / 255 > 0.5 is |a - b| >= 128, which joins a level
    # under 128 to one at 128 or over: the lines where those meet are counted first (a
    # bound on the steps, from one comparison of the bytes), and the steps themselves only
    # across the lines where the bound reaches PANEL_SHARE (mostly none: 0.2 -> 0.1 ms a canvas).
    # Turning a band of columns back keeps the steps along them, so the rows' pass may
    # take its steps from the levels as they came.
    # The meetings are the xor of neighbouring bytes (0 or 1). Where there are fewer in all
    # than one line needs (a digit on paper), no line has enough, and they are not summed
    # line by line (75 -> 15 us a canvas); else summed along rows that lie contiguous in
    # memory (for bands of rows, neighbours down a column: not the transposed view, which
    # NumPy walks pixel by pixel).
    upper = None if levels is None else (levels >= 128).view(np.uint8)
    for transpose in (False, True):
        lines, side = (gray if gray is not None else levels).shape[::-1 if transpose else 1]  # bands of columns
        if upper is None:
            share = np.count_nonzero(np.abs(np.diff(gray.T if transpose else gray, axis=1)) > PANEL_STEP, axis=0)
        else:
            meet = upper[1:] ^ upper[:-1] if transpose else upper[:, 1:] ^ upper[:, :-1]
            if np.count_nonzero(meet) < PANEL_SHARE * lines:
                continue
            share = meet.sum(axis=1 if transpose else 0, dtype=np.int32)
            for c in np.flatnonzero(share >= PANEL_SHARE * lines):
                a, b = (levels[c], levels[c + 1]) if transpose else (levels[:, c], levels[:, c + 1])
                share[c] = np.count_nonzero(np.abs(a.astype(np.int16) - b) > 255 * PANEL_STEP)
        cuts = np.flatnonzero(share >= PANEL_SHARE * lines) + 1
        if cuts.size == 0:
            continue
        first, last = int(cuts[0]), int(cuts[-1])
        bands = [(0, first)] if first < PANEL_EDGE * side else []
        if side - last < PANEL_EDGE * side and (last != first or not bands):
            bands.append((last, side))
        if not bands:
            continue
        a = first if bands[0][0] == 0 else 0
        b = last if bands[-1][1] == side else side
        g = gray if gray is not None else levels / 255.0
        g = g.T if transpose else g  # bands of columns of g
        middle = g[:, a:b]
        # The middle must be paper with a digit on it: a minority far from its level (a
        # stroke between two cuts is all one level), and paper at both ends (a stroke
        # ends in the paper around it, or at the frame).
        level = float(np.median(middle))
        off = np.abs(middle - level) > 0.5
        if not PANEL_INK * off.size <= np.count_nonzero(off) <= off.size / 2 or off[[0, -1]].mean() > PANEL_ENDS:
            continue
        out = g.copy()
        flipped = False
        for a, b in bands:
            if abs(float(np.median(out[:, a:b])) - level) > 0.5:
                out[:, a:b] = 1.0 - out[:, a:b]
                flipped = True
        # And the paper, now one, must surround the digit: a digit that fills its frame
        # (a 7's bar along the top edge) is not a band.
        lo, hi = quantiles(out, (POLARITY_TAIL, 1 - POLARITY_TAIL))
        if flipped and hi - lo > 0.5 and np.mean(np.abs(_border(out) - level) > 0.5) <= PANEL_ENDS / 2:
            gray = out.T if transpose else out
    return gray


def dark_ink(gray: np.ndarray, levels: _Levels | None = None) -> bool:
    """Whether the ink is darker than the paper (``levels``: ``gray``'s values by 8-bit
    level, if it has them; see ``LEVELS``)."""
    vals = levels if levels is not None else _Values(gray)
    paper = _sorted_median(vals.border())
    lo, hi = vals.quantiles((POLARITY_TAIL, 1 - POLARITY_TAIL))
    dark = paper - lo > hi - paper
    beyond = vals.count_where(lambda v: v < (paper + lo) / 2) if dark else \
        vals.count_where(lambda v: v > (paper + hi) / 2)
    if beyond > MINORITY * vals.size:
        return paper > 0.5
    return dark


# Light is flattened only where the paper is uneven: where the lower quarter of the
# border's ink levels (paper, even where a digit fills the frame and covers half the border)
# spreads over more than UNEVEN. A clean scan, a drawing, a blurred, low-resolution or
# frame-filling digit has an even border (measured: 0), and flattening there could only
# take thick, soft strokes for background (the top-hat's window is finite); photos of
# sheets measure 0.004 to 0.24 (those under 0.01 have an even border), MNIST-C's fog 0.012 up.
UNEVEN = 0.01


def uneven(border: np.ndarray) -> bool:
    """Whether the paper's light varies across the image (see ``UNEVEN``), from the ink
    map's border (``_border``)."""
    lo, quarter = _sorted_percentiles(border, (1, 25))
    return float(quarter - lo) > UNEVEN


# On even paper, the background's spread is MAD_SPREAD median deviations (see ``_ink``).
# Decided on the robustness benchmark (1,000 digits a row, the model trained again with
# the reader): clean 98.9 -> 99.5%, shot noise 94.3 -> 97.1%, impulse noise 93.7 -> 96.7%,
# spatter 91.7 -> 94.8%, thin pen 96.7 -> 98.4%, frame-filling 98.3 -> 98.7%, the paper
# rows 98.8-99.0 -> 99.4-99.5%, marker 98.0 -> 97.3%, 12x12 and 16x16 -0.3 to -0.4 points;
# MNIST's 10,000 test digits through the whole path 98.7 -> 99.0%. Everywhere (uneven
# paper too) it cut a photo's grain into ink: 59.9% "no digit".
MAD_SPREAD = 4.0


# Salt-and-pepper noise (dead and hot sensor pixels, MNIST-C's impulse noise) is single
# pixels unlike their neighbours; a stroke's pixels, even a one-pixel line's, have at least
# two neighbours like them. When over IMPULSE of the pixels have at most one neighbour
# within IMPULSE_STEP of their own level, the image is replaced by its 3x3 median,
# which keeps strokes two pixels wide and more. Measured on 2,000 MNIST test digits: at most
# 0.3% clean, 0.6% as Canny edges, 1% under shot noise; 3.1% to 7% under 17% salt and pepper.
IMPULSE, IMPULSE_STEP = 0.02, 0.5


def median3(gray: np.ndarray) -> np.ndarray:
    """The 3x3 median of each pixel, edges repeated."""
    h, w = gray.shape
    p = np.pad(gray, 1, mode="edge")
    stack = np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])
    return np.partition(stack, 4, axis=0)[4]


def despeckle(gray: np.ndarray) -> np.ndarray:
    """``gray``, or its 3x3 median where impulse noise is found (see ``IMPULSE``)."""
    h, w = gray.shape
    p = np.pad(gray, 1, mode="edge")
    alike = np.zeros((h, w), dtype=np.int8)
    for dy in range(3):
        for dx in range(3):
            if dy != 1 or dx != 1:
                alike += np.abs(p[dy:dy + h, dx:dx + w] - gray) <= IMPULSE_STEP
    if np.count_nonzero(alike <= 1) > IMPULSE * gray.size:
        return median3(gray)
    return gray


# A line across the digit that is not part of it: a ruled or printed line of a form, an
# underline, a strike-through, a doodle (MNIST-C's zigzag). It is found as the path from
# left to right through the most ink (moving at most one row a column) and removed where
# it is plainly a line: it runs over LINE_SPAN of the width with ink under at least
# LINE_COVER of it; its course is straight (slope at most LINE_SLOPE) or wavy about a
# straight one (at most LINE_WAVE of the height off it); both of its ends are free (over
# LINE_END of the width at each end, no ink but the line's: a 7's bar is joined to its
# stem at one end, a 2's base to its body, a 5's bar to its back) and reach LINE_OVERHANG
# pixels past the rest of the ink, which must hold at least LINE_REST of it (a line
# with little else beside it may be the digit). Where a stroke of the digit crosses the
# line (a vertical run of ink well longer than the line is thick), the stroke is kept. Horizontal lines only: a
# vertical line with free ends is a 1 or a 4's stem. Images up to LIGHT_SIDE pixels a
# side (as despeckling). Decided on the robustness benchmark (1,000 digits a row):
# zigzag 71 -> 83%, dotted lines and sheared digits -0.1 point, every other row the same
# digits right; a free end over 5% of the width instead of 12% cut three frame-filling
# 5s and 7s.
LINE_SPAN, LINE_COVER, LINE_SLOPE, LINE_WAVE, LINE_OVERHANG, LINE_REST, LINE_END = 0.8, 0.9, 0.3, 0.125, 2, 0.3, 0.12


def line_path(on: np.ndarray) -> np.ndarray:
    """The row, in each column, of the left-to-right path through the most ink of a
    boolean image, moving at most one row a column (ties: the upper row; measured against
    straight on first, which cut the bases of five low-resolution 2s in 4,000)."""
    h, w = on.shape
    score = on[:, 0].astype(np.int64)
    step = np.zeros((h, w), dtype=np.int64)
    rows = np.arange(h)
    for c in range(1, w):
        options = np.stack([np.r_[-1, score[:-1]], score, np.r_[score[1:], -1]])  # from above, level, below
        k = np.argmax(options, axis=0)
        step[:, c] = k - 1
        score = options[k, rows] + on[:, c]
    path = np.zeros(w, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for c in range(w - 1, 0, -1):
        path[c - 1] = path[c] + step[path[c], c]
    return path


def strike_line(ink: np.ndarray) -> np.ndarray:
    """``ink`` without a line across it that is not the digit's (see ``LINE_SPAN``), or
    ``ink`` itself."""
    h, w = ink.shape
    on = ink > BINARY_MIN
    cols = np.flatnonzero(on.any(axis=0))
    if cols.size == 0 or cols[-1] - cols[0] + 1 < LINE_SPAN * w:  # nothing is that wide: no work
        return ink
    path = line_path(on)
    x = np.arange(w)
    hit = on[path, x] | on[np.maximum(path - 1, 0), x] | on[np.minimum(path + 1, h - 1), x]
    xs = np.flatnonzero(hit)
    lo, hi = int(xs[0]), int(xs[-1])
    if hi - lo + 1 < LINE_SPAN * w or np.count_nonzero(hit[lo:hi + 1]) < LINE_COVER * (hi - lo + 1):
        return ink
    # The course: a least-squares line through the path, in integers up to one division
    # (the web page computes the same numbers).
    c, p = [int(v) for v in range(lo, hi + 1)], [int(v) for v in path[lo:hi + 1]]
    n, sc, sp = len(c), sum(c), sum(p)
    scc, scp = sum(v * v for v in c), sum(a * b for a, b in zip(c, p))
    slope = (n * scp - sc * sp) / (n * scc - sc * sc)
    base = (sp - slope * sc) / n
    if abs(slope) > LINE_SLOPE or max(abs(b - (base + slope * a)) for a, b in zip(c, p)) > LINE_WAVE * h:
        return ink
    # In each column, the run of ink through the path: the line's thickness is their median.
    top, bottom = np.zeros(w, dtype=np.int64), np.full(w, -1, dtype=np.int64)
    for col in range(lo, hi + 1):
        r = next((r for r in (path[col], path[col] - 1, path[col] + 1) if 0 <= r < h and on[r, col]), None)
        if r is None:
            continue
        t, b = r, r
        while t > 0 and on[t - 1, col]:
            t -= 1
        while b < h - 1 and on[b + 1, col]:
            b += 1
        top[col], bottom[col] = t, b
    length = (bottom - top + 1)[lo:hi + 1]
    thick = float(np.median(length[length > 0]))
    removed = np.zeros((h, w), dtype=bool)
    for col in range(lo, hi + 1):
        if 0 < bottom[col] - top[col] + 1 <= 1.5 * thick + 1:  # longer: a stroke crossing the line
            removed[max(top[col] - 1, 0):bottom[col] + 2, col] = True
    rest = np.where(removed, 0.0, ink)
    kept = np.flatnonzero((rest > BINARY_MIN).any(axis=0))
    if kept.size == 0 or rest.sum() < LINE_REST * ink.sum() or kept[0] - lo < LINE_OVERHANG \
            or hi - kept[-1] < LINE_OVERHANG:
        return ink
    m = max(2, math.ceil(thick / 2), math.floor(LINE_END * w + 0.5))
    for span in (np.arange(lo, lo + m), np.arange(hi - m + 1, hi + 1)):
        near = np.abs(np.arange(h)[:, None] - path[span][None, :]) <= thick / 2 + 1
        if (on[:, span] & ~near).any():
            return ink
    return rest


# After the background is gone, what is left can still hold things that are not the digit:
# specks of noise, and what a shadow's or the sheet's corner leaves at the frame. The ink
# is split into connected regions on a copy reduced by block maxima (so no stroke breaks);
# regions with under SPECK of the largest one's ink are dropped, and so are regions with
# strokes over FRAME_WIDTH times as wide as those of the heaviest region that does not touch
# the frame (a wedge of shade, not a pen stroke). A digit alone in the frame is kept even
# where it touches it.
SPECK, FRAME_WIDTH = 0.02, 2.0


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected regions of a boolean image: labels (0 background, 1..n), n, numbered in
    the order a row-by-row scan first meets them.

    By runs, in NumPy: each row's runs of True; the runs of the row above that each one
    touches (diagonals included), found by binary search; then the graph of runs joined
    by hooking each edge's larger root onto its smaller and halving paths until every run
    points at the first run (in scan order) of its region. No loop over pixels or runs in
    Python: 0.45 -> 0.2 ms on a 200x200 crop of three strokes (the union-find in Python before).
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    change = np.diff(padded, axis=1).ravel()
    where = np.flatnonzero(change)  # one index array, not np.nonzero's two: a third of the cost
    where_rows, where_cols = np.divmod(where, w + 1)
    up = change[where] == 1
    rows, starts = where_rows[up], where_cols[up]
    ends = where_cols[~up]  # exclusive; same order as the starts (row-major)
    n = len(starts)
    if n == 0:
        return np.zeros((h, w), dtype=np.int32), 0
    # Run j of the row above touches run i when ends[j] >= starts[i] and starts[j] <= ends[i]
    # (ends exclusive: that is touching at a corner). Keys (row, column) sort the runs.
    side = w + 2
    lo = np.searchsorted(rows * side + ends, (rows - 1) * side + starts, "left")
    hi = np.searchsorted(rows * side + starts, (rows - 1) * side + ends, "right")
    count = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(n), count)
    b = np.repeat(lo - (np.cumsum(count) - count), count) + np.arange(a.size)
    root = np.arange(n)
    # (x == y).all() rather than np.array_equal: the same answer for arrays of one shape,
    # without its checks, which cost more than the comparison on a few hundred runs.
    while a.size:
        ra, rb = root[a], root[b]
        if (ra == rb).all():
            break
        np.minimum.at(root, np.maximum(ra, rb), np.minimum(ra, rb))
        while not ((jumped := root[root]) == root).all():
            root = jumped
    # The root of a region is its first run in scan order (the runs that are their own
    # root); regions numbered in that order, each root's number the count of roots up to it.
    rank = np.cumsum(root == np.arange(n), dtype=np.int32)
    number = rank[root]
    labels = np.zeros(h * w, dtype=np.int32)
    labels[mask.reshape(-1)] = np.repeat(number, ends - starts)  # the runs' pixels, in scan order
    return labels.reshape(h, w), int(rank[-1])


def regions(ink: np.ndarray, box: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's region (0: no ink) and, per region 1..n, its reduced-copy labels' grid.
    ``box``: the ink's box (``ink_box``), if known."""
    h, w = ink.shape
    f = -(-max(h, w) // LIGHT_SIDE)
    hs, ws = -(-h // f), -(-w // f)
    label, small = np.zeros((h, w), dtype=np.int32), np.zeros((hs, ws), dtype=np.int32)
    if box is None:
        box = ink_box(ink)
    if box is None:
        return label, small
    # Only the blocks that hold the ink's box are worked on: the reduced copy's other
    # blocks are empty, and its regions are numbered in the same order (a row-by-row scan
    # meets them as it would in the whole copy).
    by0, bx0, by1, bx1 = box[1] // f, box[0] // f, -(-box[3] // f), -(-box[2] // f)
    padded = np.zeros(((by1 - by0) * f, (bx1 - bx0) * f), dtype=bool)
    part = ink[by0 * f:by1 * f, bx0 * f:bx1 * f] > 0
    padded[:part.shape[0], :part.shape[1]] = part
    # Block maxima by f strided slices a side: the same maxima (exact in any order) as a
    # reshape and a two-axis max, which NumPy runs 15x slower (0.9 ms on a 280x280 canvas).
    rows = np.logical_or.reduce([padded[i::f] for i in range(f)]) if f > 1 else padded
    coarse = np.logical_or.reduce([rows[:, j::f] for j in range(f)]) if f > 1 else rows
    sub, n = components(coarse)
    small[by0:by1, bx0:bx1] = sub
    inside = (slice(box[1] - by0 * f, box[3] - by0 * f), slice(box[0] - bx0 * f, box[2] - bx0 * f))
    on = part[inside]  # the ink's box within the blocks: ink > 0 there
    ys, xs = slice(box[1], box[3]), slice(box[0], box[2])
    if n == 1:  # one region (a digit drawn in one stroke): every ink pixel is in it
        label[ys, xs] = on
        return label, small
    up = np.repeat(np.repeat(sub, f, 0), f, 1) if f > 1 else sub  # each block's label on its pixels
    label[ys, xs] = up[inside] * on
    return label, small


def region_sums(ink: np.ndarray, label: np.ndarray, n: int, box: tuple[int, int, int, int] | None = None):
    """Per region 0..n: its ink, its pixels, and the length of its edges (the frame counts
    as an edge), summed over the ink's box and a pixel around it (up to the frame), which
    that box returns as a pair of slices. Every region pixel and every edge between a
    region and the paper lies there, and each region's pixels come in the order they have
    in the whole image: the same sums as over the whole image (region 0's aside)."""
    h, w = label.shape
    x0, y0, x1, y1 = box or ink_box(label)  # (``box``: the labels' box, if known)
    rows, cols = slice(max(y0 - 1, 0), min(y1 + 1, h)), slice(max(x0 - 1, 0), min(x1 + 1, w))
    lab = label[rows, cols]
    mass = np.bincount(lab.ravel(), weights=ink[rows, cols].ravel(), minlength=n + 1)
    area = np.bincount(lab.ravel(), minlength=n + 1)
    edge = np.zeros(n + 1)
    for a, b in ((lab[:, 1:], lab[:, :-1]), (lab[1:], lab[:-1])):
        cut = a != b
        edge += np.bincount(a[cut], minlength=n + 1) + np.bincount(b[cut], minlength=n + 1)
    for border, at in ((lab[0], y0 == 0), (lab[-1], y1 == h), (lab[:, 0], x0 == 0), (lab[:, -1], x1 == w)):
        if at:  # the frame is an edge too
            edge += np.bincount(border, minlength=n + 1)
    return (rows, cols), mass, area, edge


def keep_digit(ink: np.ndarray,
               window: tuple[slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """The ink map without specks and frame debris (see ``SPECK``), the regions of what is
    kept (``regions``' labels, 0 where dropped) and its box (``ink_box``; None for no ink).
    ``window``: a pair of slices that holds all the ink, if known (its box is found there)."""
    box = ink_box_in(ink, window)
    label, small = regions(ink, box)
    n = int(small.max())
    if n <= 1:
        return ink, label, box
    (rows, cols), mass, area, edge = region_sums(ink, label, n, box)
    lab = label[rows, cols]
    width = 2 * area / np.maximum(edge, 1)
    at_frame = np.zeros(n + 1, dtype=bool)
    at_frame[np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])] = True
    drop = mass < SPECK * mass[1:].max()
    inside = [i for i in range(1, n + 1) if not at_frame[i] and not drop[i]]
    if inside:
        # The digit: the region inside the frame with the most ink; regions of much wider
        # strokes than its own are shade, inside the frame or at it.
        ref = width[max(inside, key=lambda i: mass[i])]
        drop |= width > FRAME_WIDTH * ref
    drop[0] = False
    if not drop.any():
        return ink, label, box
    gone = drop[lab]
    ink, label = ink.copy(), label.copy()
    ink[rows, cols] = np.where(gone, 0.0, ink[rows, cols])
    label[rows, cols] = np.where(gone, 0, lab)
    return ink, label, ink_box_in(ink, (rows, cols))  # what is left lies in the sums' window


# A digit cropped to its bounding box touches all four edges too, but only where its
# outline meets them: at most twice a side and five times in all (measured on MNIST's test
# digits cropped, and at low resolution). Strokes that run out of the frame (a scribble, a
# texture) cross it more often.
EDGE_RUNS, SIDE_RUNS = 5, 2


def edge_runs(side: np.ndarray) -> int:
    """How many separate runs of ink lie along one edge of the image."""
    on = np.concatenate([[False], side > 0, [False]])
    return int(np.count_nonzero(on[1:] & ~on[:-1]))


def marks(ink: np.ndarray, label: np.ndarray, box: tuple[int, int, int, int] | None = None) -> list[list]:
    """The ink's marks, left to right: its regions grouped where they overlap across (a 5
    whose bar came off its body is one mark), each as [x0, x1, y0, y1, mass, region ids]
    (x1 and y1 inclusive). ``box``: the ink's box (``ink_box``), if known: nothing outside
    it is ink or labelled, so the marks are the same, found in a fraction of the pixels (a
    number in a 640x480 photo: 2.8 ms a call before)."""
    if box is not None:
        x0, y0, x1, y1 = box
        return [[g[0] + x0, g[1] + x0, g[2] + y0, g[3] + y0, *g[4:]]
                for g in marks(ink[y0:y1, x0:x1], label[y0:y1, x0:x1])]
    n = int(label.max())
    mass = np.bincount(label.ravel(), weights=ink.ravel(), minlength=n + 1)
    ys, xs = np.nonzero(label)
    which = label[ys, xs]
    lo_x, hi_x = np.full(n + 1, 1 << 30), np.full(n + 1, -1)
    lo_y, hi_y = np.full(n + 1, 1 << 30), np.full(n + 1, -1)
    if which.size:
        # Each region's extremes over its pixels, grouped by a sort (ufunc.at, pixel by
        # pixel, took 2-3 ms on a photo of a number): the same minima and maxima.
        order = np.argsort(which, kind="stable")
        which, xs, ys = which[order], xs[order], ys[order]
        ids, starts = np.unique(which, return_index=True)
        lo_x[ids], hi_x[ids] = np.minimum.reduceat(xs, starts), np.maximum.reduceat(xs, starts)
        lo_y[ids], hi_y[ids] = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    groups: list[list] = []
    kept = [i for i in range(1, n + 1) if hi_x[i] >= 0]  # labels of dropped regions have no pixels
    for i in sorted(kept, key=lambda i: (lo_x[i], hi_x[i], lo_y[i], hi_y[i])):
        box = [int(lo_x[i]), int(hi_x[i]), int(lo_y[i]), int(hi_y[i]), float(mass[i]), [i]]
        if groups and box[0] <= groups[-1][1]:
            g = groups[-1]
            groups[-1] = [g[0], max(g[1], box[1]), min(g[2], box[2]), max(g[3], box[3]), g[4] + box[4], g[5] + [i]]
        else:
            groups.append(box)
    return groups


def parts_of(groups: list[list]) -> tuple[list[list], int, int]:
    """The marks with SHARE of the ink, and the height and width they span together."""
    total = sum(g[4] for g in groups)
    parts = [g for g in groups if g[4] >= SHARE * total]
    if not parts:
        return parts, 0, 0
    top, bottom = min(p[2] for p in parts), max(p[3] for p in parts)
    return parts, bottom - top + 1, parts[-1][1] - parts[0][0] + 1


def several(ink: np.ndarray, groups: list[list]) -> bool:
    """Whether the marks are several digits side by side (see ``SHARE``)."""
    parts, height, width = parts_of(groups)
    return len(parts) >= 2 and all(p[3] - p[2] + 1 >= TALL * height for p in parts) and width >= height


def check_edges(ink: np.ndarray) -> None:
    """Raise ``NoDigit`` where the ink crosses all four edges (see ``EDGE_RUNS``)."""
    sides = [edge_runs(side) for side in (ink[0], ink[-1], ink[:, 0], ink[:, -1])]
    if min(sides) > 0 and (sum(sides) > EDGE_RUNS or max(sides) > SIDE_RUNS):
        raise NoDigit(ALL_EDGES)


def check_single_digit(ink: np.ndarray, label: np.ndarray | None = None,
                       box: tuple[int, int, int, int] | None = None) -> None:
    """Raise ``NoDigit`` where the ink is not one digit: it crosses all four edges (see
    ``EDGE_RUNS``), or it is several marks side by side (see ``SHARE``). ``label``: the ink's
    regions, ``box``: its box (``ink_box``), if known."""
    check_edges(ink)
    if label is None:
        label, _ = regions(ink)
    if int(label.max()) >= 2 and several(ink, marks(ink, label, box)):
        raise NoDigit(SEVERAL)


# Stroke width relative to the digit's longer side, as 2 x area / edge length of the binary
# strokes: MNIST's training digits have a median of 0.099 and a 10th percentile of 0.071.
# A photo of a ballpoint digit (0.02 to 0.04) shrunk to 20 pixels would be a hairline the
# model has never seen, so thinner strokes are drawn again with a wider pen, to the median
# (stroke-width normalisation; a wider square pen is a dilation). Thick ones are left as
# they are: MNIST has many.
STROKE_MIN, STROKE_TARGET = 0.07, 0.099


def stroke_width(binary: np.ndarray) -> float:
    """Mean stroke width of a binary image, in pixels: 2 x area / length of its edges."""
    # Edges between neighbours, and between the ink and the paper beyond the frame.
    edges = np.count_nonzero(binary[:, 1:] != binary[:, :-1]) + np.count_nonzero(binary[1:] != binary[:-1]) \
        + sum(np.count_nonzero(side) for side in (binary[0], binary[-1], binary[:, 0], binary[:, -1]))
    return 2.0 * np.count_nonzero(binary) / max(edges, 1)


def _padded(binary: np.ndarray, r: int) -> np.ndarray:
    """uint8 ``binary`` with ``r`` zeros around it (np.pad's, at a fraction of its cost)."""
    h, w = binary.shape
    out = np.zeros((h + 2 * r, w + 2 * r), dtype=np.uint8)
    out[r:r + h, r:r + w] = binary
    return out


def close_gaps(binary: np.ndarray) -> np.ndarray:
    """Binary closing (a maximum, then a minimum filter) with a window of 1/40 of the crop's
    longer side: pencil grain and the nicks of a dry pen split strokes into specks, which
    would read as a hundred thin strokes; closed, they are one again."""
    k = max(3, max(binary.shape) // 40 | 1)
    out = _padded(binary, k)
    if k == 3:  # a crop under 120 pixels (a number's pieces): or-ed slices, 44 -> 20 us
        return ~_dilate3(~_dilate3(out.astype(bool)))[k:-k, k:-k]
    for op in (np.max, np.min):
        out = _running(_running(out, k, 0, op), k, 1, op)
    return out[k:-k, k:-k].astype(bool)


def normalize_stroke(binary: np.ndarray, grain: bool = True) -> np.ndarray:
    """A binary crop whose strokes are thinner than ``STROKE_MIN`` of its longer side,
    dilated to about ``STROKE_TARGET`` (padded so nothing is cut); others unchanged.
    ``grain``: close gaps first (a photo's; a drawing on a flat background has none)."""
    if grain:
        binary = close_gaps(binary)
    side = max(binary.shape)
    width = stroke_width(binary)
    if width >= STROKE_MIN * side:
        return binary
    r = int(round((STROKE_TARGET * side - width) / 2))
    if r < 1:
        return binary
    out = _padded(binary, r)
    k = 2 * r + 1
    return _running(_running(out, k, 0, np.max), k, 1, np.max).astype(bool)


# Hysteresis (as in Canny's edge detector): where the strokes come out thinner than
# MNIST's median at the binarisation threshold (a thin pen, a soft low-resolution digit
# scaled up, a blurred one), their fainter parts (above HYSTERESIS of the threshold) are
# kept where they join the strokes above it: the thin tail of a 2, the faint side of a 0,
# which a plain threshold cuts off. Thick strokes keep the plain threshold: a marker's soft
# halo would close its loops. Decided on the robustness benchmark (MNIST's test digits,
# 500 a row): 8x8 scaled up 93.0 -> 96.6%, thin pen 95.6 -> 96.8%, 12x12 98.0 -> 99.0%,
# 16x16 98.0 -> 98.6%, every other row unchanged (all of them at half instead: marker
# 97.8 -> 96.2%).
HYSTERESIS = 0.5
GROW = 8


def binarize(crop: np.ndarray, cut: float) -> np.ndarray:
    """The strokes of a large crop: above ``cut``, with hysteresis where they are thin."""
    return _binarize(crop, cut)[0]


def _binarize(crop: np.ndarray, cut: float) -> tuple[np.ndarray, bool]:
    """``binarize``, and whether its strokes were thick at the threshold (then at least
    ``STROKE_TARGET`` of the crop's longer side wide, which ``normalize_stroke`` without
    grain leaves as they are)."""
    strong = crop > cut
    if stroke_width(strong) >= STROKE_TARGET * max(crop.shape):
        return strong, True
    low = crop > HYSTERESIS * cut
    # The regions above the lower level that hold a strong pixel: grown from the strong
    # pixels (all above the lower level) a ring of 8 neighbours at a time within it, the
    # same pixels as labelling its regions. A number's pieces are done in 2 to 6 rings, a
    # third of the labelling's time; a long faint tail, after GROW rings, is labelled.
    grown = strong
    for _ in range(GROW):
        more = _dilate3(grown)
        more &= low
        if (more == grown).all():
            return grown, False
        grown = more
    label, n = components(low)
    if n == 1:  # one region (strong pixels lie in the lower level's regions): all of it, if it holds any
        return (low if strong.any() else np.zeros_like(low)), False
    keep = np.zeros(n + 1, dtype=bool)
    keep[label[strong]] = True  # the regions above the lower level that hold a strong pixel
    keep[0] = False
    return (low if keep[1:].all() else keep[label]), False


def ink_cut(ink: np.ndarray, box: tuple[int, int, int, int] | None = None) -> float:
    """The level at which a large crop's strokes are binarised (``binarize``). ``box``: the
    ink's box (``ink_box``), if known: the same level from the pixels inside it, the rest
    (all 0) only counted."""
    if box is None:
        return max(otsu_threshold(ink), BINARY_MIN)
    x0, y0, x1, y1 = box
    inside = ink[y0:y1, x0:x1]
    return max(otsu_threshold(inside, ink.size - inside.size), BINARY_MIN)


def ink_box_in(ink: np.ndarray, window: tuple[slice, slice] | None) -> tuple[int, int, int, int] | None:
    """``ink_box(ink)``, found in ``window`` (a pair of slices with their starts) where all the
    ink lies, if given."""
    if window is None:
        return ink_box(ink)
    box = ink_box(ink[window])
    if box is None:
        return None
    y, x = window[0].start, window[1].start
    return box[0] + x, box[1] + y, box[2] + x, box[3] + y


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box of the ink (x0, y0, x1, y1, ends exclusive), or None if there is none."""
    on = ink if ink.dtype == bool else ink > 0  # a boolean's reductions are 2x a float's speed
    rows = np.flatnonzero(on.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(on.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def to_mnist(img) -> np.ndarray:
    """A Pillow image -> uint8 [28, 28], MNIST's conventions (see the module docstring)."""
    ink, label, flat, box = _ink(*gray_levels(img, gray=False))
    if box is None:
        raise NoDigit(NOTHING_LEFT)
    check_single_digit(ink, label, box)
    return frame_digit(ink[box[1]:box[3], box[0]:box[2]], lambda: ink_cut(ink, box), flat)


# Pillow's LANCZOS resize of an 8-bit image (Resample.c), exactly, as two products with
# a matrix of its fixed-point weights per size (made once): horizontal first, then vertical.
# For a two-axis resize Pillow picks the order of its passes by a rule of its own (it
# changed between versions, and the pixels differ with the order); one axis at a time,
# every Pillow, the web page's JavaScript and this give the same. Each pass sums integers
# (levels times weights of at most 2^23) far below 2^53, so floating point sums them
# exactly in any order: the same bytes as Pillow (tests/test_images.py compares them), in
# a fifth of the time of the image round trip through Pillow (a canvas digit: 0.24 ms).
PRECISION_BITS = 32 - 8 - 2


# Made once per size up to CACHE_SIDE (about 0.1 ms to make, and a canvas digit needs two;
# 0.04 ms to use them); a larger crop's made each time. At most CACHED of them, each [size,
# at most 20] (under 80 KB; a number's pieces, about 10 KB): 300 validation numbers of 5
# digits asked for 881 different ones, and 128 missed 6,598 times in 16,162 (half the
# calls to frame_digit paying 0.2 ms for them), 1,024 only the first time each.
CACHE_SIDE, CACHED = 512, 1024


def _lanczos_weights(size: int, out: int) -> np.ndarray:
    return _cached_weights(size, out) if size <= CACHE_SIDE else _weights(size, out)


@functools.lru_cache(maxsize=CACHED)
def _cached_weights(size: int, out: int) -> np.ndarray:
    return _weights(size, out)


def _weights(size: int, out: int) -> np.ndarray:
    """float64 [size, out]: column j holds output pixel j's fixed-point weights over the
    input: Pillow's precompute_coeffs and normalize_coeffs_8bpp, the same double
    operations in the same order, for all the taps at once (the kernel's sums in order, as
    cumsum adds, not as np.sum's pairs; NumPy's sine is the C library's here, which the
    test against Pillow checks)."""
    scale = size / out
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    centre = (np.arange(out) + 0.5) * scale
    lo = np.maximum((centre - support + 0.5).astype(np.intp), 0)  # C's (int): toward zero
    hi = np.minimum((centre + support + 0.5).astype(np.intp), size)
    x = lo[:, None] + np.arange(max(int((hi - lo).max()), 1))  # [out, taps]
    inside = x < hi[:, None]
    t = (x - centre[:, None] + 0.5) * (1.0 / filterscale)
    with np.errstate(invalid="ignore", divide="ignore"):
        u, v = t * math.pi, t / 3 * math.pi
        k = np.where(t == 0, 1.0, np.sin(u) / u) * np.where(t == 0, 1.0, np.sin(v) / v)
    k = np.where(inside & (-3.0 <= t) & (t < 3.0), k, 0.0)
    total = np.cumsum(k, axis=1)[:, -1:]
    k = np.divide(k, total, out=k, where=total != 0)
    k *= 1 << PRECISION_BITS
    k = np.trunc(np.where(k < 0, k - 0.5, k + 0.5))
    m = np.zeros((size, out))
    m[x[inside], np.nonzero(inside)[0]] = k[inside]
    m.flags.writeable = False
    return m


def _clip8(sums: np.ndarray) -> np.ndarray:
    """A pass's fixed-point sums -> levels 0..255 (Pillow's clip8, with its rounding half)."""
    # Whole numbers under 2^53 times a power of two, floored: exactly C's shift, at a fifth
    # of floor_divide's cost.
    sums += 1 << (PRECISION_BITS - 1)
    sums *= 1.0 / (1 << PRECISION_BITS)
    np.floor(sums, out=sums)
    np.maximum(sums, 0.0, out=sums)
    return np.minimum(sums, 255.0, out=sums)


def lanczos(pixels: np.ndarray, w: int, h: int) -> np.ndarray:
    """uint8 [H, W] -> Pillow's ``resize((w, h), LANCZOS)`` of it, one axis at a time
    (horizontal first), as float64 levels [h, w] (whole numbers 0..255)."""
    out = pixels.astype(np.float64)
    if w != out.shape[1]:
        out = _clip8(out @ _lanczos_weights(out.shape[1], w))
    if h != out.shape[0]:
        out = _clip8(_lanczos_weights(out.shape[0], h).T @ out)
    return out


_GRID = np.mgrid[0:SIDE, 0:SIDE]  # each pixel's row and column, for the centre of mass
_GRID.flags.writeable = False
_STEPS = np.arange(SIDE)


def frame_digit(crop: np.ndarray, cut, flat: bool) -> np.ndarray:
    """One digit's ink, cropped to its bounding box -> uint8 [28, 28]. ``cut``: a function
    giving the binarisation level (``ink_cut`` of the whole ink map), called only for a
    large crop; ``flat``: the paper was even (``_ink``)."""
    h, w = crop.shape
    if max(h, w) >= 2 * BOX:
        # MNIST was made from binary scans, antialiased by the reduction to 20x20. Doing
        # the same to a large photo (rather than shrinking its blurry grey strokes) gives
        # strokes with MNIST's profile: on photos of test digits, about 2 points more accurate.
        binary, thick = _binarize(crop, cut())
        if not (thick and flat):  # (thick strokes without grain: normalize_stroke leaves them)
            binary = normalize_stroke(binary, grain=not flat)
        pixels = binary.astype(np.uint8) * 255
    else:
        pixels = (crop * 255).astype(np.uint8)
    h, w = pixels.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = lanczos(pixels, nw, nh) / 255.0
    frame = np.zeros((SIDE, SIDE))
    top, left = (SIDE - nh) // 2, (SIDE - nw) // 2
    frame[top:top + nh, left:left + nw] = small
    # Shift so the centre of mass lands on the centre, as MNIST's creators did.
    mass = frame.sum()
    if mass <= 0:  # ink so faint that none of it survives the reduction to 8 bits
        raise NoDigit(NOTHING_LEFT)
    ys, xs = _GRID
    cy, cx = (ys * frame).sum() / mass, (xs * frame).sum() / mass
    dy, dx = int(round(CENTRE - cy)), int(round(CENTRE - cx))
    frame = frame[(_STEPS - dy) % SIDE][:, (_STEPS - dx) % SIDE]  # np.roll(frame, (dy, dx)), a tenth of its cost
    # np.clip as np.minimum of np.maximum: the same levels, at a fifth of its cost (a number's 40 pieces).
    return np.minimum(np.maximum(np.round(frame * 255), 0), 255).astype(np.uint8)


def read_digit(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Open and convert: uint8 array [28, 28] ready for ``Checkpoint.logits`` or ``lite``."""
    label = name or ("image" if isinstance(source, bytes) else str(source))
    return digit_of(open_image(source, label), label)


def load_digit(source: str | os.PathLike | bytes, name: str | None = None) -> torch.Tensor:
    """``read_digit`` as a uint8 tensor [28, 28]."""
    import torch

    return torch.from_numpy(read_digit(source, name))


def digit_of(img, label: str) -> np.ndarray:
    """A decoded image -> uint8 array [28, 28]; a refusal names the image as ``label``."""
    try:
        return to_mnist(img)
    except NoDigit as exc:
        raise NoDigit(exc.reason, label) from None
    except ImageError as exc:
        raise ImageError(f"{label}: {exc}") from None


def expand_paths(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder stands for the image files inside it (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in EXTENSIONS)
        else:
            out.append(p)
    return out
