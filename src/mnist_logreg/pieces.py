"""What the piece check learns from: the pieces ``read_number`` cuts, labelled by whose ink they hold.

``reading.numbers`` cuts a mark wider than a digit at candidate places and reads every
piece between two cuts; the model alone cannot tell a whole digit from half of one or from
two touching (it reads all of them confidently as something), and it never saw a digit
with a sliver of its neighbour beside it. The piece check, a second logistic regression
with eleven classes (``scripts/piece_check.py`` trains it with ``train``), reads a piece
as one whole digit of each class, or none (``NOT_ONE``).

Its examples are made here from MNIST *training* digits (the validation split and the
test set are never used): one to three digits, each scaled and stretched, set side by
side with gaps from 3 pixels down to 5 pixels of overlap (half a digit at most) and their
baselines moved, as dark ink on white at MNIST's scale or twice it. Each is a separate
layer, so every pixel's owner is known. The marks are found and cut exactly as
``read_number`` does (``numbers.candidate_pieces``, and the whole mark), and each piece is
labelled by its ink: that digit's class where at least 85% of its ink is one digit's and
it holds at least 80% of that digit's ink and under 15% of any other's; ``NOT_ONE`` where
under 70% is any digit's, it holds under 60% of the digit whose ink it mostly is, or 30%
of another digit's; in between, left out. Not the number benchmark's generator
(``number_bench.compose``: slant, other gaps, photos), so that the benchmark measures the
check on numbers made another way.
"""

from __future__ import annotations

import functools

import numpy as np

from .reading import images, numbers
from .reading.images import NoDigit
from .robustness import _crop, _resize

NOT_ONE = 10  # the piece check's classes: the digits 0-9 whole, and this
PURE, COVERS = 0.85, 0.8  # one digit: this share of the piece's ink is one digit's, holding this share of it
MIXED, PARTIAL = 0.7, 0.6  # not one: under this share is any digit's, or it holds under this share of it
# A piece holding this share of a second digit's ink is not that digit whole; holding the
# second share, it is not one digit. A 1 written with a fine pen can have a tenth of a heavy
# 4's ink: a 4 with such a 1 beside it was over 85% one digit's, and taught the check that
# "41" is a 4 (tests/test_pieces.py). Chosen on MNIST's
# validation numbers (1,000 of each): 5 touching digits 66.3 -> 69.0% (scans), 64.1 ->
# 65.6% (photos); 5 apart 94.5 -> 94.0% and 92.9 -> 92.6%; (0.1, 0.2) and (0.3, 0.5): 68.4 /
# 65.1% and 67.8 / 65.0%.
SECOND = (0.15, 0.3)
GAPS = (-5, 3)  # pixels between neighbours' boxes at MNIST's scale (negative: overlap)


def layers(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 digits [k, 28, 28] -> float layers [k, H, W] in [0, 1]: each digit where it
    sits in the row, 8 pixels of margin around the row."""
    parts = []
    for d in digits:
        x = _crop(d.astype(np.float64) / 255)
        s, stretch = rng.uniform(0.8, 1.2), rng.uniform(0.85, 1.15)
        h, w = max(1, round(x.shape[0] * s)), max(1, round(x.shape[1] * s * stretch))
        gap = int(rng.integers(GAPS[0], GAPS[1] + 1))
        parts.append((_resize(x, w, h), int(rng.integers(-3, 4)), max(gap, -(w // 2))))
    height = max(p.shape[0] + abs(b) for p, b, _ in parts) + 16
    width = sum(p.shape[1] + g for p, _, g in parts) + 16
    out = np.zeros((len(parts), height, width))
    x0 = 8
    for k, (p, b, gap) in enumerate(parts):
        top = 8 + (height - 16 - p.shape[0]) // 2 + b
        out[k, top:top + p.shape[0], x0:x0 + p.shape[1]] = p
        x0 += p.shape[1] + gap
    return out


def labelled_pieces(row: np.ndarray, labels, scale: int = 1) -> list[tuple[np.ndarray, int]]:
    """Layers [k, H, W] of digits of these ``labels`` -> the pieces ``read_number`` would
    read in their row, scanned at ``scale`` times: [(28x28 digit, its class or NOT_ONE)],
    the undecided left out."""
    from PIL import Image

    if scale != 1:
        k, h, w = row.shape
        row = np.stack([np.asarray(Image.fromarray(r.astype(np.float32)).resize((w * scale, h * scale),
                                                                                  Image.Resampling.BILINEAR))
                        for r in row]).astype(np.float64)
    page = Image.fromarray(np.clip(np.round((1 - row.max(axis=0)) * 255), 0, 255).astype(np.uint8))
    ink, _, flat, whole = images._ink(*images.gray_levels(page, gray=False))
    if whole is None:
        return []
    cut = functools.cache(lambda: images.ink_cut(ink, whole))
    fine, main, line, _ = numbers.fine_marks(ink, whole)
    totals = row.reshape(len(row), -1).sum(axis=1)
    out = []
    for g in main:
        mark = numbers._Mark(ink, fine, g)
        if mark.height < numbers.TALL * line:
            continue
        pieces = numbers.candidate_pieces(mark, cut, flat)[1]
        got = mark.piece(0, mark.width)
        if got is not None:
            try:
                pieces.append((None, *got, images.frame_digit(got[0], cut, flat)))
            except NoDigit:
                pass
        for _, crop, (bx0, by0, bx1, by1), digit in pieces:
            held = (row[:, by0:by1, bx0:bx1] * (crop > 0)).reshape(len(row), -1).sum(axis=1)
            k = int(np.argmax(held))
            purity, cover = held[k] / max(held.sum(), 1e-12), held[k] / max(totals[k], 1e-12)
            # The most this piece holds of any other digit's own ink.
            other = float(np.max(np.delete(held / np.maximum(totals, 1e-12), k), initial=0.0))
            if purity >= PURE and cover >= COVERS and other < SECOND[0]:
                out.append((digit, int(labels[k])))
            elif purity < MIXED or cover < PARTIAL or other >= SECOND[1]:
                out.append((digit, NOT_ONE))
    return out


def piece_set(digits: np.ndarray, labels: np.ndarray, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` rows of 1 to 3 of ``digits`` (of these ``labels``) -> their labelled pieces:
    uint8 [N, 28, 28], classes [N]."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(rows):
        pick = rng.choice(len(digits), int(rng.integers(1, 4)), replace=False)
        found += labelled_pieces(layers(digits[pick], rng), labels[pick], int(rng.integers(1, 3)))
    if not found:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    return np.stack([d for d, _ in found]), np.array([y for _, y in found], np.int64)
