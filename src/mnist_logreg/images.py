"""A person's digit image -> a 28x28 MNIST-style image, written once for every entry point.

MNIST's own recipe: light digit on a dark background, the digit scaled to fit a 20x20
box (keeping its aspect ratio, antialiased) and placed in the 28x28 frame so that its
centre of mass is at the centre. Photos and scans need more first: flatten transparency onto white,
go to grayscale, detect dark-on-light and invert it, and remove the background
(uneven paper, noise) with a threshold. The model's own preprocessing (deskewing,
normalisation) follows, from the run (``Checkpoint.logits``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

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
        img = Image.open(fh, formats=list(FORMATS))
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image in a supported format ({', '.join(FORMATS)})") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"{name}: cannot read image ({exc})") from None
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
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        return arr / max(1.0, float(arr.max()))
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def otsu_threshold(values: np.ndarray) -> float:
    """The threshold in [0, 1] that best separates two groups of values (Otsu, 1979)."""
    # np.histogram(values, 256, (0, 1))'s counts, 10x faster: x * 256 is exact in floating
    # point, so its floor is the bin np.histogram picks (1.0 goes in the last bin, as there).
    hist = np.bincount(np.minimum((values.ravel() * 256).astype(np.intp), 255), minlength=256).astype(np.float64)
    edges = np.linspace(0.0, 1.0, 257)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Grayscale -> ink intensity in [0, 1] (ink bright, background exactly 0).

    Otsu's threshold splits ink from background; the background's level and noise
    (median and spread) are subtracted, so paper texture and sensor noise go to 0 while
    the digit keeps its antialiased edges.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    # The border is mostly background: a bright border means dark ink on light paper.
    ink = 1.0 - gray if np.median(border) > 0.5 else gray.copy()
    if ink.max() - ink.min() < 0.05:
        raise ImageError("no digit found (the image is blank)")
    t = otsu_threshold(ink)
    back, fore = ink[ink <= t], ink[ink > t]
    level = float(np.median(back)) if back.size else 0.0
    spread = float(np.percentile(np.abs(back - level), 99)) if back.size else 0.0
    floor = min(level + 2 * spread + 1e-6, t)
    peak = float(np.percentile(fore, 90)) if fore.size else float(ink.max())
    return np.clip((ink - floor) / max(peak - floor, 1e-6), 0.0, 1.0)


def to_mnist(img) -> np.ndarray:
    """A Pillow image -> uint8 [28, 28], MNIST's conventions (see the module docstring)."""
    from PIL import Image

    ink = ink_map(to_grayscale(img))
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    if rows.size == 0:
        raise ImageError("no digit found after removing the background")
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    if max(h, w) >= 2 * BOX:
        # MNIST was made from binary scans, antialiased by the reduction to 20x20. Doing
        # the same to a large photo (rather than shrinking its blurry grey strokes) gives
        # strokes with MNIST's profile: on photos of test digits, about 2 points more accurate.
        crop = (crop > max(otsu_threshold(ink), BINARY_MIN)).astype(np.float64)
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    # One axis at a time, horizontal first: for a two-axis resize Pillow picks the order of
    # its passes by a rule of its own (it changed between versions, and the pixels differ
    # with the order); this way every Pillow, and the web page's JavaScript, gives the same.
    small = Image.fromarray((crop * 255).astype(np.uint8))
    small = small.resize((nw, h), Image.Resampling.LANCZOS).resize((nw, nh), Image.Resampling.LANCZOS)
    small = np.asarray(small, dtype=np.float64) / 255.0
    frame = np.zeros((SIDE, SIDE))
    top, left = (SIDE - nh) // 2, (SIDE - nw) // 2
    frame[top:top + nh, left:left + nw] = small
    # Shift so the centre of mass lands on the centre, as MNIST's creators did.
    mass = frame.sum()
    ys, xs = np.mgrid[0:SIDE, 0:SIDE]
    cy, cx = (ys * frame).sum() / mass, (xs * frame).sum() / mass
    dy, dx = int(round(CENTRE - cy)), int(round(CENTRE - cx))
    frame = np.roll(frame, (dy, dx), axis=(0, 1))
    return np.clip(np.round(frame * 255), 0, 255).astype(np.uint8)


def load_digit(source: str | os.PathLike | bytes, name: str | None = None) -> torch.Tensor:
    """Open and convert: uint8 tensor [28, 28] ready for ``Checkpoint.logits``."""
    label = name or ("image" if isinstance(source, bytes) else str(source))
    return digit_of(open_image(source, label), label)


def digit_of(img, label: str) -> torch.Tensor:
    """A decoded image -> uint8 tensor [28, 28]; a refusal names the image as ``label``."""
    try:
        return torch.from_numpy(to_mnist(img))
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
