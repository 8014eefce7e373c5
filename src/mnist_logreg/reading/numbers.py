"""A row of handwritten digits -> a number: segmentation checked by the recogniser.

The reader (``images``) finds the ink and its marks: regions grouped where they overlap
across, so the pieces of a broken digit (a 5's flag, a 4's two strokes) stay one mark.
Marks side by side are digits of a number, read left to right. A mark much wider than a
digit is tall is likely touching digits: it is cut where a path from top to bottom crosses
less ink than the paths beside it, and the cuts kept are those whose pieces the model
reads best (recognition-driven segmentation, as in the ZIP-code readers of the early
1990s): candidate pieces are framed as digits and read, and the sequence of pieces with
the highest sum of log probabilities is kept (a best-first search over the cuts finds what
a dynamic programme over every piece would, reading fewer), each piece also weighed
by how common its shape (width over height) is among MNIST's training digits, and by the
piece check: a second logistic regression that tells a whole digit from part of one or
from two touching (the model alone reads all of them confidently; ``pieces.py`` makes
what it learns from).

One line of digits; not several lines, nor digits written over each other. A mark under
``TALL`` of the line's height (a dash, a stray stroke that is not a speck) is not read
as a digit: it comes back as ``?`` with a reason; a point between digits as ``.``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from . import images, lite
from .images import NoDigit

# Marks with under this share of the heaviest mark's ink are specks, left out; but a mark
# of several touching digits holds several digits' ink, and a digit beside it written with
# a finer pen ("0330" beside a thin 5) can have under a tenth of it: a mark at least
# PIECE_TALL of the line's height is left out only with under this share of the most ink
# one digit has (a mark's ink over its width in heights). On 1,000 validation numbers each
# (scans / photos): 5 touching digits 81.0 / 79.6 -> 81.5 / 80.8%, 6 touching 74.9 / 74.3
# -> 76.1 / 76.8%; 2 touching and 2 to 6 apart within 1 number of before; the digits alone
# and the robustness benchmark's rows (300 test digits each) read as before. Weighed by ink
# per digit alone, any mark: an impulse-noise digit read "2?"; by height alone (a tall
# light mark is no speck): a faint stroke of a broken 4 read as a 1 too.
MARK_SHARE = 0.1
# A mark shorter than this share of the line's height is not a digit ("?").
TALL = 0.3
NOT_A_DIGIT = "a mark too small for a digit (a dash, a dot, a stray stroke)"
# A point between two digits (an amount, "12.50"; a thousands separator, "1.000") reads as
# ".": a mark at most POINT of the line's height high and wide, alone between the digits on
# either side of it, its middle in the lower part of them (below POINT_LOW of their height,
# above their bottom by less than POINT), whose core (its ink of at least CORE) is a solid round dab: at most
# ROUND times as long one way as the other, filling at least FILL of its box, and of at
# least POINT_AREA squared widths of the number's strokes (``images.stroke_width``): about
# 1.4 strokes across. Before, a point was left out as a speck ("72.10" read "7210") or,
# written large, read as a digit ("72410"). The bits beside a broken digit are thin,
# ragged or faint: in 1,000 validation numbers of 5 digits set apart, 5 lay between digits
# where a point would, and a mark's size and place alone took them for points. Some of
# MNIST's digits have a speck beside them as round as a point and one stroke across: at
# half a squared stroke (a tap of the pen, a disc a stroke across, is 0.79), 2 of 1,000
# benchmark photos of 5 digits set apart read such a speck as a point (none of 8,000
# validation numbers did). As it is, none of 8,000 validation numbers (2, 5 and 6 digits,
# touching and apart, scans and photos) nor of 6,000 of the benchmark's has a point, and
# they read as before. Alone: numbers of 5 MNIST test digits each under MNIST-C's dotted
# line (100 set apart, as scans) read 68% right; with a point wherever a dab lay low between
# two digits, 64% (7 had a dot of the line as a point, "57595" as "575.95"), and 68% again
# with the point alone in its gap. A comma is not read: a short thin stroke, as those bits are.
POINT, POINT_LOW, CORE, ROUND, POINT_AREA, FILL = 0.4, 0.6, 0.5, 1.5, 1.5, 0.55
A_POINT = "a point between digits"
# Two 1s written close ("11") are as narrow as one digit, which images.several takes for
# one: here marks at least NARROW times as wide as tall are a number too where each is at
# least NARROW_TALL of the height and the lightest has BALANCE of the heaviest's ink. Chosen
# on MNIST's training digits (never its test digits): of 400 pairs of training 1s set 2-6
# pixels apart, 245 were several marks and 390 are; of the 60,000 training digits alone,
# the same 3 are (with BALANCE alone, a 1 beside a stray line of its scan was one more).
# Not in images.several: to_mnist (read_digit, training's --add folders and the default
# recipe's damaged copies) keeps such ink as one digit; there it refused 33 more of the
# recipe's 54,823 damaged copies, and the recipe trained another model.
NARROW, NARROW_TALL, BALANCE = 0.5, 0.75, 0.4
# Ink wider than WIDE times its height may be touching digits; within a number, a mark
# wider than SPLIT_WIDE times the line's height may be.
# Cuts are tried for those. (Two digits touching are from 1 to 1.5 times as wide as tall;
# a digit alone, a 0 or a 2, up to about 1.5.)
WIDE, SPLIT_WIDE = 1.0, 0.6
# Pieces of a cut mark: at least MIN_PIECE and at most MAX_PIECE times the mark's height
# wide, at least PIECE_TALL of it high (digits written in a row are of about one height;
# a lower piece is a fragment: a 2's foot, a 5's flag); in a mark over SEVERAL heights
# wide, which holds several digits, TALL_SEVERAL (a small digit among taller ones, its
# baseline moved). On 1,000 validation numbers of 5 touching digits: 75.4 -> 76.9%
# (scans), 71.6 -> 73.5% (photos), with the piece check trained again; 2 touching and 5
# apart within 2 numbers of 1,000 of before, the digits alone within 1 of 5,000 (as scans,
# as 28x28 images) and as before on 20,000 training digits. At 0.45 in every mark: 77.0 /
# 73.7%, but 2 and 1 more of the 5,000 validation digits alone misread
# (docs/explanation/numbers.md).
MIN_PIECE, MAX_PIECE, PIECE_TALL = 0.15, 1.3, 0.6
TALL_SEVERAL, SEVERAL = 0.45, 2.0
# What one more digit costs a reading, in log probability: with the piece check below,
# a little is enough to keep the halves of a wide 0 (read confidently as 6 and 7) one 0.
# 1 before the cuts along the least ink; with them, on 1,000 validation numbers of 5
# touching digits, 0.5 read 74.0 -> 75.4% (scans) and 70.5 -> 71.6% (photos), digits
# alone and numbers set apart as with 1.
SPLIT_COST = 0.5
# How common a digit of each shape is: per class of MNIST's training digits, the log share
# of those whose width over height (of the ink's bounding box) falls in each bin of
# ASPECT_EDGES (+1 smoothing); tests/test_numbers.py recomputes it from the bundled data.
# A 1 is narrow and a 0 wide: a piece's shape weighs on the class it may be.
ASPECT_EDGES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
ASPECT_LOG_SHARE = np.array([
    (-8.69, -7.3, -2.2, -0.85, -0.88, -3.17, -6.2, -7.59, -7.59),
    (-2.38, -0.77, -1.1, -2.34, -4.12, -7.21, -8.82, -8.82, -8.82),
    (-8.69, -7.31, -2.3, -1.0, -0.81, -2.61, -4.45, -7.31, -6.21),
    (-8.72, -5.01, -1.28, -0.74, -1.49, -4.45, -8.03, -8.72, -8.72),
    (-8.67, -5.73, -1.18, -0.78, -1.52, -4.53, -8.67, -8.67, -8.67),
    (-8.6, -6.65, -1.89, -1.13, -0.95, -2.13, -4.16, -7.21, -6.4),
    (-8.69, -4.61, -0.82, -0.83, -2.21, -5.13, -7.59, -8.69, -8.69),
    (-8.74, -5.38, -1.1, -0.75, -1.75, -4.41, -6.44, -8.74, -8.74),
    (-8.68, -4.8, -0.99, -0.83, -1.75, -4.58, -7.07, -8.68, -8.68),
    (-8.69, -4.15, -0.55, -1.05, -2.9, -6.29, -8.0, -8.69, -8.69),
])
# Against the class's commonest shape: a digit of a usual shape costs nothing, so that a
# reading in more pieces is not charged for having more of them (SPLIT_COST does that).
SHAPE_PENALTY = ASPECT_LOG_SHARE - ASPECT_LOG_SHARE.max(axis=1, keepdims=True)
# What the piece checks (see ``piece_checks``) weigh in a piece's reading: CHECK_WEIGHT times
# the log of their probability that the piece is that digit whole. The model alone reads two
# digits touching, or half of one, as confidently as a digit: without the check, 2 touching
# digits were read right in 44.5% of validation numbers, and 5 in 13%.
CHECK_WEIGHT = 2.5
# The checks, weighed together by the geometric mean of their probabilities. The first
# normalises a piece's spreads as the digit model does (a wide piece is squeezed to a
# digit's width), so a 1 touching a 5 can read as a whole 5; the second leaves that step
# out and sees how wide the piece is in its frame. Alone, the second is the weaker
# (held-out pieces 94.6% against 95.0%; 5 touching validation digits 80.9 / 79.3% right as
# scans / photos against 81.5 / 80.8%); together, at CHECK_WEIGHT 2.5, on 1,000 validation
# numbers each: 5 touching 81.5 / 80.8 -> 82.7 / 82.6%, 5 apart 93.6 / 92.6 -> 94.3 / 93.0%,
# 2 touching (scans) 87.1 -> 87.8%, 2 apart (photos) 96.3 -> 96.6%, 6 touching (photos)
# 76.8 -> 78.1%, 6 apart (scans) 91.7 -> 92.2%. Not a second check's luck: with another
# check like the first (trained on other rows) instead, 81.3 / 80.6% and 93.2 / 92.8%; at
# CHECK_WEIGHT 2.5 without the second, 81.6 / 80.8% and 93.2 / 92.5%. A third, with no
# deskewing either, adds nothing (82.5 / 82.6%, 93.8 / 92.6%); one on pixels, not stroke
# directions, costs (78.9 / 79.3%).
CHECKS = ("piece-check", "piece-check-plain")
# Most images hold one digit: ink that to_mnist reads as one digit is read as several only
# where that reading beats it by ONE_BONUS more (in log probability).
ONE_BONUS = 1.0
# Ink more than WIDEST times as wide as it is high is never one digit: MNIST's 60,000
# training digits are at most 2.22 times as wide (flat 2s and 5s; 21 of them reach 2). A
# whole number read as one digit scores a single piece's penalties, while reading it as
# its 5 digits adds up 5 pieces' small doubts, which can come to more: 1,000 validation
# numbers of 5 touching digits were read as one digit 8 times as scans and 12 as photos
# ("17938" as "0"), and 2 of 5 apart digits as scans, where the reader's copy reduced to
# LIGHT_SIDE closed their gaps. With the limit: touching 77.4 -> 77.7% (scans), 78.3 ->
# 78.6% (photos), apart 92.0 -> 92.2% and 92.9% as before; 2 touching (500 each) and the
# digits alone (5,000 validation and 20,000 training digits) as before. Nor is a mark of a
# number over WIDEST times as wide as the line is high read whole among its cuts (``_split``):
# 4 of 1,000 validation numbers of 5 touching digits, in one mark or two, had such a mark
# read as one digit ("36459" as "5"); without it, on 1,000 validation numbers each, 5
# touching 81.0 / 79.4 -> 81.0 / 79.6% (scans / photos), digits 94.9 / 94.6 -> 95.1 / 94.9%,
# 6 touching 74.8 / 74.2 -> 74.9 / 74.3%, 2 touching and 5 and 6 apart as before.
WIDEST = 2.25
# A cut runs from top to bottom within SEAM_BAND of the mark's height of its column,
# crossing the least ink, a step sideways costing SEAM_STEP (ink is 0 to 1 a pixel); one is
# tried near every column, and kept where it crosses less ink than the cuts beside it
# (``cuts_of``), on a copy of the mark reduced to at most CUT_HEIGHT pixels high (a number
# 600 pixels high read in 0.7 s, 1.1 s at full size: the rest is framing its pieces). A
# short reach finds more cuts (each path keeps nearer its column), and where two digits
# touch the one between them is more often among them; a cut follows a gap leaning by up
# to twice the reach over the height (0.2, about 11 degrees). On 1,000 validation numbers
# of 5 touching digits, the piece check trained on the cuts each time: 0.2 73.8 / 74.5%
# right (scans / photos), 0.15 75.9 / 77.0%, 0.1 77.4 / 78.3%; 0.1 and 0.2 together (a gap
# leaning twice as far followed) 77.3 / 77.9%, and as many right with the digits slanted up
# to 0.45 instead of 0.2, for 7% more pieces (docs/explanation/numbers.md).
SEAM_BAND, SEAM_STEP, CUT_HEIGHT = 0.1, 0.1, 96
SEAM_PIXELS = 4_000_000
# WIDE, PIECE_TALL, SPLIT_COST, CHECK_WEIGHT and ONE_BONUS were chosen together
# on numbers and single digits of MNIST's validation split (never its test digits; the
# check learns from the other training digits): 2 and 5 digits touching as scans (200 and
# 100 numbers), 5 digits as photos touching and apart (100 each), and the 5,000 digits
# alone as 28x28 images and as scans. Chosen: 87.5% / 55% / 59% / 90% right, against
# 44.5 / 13 / 5 / 87% before; of the digits alone, 55 and 61 of 5,000 misread, as before.
# A check of two classes (one digit or not) instead: 83 / 52 / 52 / 86%; straight cuts:
# 82.5 / 49 / 47 / 87%.
# A wide mark that reads well whole is not cut (see _split), and the best sequence of
# pieces is found by a best-first search that leaves pieces unread (best_reading); off
# only to check that the readings are the same.
PRUNE = True


def settings() -> dict:
    """The segmentation's constants and its piece checks, for the web page's copy of
    ``read_number`` (web/recognizer.js): one source, carried in the exported page's model."""
    return {"pieceChecks": [lite.web_spec(c.config.preprocess, c.image_shape, c.classes, c.tensors)
                            for c in piece_checks()],
            "checkWeight": CHECK_WEIGHT, "pieceTall": PIECE_TALL, "tallSeveral": TALL_SEVERAL, "several": SEVERAL,
            "seamBand": SEAM_BAND, "seamStep": SEAM_STEP,
            "cutHeight": CUT_HEIGHT,
            "oneBonus": ONE_BONUS, "widest": WIDEST, "markShare": MARK_SHARE, "tall": TALL,
            "wide": WIDE, "splitWide": SPLIT_WIDE, "minPiece": MIN_PIECE, "maxPiece": MAX_PIECE,
            "splitCost": SPLIT_COST, "aspectEdges": list(ASPECT_EDGES), "shapePenalty": SHAPE_PENALTY.tolist(),
            "notADigit": NOT_A_DIGIT, "aPoint": A_POINT, "point": POINT, "pointLow": POINT_LOW, "core": CORE,
            "round": ROUND, "fill": FILL, "pointArea": POINT_AREA, "narrow": NARROW, "narrowTall": NARROW_TALL,
            "balance": BALANCE}


@dataclass
class DigitRead:
    """One digit of a number: its label ("?" when the mark is not a digit, with the
    ``reason``), probabilities (in the model's class order), box in the image's pixels
    (x0, y0, x1, y1, exclusive ends) and the 28x28 image the model saw."""
    label: str
    box: tuple[int, int, int, int]
    probability: float | None = None
    probabilities: list[float] | None = None
    reason: str | None = None
    digit: np.ndarray | None = field(default=None, repr=False)
    score: float = field(default=0.0, repr=False)  # piece_reading's: how well it reads as one digit

    def as_dict(self, top_k: int = 3, classes=None) -> dict:
        out = {"label": self.label, "box": list(self.box), "probability": self.probability}
        if self.reason:
            out["reason"] = self.reason
        if self.probabilities is not None and classes is not None:
            top = ranked(classes, np.asarray(self.probabilities), top_k)["top"]
            out["top"] = [{"label": c, "probability": p} for c, p in top]
        return out


def ranked(classes, row: np.ndarray, top_k: int) -> dict:
    """One image's probabilities -> its label, probability, top-k and all probabilities."""
    order = np.argsort(-row, kind="stable")[:min(top_k, len(row))]
    return {"label": classes[int(order[0])], "probability": float(row[order[0]]),
            "top": [(classes[int(c)], float(row[c])) for c in order], "probabilities": [float(x) for x in row]}


def number_of(digits: list[DigitRead]) -> str:
    return "".join(d.label for d in digits)


def piece_reading(p: np.ndarray, width: int, height: int, check: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """A piece read: its probabilities, and its score (how likely it is one digit).
    Per class, the model's log probability plus ``SHAPE_PENALTY`` for this shape, plus
    ``CHECK_WEIGHT`` times the log of the piece checks' probability that the piece is
    that digit whole (``check``: their eleven probabilities). The score is the best of these;
    with the checks, the probabilities are these sums normalised (the piece checks know
    digits with a sliver of their neighbour, which the model never saw); without them, the
    model's."""
    probs, scores = piece_readings(p[None], [width], [height], None if check is None else check[None])
    return probs[0], float(scores[0])


def piece_readings(p: np.ndarray, widths, heights, checks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``piece_reading`` of N pieces at once: probabilities [N, C], widths and heights [N],
    the checks' probabilities [N, 11] or None -> probabilities [N, C], scores [N]."""
    ratio = np.asarray(widths, np.float64) / np.maximum(np.asarray(heights), 1)
    total = np.log(np.maximum(p, 1e-12))
    if p.shape[1] == len(SHAPE_PENALTY):  # a digit model (another's classes have no such shapes)
        total = total + SHAPE_PENALTY[:, np.searchsorted(ASPECT_EDGES, ratio, side="right")].T
    if checks is None:
        return p, total.max(axis=1)
    total = total + CHECK_WEIGHT * np.log(np.maximum(checks[:, :p.shape[1]], 1e-12))
    best = total.max(axis=1)
    joint = np.exp(total - best[:, None])
    return joint / joint.sum(axis=1, keepdims=True), best


def reads_digits(model) -> bool:
    """Whether a model's classes are digits, which make numbers: unless its data named them
    otherwise (a Fashion-MNIST run's ten classes are clothes: ``lite.LiteModel.class_names``;
    an image folder's sub-folders "0", "1"... are the digits)."""
    names = getattr(model, "class_names", None)
    return names is None or [str(n) for n in names] == [str(c) for c in model.classes]


def is_digit_model(model) -> bool:
    """Whether a model reads the ten digits, whose shapes and pieces the shape table and the
    piece check know."""
    return [str(c) for c in model.classes] == [str(d) for d in range(10)] and reads_digits(model)


@functools.cache
def piece_checks() -> tuple:
    """The piece checks (``scripts/piece_check.py`` trains them, ``pieces.py`` makes what
    they learn from): eleven-class models on the digit model's kind of features, classes 0-9
    a whole digit of that class, 10 anything else (part of a digit, a digit and part of its
    neighbour, two digits touching). The first normalises a piece's spreads as the digit
    model does; the second does not, and sees how wide the piece is (see ``CHECKS``)."""
    from importlib import resources

    return tuple(lite.load_run(str(resources.files("mnist_logreg.data") / name)) for name in CHECKS)


def read_and_check(model, digits: np.ndarray, weigh: bool = True) -> tuple[np.ndarray, list]:
    """Framed pieces [N, 28, 28] -> the model's probabilities, and the piece checks' together
    (their geometric mean, see ``CHECKS``; a row of None each where not ``weigh`` or the
    model is not a digit model). The first check normalises a piece as the digit model
    does (``scripts/piece_check.py`` trains it to the model's target spreads), and the
    second only leaves that step out, so the features before standardisation are made
    together (``lite.unscaled_views``): the first check's are the model's, and the second's
    cost 0.24 ms for 5 pieces, not 0.4 ms made apart."""
    checks = piece_checks() if weigh and is_digit_model(model) else ()
    if not checks:
        return np.asarray(model.predict_proba(digits), np.float64), [None] * len(digits)
    own = isinstance(model, lite.LiteModel)
    unscaled = lite.unscaled_views([model, *checks] if own else list(checks), digits)
    probs = np.asarray(model.predict_proba(digits, unscaled.pop(0)) if own else model.predict_proba(digits), np.float64)
    logs = [np.log(np.maximum(np.asarray(c.predict_proba(digits, u), np.float64), 1e-12))
            for c, u in zip(checks, unscaled)]
    return probs, np.exp(sum(logs) / len(logs))


def cuts_of(mark: _Mark) -> tuple[list[int], list[np.ndarray]]:
    """Where a wide mark may be cut: the columns (relative to the mark) and their cut paths
    (see ``seams``). The cheapest cut near every column is found, and kept where the ink it
    crosses (``crossed``) is a local minimum over the columns, the middle column of a
    plateau of them: where two digits meet, slanted or overlapping, the cut slips between
    them though no column is thin there. A mark over CUT_HEIGHT pixels high is searched on
    a copy reduced by block means (``images.block_means``), its cuts then followed at full size."""
    h, w = mark.height, mark.width
    f = -(-h // CUT_HEIGHT)
    ink = mark.ink if f == 1 else images.block_means(mark.ink, f, -(-h // f), -(-w // f))
    edge = int(math.ceil(MIN_PIECE * h))
    lo, hi = -(-edge // f), (w - edge) // f  # the reduced columns that hold the full ones
    cols = list(range(max(lo, 1), min(hi, ink.shape[1] - 1)))
    if not cols:
        return [], []
    band = int(SEAM_BAND * ink.shape[0])
    # SEAM_PIXELS pixels of paths at a time: a number as wide as a 40 MP photo needs no gigabytes.
    chunk = max(1, SEAM_PIXELS // (ink.shape[0] * (2 * band + 1)))
    paths = [p for i in range(0, len(cols), chunk) for p in seams(ink, cols[i:i + chunk], band, lo, hi)]
    cost = crossed(ink, paths)
    before, after = np.append(np.inf, cost[:-1]), np.append(cost[1:], np.inf)
    minima = np.flatnonzero((cost <= before) & (cost <= after))
    runs = np.split(minima, np.flatnonzero(np.diff(minima) > 1) + 1) if len(minima) else []
    keep = [int(run[len(run) // 2]) for run in runs]
    # A reduced column's middle, each reduced row f rows, within the columns a cut may take
    # (at full size, f = 1: the columns and paths as found).
    return ([min(max(cols[i] * f + f // 2, edge), w - edge) for i in keep],
            [np.clip(np.repeat(paths[i] * f + f // 2, f)[:h], edge, w - edge) for i in keep])


class _Mark:
    """One mark's ink (its own regions only) as a crop of the ink map."""

    def __init__(self, ink, label, group):
        x0, x1, y0, y1, _, ids = group
        self.x0, self.y0 = x0, y0
        lab = label[y0:y1 + 1, x0:x1 + 1]
        self.mine = np.isin(lab, ids)
        self.ink = np.where(self.mine, ink[y0:y1 + 1, x0:x1 + 1], 0.0)
        self.height, self.width = self.ink.shape
        # Regions narrow enough to go whole to the piece holding their centre: a slanted
        # digit that reaches a few pixels into its neighbour's columns is not cut.
        self.regions = []  # (first column, last column, centre, its pixels)
        for i in ids:
            region = lab == i
            cols = np.flatnonzero(region.any(axis=0))
            if cols.size and cols[-1] - cols[0] + 1 <= MAX_PIECE * self.height:
                self.regions.append((int(cols[0]), int(cols[-1]), (cols[0] + cols[-1]) / 2, region))

    def piece(self, a: int, b: int, left=None, right=None) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """The ink of columns [a, b), or between the cut paths ``left`` and ``right`` (a
        column a row, see ``seams``) around them, with whole regions moved to the piece of
        their centre: the crop and its box in the ink map (x0, y0, x1, y1, exclusive), or
        None if empty."""
        if left is None and right is None:
            keep = np.zeros_like(self.mine)
            keep[:, a:b] = self.mine[:, a:b]
        else:
            xs = np.arange(self.width)
            keep = self.mine & (xs >= (a if left is None else left[:, None])) & (
                xs < (b if right is None else right[:, None]))
        slack = MIN_PIECE * self.height
        for c0, c1, centre, region in self.regions:
            if c0 >= a - slack and c1 < b + slack:  # around this piece: all of it, or none
                keep[region] = a <= centre < b
        ink = np.where(keep, self.ink, 0.0)
        box = images.ink_box(keep)  # (a region's pixels all hold ink)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        return ink[y0:y1, x0:x1], (self.x0 + x0, self.y0 + y0, self.x0 + x1, self.y0 + y1)


def seams(ink: np.ndarray, cols: list[int], band: int, lo: int = 0, hi: int | None = None) -> list[np.ndarray]:
    """For each column c: the cut from top to bottom, within ``band`` columns of c and
    within columns [lo, hi], that crosses the least ink, a step sideways costing
    ``SEAM_STEP`` (a column a row). Digits that touch often overlap a little: a straight
    cut takes a piece of the neighbour."""
    h, w = ink.shape
    if not cols:
        return []
    hi = w - 1 if hi is None else hi
    offsets = np.arange(-band, band + 1)
    at = np.asarray(cols, dtype=np.intp)[:, None] + offsets  # [cuts, 2 * band + 1]: each path's columns
    inside = (at >= max(lo, 0)) & (at <= min(hi, w - 1))
    cols_in = np.clip(at, 0, w - 1)
    ink_at = np.where(inside, ink[:, cols_in], np.inf)  # [rows, cuts, columns]: each path's pixels
    beside = ink_at + SEAM_STEP  # a step sideways: its cost and the pixel beside (see below)
    cost = ink_at[0]
    came = np.zeros((h,) + at.shape, np.int8)  # 0 from straight above, 1 from the left, 2 the right
    left, right = np.full(at.shape, np.inf), np.full(at.shape, np.inf)
    for y in range(1, h):
        # A step sideways also pays for the pixel beside, in this row: the path is
        # 4-connected, and cannot slip between two diagonal pixels of a stroke.
        np.add(cost[:, :-1], beside[y, :, :-1], out=left[:, 1:])
        np.add(cost[:, 1:], beside[y, :, 1:], out=right[:, :-1])
        least = np.minimum(cost, left)
        np.minimum(least, right, out=least)
        # The first least (straight on a tie, then the left): argmin's, at a third of its cost.
        moved = cost != least
        came[y] = moved
        came[y] += moved & (left != least)
        cost = least + ink_at[y]
    # Where several end as cheaply, the one nearest the column (left first on a tie).
    near = np.argsort(np.abs(offsets), kind="stable")
    ends = near[np.argmin(cost[:, near], axis=1)]
    paths, cut, j = np.empty((len(cols), h), np.intp), np.arange(len(cols)), ends
    step = np.array([0, -1, 1])
    for y in range(h - 1, -1, -1):  # back up from the ends: every path a row at a time
        paths[:, y] = at[cut, j]
        j = j + step[came[y, cut, j]]
    return list(paths)


def crossed(ink: np.ndarray, paths: list[np.ndarray]) -> np.ndarray:
    """What each cut path costs: the ink of the pixels it runs through, and ``SEAM_STEP``
    for each column it moves sideways; added a row at a time, top to bottom (the web page
    adds them in the same order, and finds the same least ones)."""
    if not paths:
        return np.zeros(0)
    at = np.stack(paths)
    cost = ink[0, at[:, 0]].copy()
    for y in range(1, ink.shape[0]):
        cost += ink[y, at[:, y]]
        cost += SEAM_STEP * np.abs(at[:, y] - at[:, y - 1])
    return cost


def spans_of(mark: _Mark) -> tuple[list[int], list, dict[int, list[int]]]:
    """The candidate cuts of a wide mark, with its two ends (``points``: columns of the
    mark), their paths (None at the ends), and from each point the points a piece from it
    may end at: at least MIN_PIECE and at most MAX_PIECE of the mark's height wide, the
    whole mark left out."""
    cuts, paths = cuts_of(mark)
    points = [0] + cuts + [mark.width]
    last = len(points) - 1
    ends = {i: [j for j in range(i + 1, len(points))
                if MIN_PIECE * mark.height <= points[j] - points[i] <= MAX_PIECE * mark.height and (i, j) != (0, last)]
            for i in range(len(points))}
    return points, [None] + paths + [None], ends


def frame_piece(mark: _Mark, points: list[int], paths: list, i: int, j: int, cut, flat) -> tuple | None:
    """The piece of a mark between its points i and j framed as a digit: (crop, box, 28x28
    digit), or None where it holds no ink, is a fragment or is no digit."""
    got = mark.piece(points[i], points[j], paths[i], paths[j])
    if got is None:
        return None
    crop, box = got
    if crop.shape[0] < (TALL_SEVERAL if mark.width > SEVERAL * mark.height else PIECE_TALL) * mark.height:
        return None  # a fragment (a 5's flag, a 2's foot), not a digit
    try:
        return crop, box, images.frame_digit(crop, cut, flat)
    except NoDigit:
        return None


def candidate_pieces(mark: _Mark, cut, flat) -> tuple[list[int], list[tuple]]:
    """The candidate cuts of a wide mark (with its two ends) and every piece between two of
    them that may be one digit, the whole mark left out: [((i, j), crop, box, 28x28 digit)]."""
    points, paths, ends = spans_of(mark)
    out = []
    for i in range(len(points)):
        for j in ends[i]:
            got = frame_piece(mark, points, paths, i, j, cut, flat)
            if got is not None:
                out.append(((i, j), *got))
    return points, out


def best_reading(ends: dict[int, list[int]], last: int, read_from, prune: bool = True) -> list | None:
    """The best sequence of pieces from point 0 to point ``last`` (a cut mark's ends): its
    pieces, or None where no sequence reaches ``last``. ``ends[i]``: the points a piece from
    point i may end at (after i); ``read_from(i)``: the pieces from point i that hold a
    digit, [(j, piece, score)] with j in ``ends[i]``, each score at most 0. Each piece
    counts its score less SPLIT_COST.

    A best-first search over the points (A*): ``read_from`` is asked only for the points
    whose best reading so far could still end best. A piece scores at most 0, so the rest
    of the mark from point i costs at least SPLIT_COST for each of the fewest pieces that
    can span it (``fewest``): a bound that never overestimates, so the first reading to
    reach ``last`` is the best (a touching photo frames about half its pieces). Without
    ``prune``, every point in turn from the left (a dynamic programme over every piece);
    ties go to the reading found first either way (the piece from the leftmost point)."""
    # fewest[i]: the fewest pieces from point i to the end (inf: none reach it).
    fewest = [math.inf] * last + [0]
    for i in range(last - 1, -1, -1):
        fewest[i] = min((1 + fewest[j] for j in ends[i]), default=math.inf)
    # best[i]: the best reading up to point i found so far (its total and its pieces).
    best, open_, done = {0: (0.0, [])}, {0}, set()
    while open_:
        i = max(sorted(open_), key=lambda k: best[k][0] - SPLIT_COST * fewest[k] if prune else -k)
        if i == last:
            break
        open_.discard(i)
        done.add(i)
        for j, piece, score in read_from(i):
            total = best[i][0] + (score - SPLIT_COST)
            if j not in done and fewest[j] < math.inf and (j not in best or total > best[j][0]):
                best[j] = (total, best[i][1] + [piece])
                open_.add(j)
    return best[last][1] if last in best else None


def _split(mark: _Mark, model, cut, flat, line: int) -> list[tuple[np.ndarray, tuple, np.ndarray, float]]:
    """The pieces of a wide mark that read best (``best_reading``, the mark read whole
    among them unless it is over WIDEST times as wide as the line (``line``, pixels) is
    high, wider than any digit; then only where no cut makes a reading):
    [(28x28 digit, box, probabilities, piece_reading's score)]."""
    got = mark.piece(0, mark.width)

    def read_whole():
        try:
            return _read_piece(model, *got, cut, flat) if got is not None else None
        except NoDigit:
            return None

    # The mark read whole first. A piece's score is at most 0 (log probabilities and a
    # shape penalty at most 0), so k >= 2 pieces total at most -k * SPLIT_COST, and the
    # whole mark, at score - SPLIT_COST, wins (ties go to it) whenever its score is at
    # least -SPLIT_COST: then no cut needs reading (a 5-digit photo: most of its marks).
    # (The line's height, not the mark's: a flat 2, slanted, can be over WIDEST times as wide
    # as itself is high; 2 of 1,000 validation numbers set apart were then cut, "2" as "22".)
    widest = mark.width > WIDEST * line
    whole = None if widest else read_whole()
    if whole is not None and PRUNE and whole[3] >= -SPLIT_COST:
        return [whole]
    points, paths, ends = spans_of(mark)
    last = len(points) - 1

    def read_from(i: int) -> list[tuple]:  # the pieces from point i framed and read, in one batch
        framed = [(j, piece) for j in ends[i] if (i, j) != (0, last)
                  for piece in [frame_piece(mark, points, paths, i, j, cut, flat)] if piece is not None]
        read = _read_pieces(model, np.stack([p[2] for _, p in framed]), [p[1] for _, p in framed]) if framed else []
        out = [(j, r, r[3]) for (j, _), r in zip(framed, read)]
        return out + [(last, whole, whole[3])] if i == 0 and whole is not None else out

    if whole is not None:
        ends[0].append(last)
    pieces = best_reading(ends, last, read_from, PRUNE)
    if pieces is None and widest:
        whole = read_whole()
        pieces = [whole] if whole is not None else None
    if pieces is None:
        raise NoDigit(images.NOTHING_LEFT)
    return pieces


def _read_pieces(model, digits: np.ndarray, boxes: list) -> list[tuple]:
    """Framed pieces [N, 28, 28] read: [(28x28 digit, box, probabilities, piece_reading's score)]."""
    probs, checked = read_and_check(model, digits)
    probs, scores = piece_readings(probs, [b[2] - b[0] for b in boxes], [b[3] - b[1] for b in boxes],
                                   checked if isinstance(checked, np.ndarray) else None)
    return [(d, box, p, float(score)) for d, box, p, score in zip(digits, boxes, probs, scores)]


def _read_piece(model, crop: np.ndarray, box, cut, flat) -> tuple:
    """Ink framed as a digit and read: (28x28 digit, box, probabilities, piece_reading's score)."""
    return _read_pieces(model, images.frame_digit(crop, cut, flat)[None], [box])[0]


def _one_digit(model, crop: np.ndarray, box, cut, flat, weigh: bool) -> DigitRead:
    """All the ink read as one digit, with the model's own probabilities (as to_mnist and
    the drawing page read it), and, where ``weigh``, scored with the piece check, which
    weighs it against readings as several (its joint class read 1 in 100 more of MNIST-C's
    rotated digits wrong); not needed for ink no wider than a digit (0.1 ms a canvas)."""
    digit = images.frame_digit(crop, cut, flat)
    probs, checked = read_and_check(model, digit[None], weigh)
    p, check = probs[0], checked[0]
    return _digit(model, digit, box, p, piece_reading(p, box[2] - box[0], box[3] - box[1], check)[1])


def side_by_side(ink: np.ndarray, marks: list[list]) -> bool:
    """Whether the marks are several digits: ``images.several``, or two strokes alike side
    by side, narrower than tall (see ``NARROW``)."""
    if images.several(ink, marks):
        return True
    parts, height, width = images.parts_of(marks)
    return len(parts) >= 2 and width >= NARROW * height and min(p[4] for p in parts) >= BALANCE * max(
        p[4] for p in parts) and all(p[3] - p[2] + 1 >= NARROW_TALL * height for p in parts)


def fine_marks(ink: np.ndarray, whole: tuple) -> tuple[np.ndarray, list[list], int, list[list]]:
    """The ink's regions found at full size, its marks that are neither specks nor points,
    the line's height (see ``_main_marks``) and its points (``points_of``). The reader's
    regions are found on a copy reduced to
    LIGHT_SIDE a side, where the gaps between the digits of a long number close. Both in
    the ink's box ``whole``: no ink lies outside it, and regions numbered in scan order are
    numbered alike in the box."""
    x0, y0, x1, y1 = whole
    fine = np.zeros(ink.shape, np.int32)
    fine[y0:y1, x0:x1] = images.components(ink[y0:y1, x0:x1] > 0)[0]
    groups = images.marks(ink, fine, whole)
    main, line = _main_marks(groups)
    points = points_of(ink, fine, groups, main, line)
    return fine, [g for g in main if g not in points], line, points


def points_of(ink: np.ndarray, label: np.ndarray, groups: list[list], main: list[list], line: int) -> list[list]:
    """The marks among ``groups`` that are a point between two digits (see ``POINT``): a
    small low dab with a digit mark of ``main`` on either side. ``label``: the regions."""
    digits = [g for g in main if g[3] - g[2] + 1 >= PIECE_TALL * line]
    out, stroke = [], None
    for g in groups:
        x0, x1, y0, y1 = g[:4]
        left = [d for d in digits if d[1] < x0]
        right = [d for d in digits if d[0] > x1]
        if max(x1 - x0, y1 - y0) + 1 > POINT * line or not left or not right:
            continue
        a, b = max(left, key=lambda d: d[1]), min(right, key=lambda d: d[0])
        if any(h is not g and a[1] < h[0] and h[1] < b[0] for h in groups):
            continue  # not alone between its digits: dots of a line, spatter
        top, bottom = (a[2] + b[2]) / 2, (a[3] + b[3]) / 2
        if not top + POINT_LOW * (bottom - top + 1) <= (y0 + y1) / 2 <= bottom + POINT * line:
            continue
        if stroke is None:  # the number's stroke width, where a mark may be a point
            x_lo, x_hi = digits[0][0], digits[-1][1] + 1
            y_lo, y_hi = min(d[2] for d in digits), max(d[3] for d in digits) + 1
            stroke = max(1.0, images.stroke_width(ink[y_lo:y_hi, x_lo:x_hi] >= CORE))
        core = (ink[y0:y1 + 1, x0:x1 + 1] >= CORE) & np.isin(label[y0:y1 + 1, x0:x1 + 1], g[5])
        ys, xs = np.nonzero(core)
        if not xs.size:
            continue
        thin, thick = sorted((int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1))
        if thick <= ROUND * thin and xs.size >= FILL * thin * thick and xs.size >= POINT_AREA * stroke * stroke:
            out.append(g)
    return out


def _main_marks(groups: list[list]) -> tuple[list[list], int]:
    """The marks that are not specks (see ``MARK_SHARE``), and the line's height: the
    tallest of those with MARK_SHARE of the heaviest mark's ink."""
    heaviest = max(g[4] for g in groups)
    # The most ink a digit has: a mark's ink over how many digits it may hold, its width
    # over its height (a digit is about as wide as it is high, or narrower).
    digit = max(g[4] / max(1.0, (g[1] - g[0] + 1) / (g[3] - g[2] + 1)) for g in groups)
    line = max(g[3] - g[2] + 1 for g in groups if g[4] >= MARK_SHARE * heaviest)
    return [g for g in groups if g[4] >= MARK_SHARE * heaviest or (
        g[3] - g[2] + 1 >= PIECE_TALL * line and g[4] >= MARK_SHARE * digit)], line


def read_number(img, model) -> list[DigitRead]:
    """A decoded Pillow image -> its digits, left to right (one for a single digit, read
    exactly as ``images.to_mnist`` reads it). ``model``: anything with ``predict_proba``
    of uint8 [N, 28, 28] (``lite.LiteModel``). Raises ``NoDigit`` as ``to_mnist`` does
    for blank, faint and scribbled images."""
    ink, label, flat, whole = images._ink(*images.gray_levels(img, gray=False))  # boxes: the image's own pixels
    if whole is None:
        raise NoDigit(images.NOTHING_LEFT)
    cut = functools.cache(lambda: images.ink_cut(ink, whole))  # the whole ink map's level, if a crop needs it
    if not reads_digits(model):
        # Not digits (clothes, letters): one item an image, read exactly as to_mnist reads
        # it, several marks refused. Read as a number, a sandal's straps were "57": 72 of
        # Fashion-MNIST's 10,000 test images had no label, against to_mnist's 17.
        images.check_single_digit(ink, label, whole)
        return [_one_digit(model, ink[whole[1]:whole[3], whole[0]:whole[2]], whole, cut, flat, weigh=False)]
    images.check_edges(ink)

    def read(crop, box) -> DigitRead:
        return _digit(model, *_read_piece(model, crop, box, cut, flat))

    # What to_mnist refuses as several marks is a number (a mark too short for a digit, a
    # dash between them, does not make digits one), and so are two 1s written close
    # (side_by_side). Otherwise the ink is one digit, read as to_mnist reads it (the
    # drawing page, which reads one digit, then agrees with predict), unless it is wider
    # than any digit: then reading it as one digit competes with reading it as several
    # (below).
    tall = []
    if int(label.max()) >= 2:  # one region is one mark (0.7 ms saved on a canvas digit)
        main, line = _main_marks(images.marks(ink, label, whole))
        tall = [g for g in main if g[3] - g[2] + 1 >= TALL * line]
    one = None
    width, height = whole[2] - whole[0], whole[3] - whole[1]
    if not (len(tall) >= 2 and side_by_side(ink, tall)) and width <= WIDEST * height:  # (wider: no digit is)
        # The piece check only weighs one digit against several: not needed for ink no
        # wider than a digit (a canvas digit: 0.1 ms saved).
        narrow = width <= WIDE * height
        one = _one_digit(model, ink[whole[1]:whole[3], whole[0]:whole[2]], whole, cut, flat, weigh=not narrow)
        if narrow:
            return [one]
        # A reading as several holds at least one digit (the tallest mark is one), each
        # scoring at most 0 less SPLIT_COST, so at one.score + ONE_BONUS >= -SPLIT_COST none
        # can beat one digit (ties go to it), and no cut needs reading (a wide digit alone).
        if PRUNE and one.score + ONE_BONUS >= -SPLIT_COST:
            return [one]
    fine, main, line, points = fine_marks(ink, whole)
    out: list[DigitRead] = []
    for g in sorted(main + points, key=lambda g: g[0]):
        if g in points:
            out.append(DigitRead(label=".", box=(g[0], g[2], g[1] + 1, g[3] + 1), reason=A_POINT, score=0.0))
            continue
        mark = _Mark(ink, fine, g)
        if mark.height < TALL * line:
            box = (g[0], g[2], g[1] + 1, g[3] + 1)
            out.append(DigitRead(label="?", box=box, reason=NOT_A_DIGIT, score=0.0))
            continue
        if mark.width <= SPLIT_WIDE * line:
            out.append(read(*mark.piece(0, mark.width)))
            continue
        for digit, box, p, score in _split(mark, model, cut, flat, line):
            out.append(_digit(model, digit, box, p, score))
    # Ink wider than a digit that to_mnist would read as one: the reading that the model,
    # the digits' shapes and the piece check like better, one digit by ONE_BONUS.
    if one is not None and one.score + ONE_BONUS >= sum(d.score - SPLIT_COST for d in out if d.reason is None):
        return [one]
    return out


def _digit(model, digit: np.ndarray, box, p: np.ndarray, score: float) -> DigitRead:
    i = int(np.argmax(p))
    return DigitRead(label=str(model.classes[i]), box=box, probability=float(p[i]),
                     probabilities=[float(x) for x in p], digit=digit, score=score)
