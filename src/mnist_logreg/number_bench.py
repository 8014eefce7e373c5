"""How well ``predict`` reads numbers: rows of MNIST *test* digits (never training digits).

Each number is 2 to 6 test digits, each cropped to its ink, scaled by 0.85-1.15, slanted
(sheared by up to 0.2 either way), its baseline moved by up to 2 pixels, and set left to
right at MNIST's scale (digits about 20 pixels high) with a spacing class:

- ``apart``: gaps of 2 to 8 pixels between the digits' boxes;
- ``touching``: gaps from 1 pixel down to 3 pixels of overlap (the strokes may touch or cross);
- ``mixed``: each gap drawn from the whole range, 8 pixels apart to 3 of overlap (5 of its 12
  values touch or overlap: a 5-digit number has about 1.7 such pairs among its 4), as
  issue 27 describes the benchmark's spacing ("from clearly apart to touching and
  overlapping by a few pixels").

Each is presented as a clean scan (dark ink on white, at twice MNIST's scale) and as a
640x480 photo of a sheet (``robustness.sheet_photo``: uneven light, blur, noise, JPEG;
the number 40 to 70 pixels high). The table gives sequence accuracy (the whole number
right) and digit accuracy (1 - edit distance / length) by length, spacing and
presentation. Seeded: the same numbers every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .robustness import _crop, _gray, _resize, sheet_photo

SEED = 1989  # LeCun et al.'s ZIP codes
LENGTHS = (2, 3, 4, 5, 6)
SPACINGS = {"apart": (2, 8), "touching": (-3, 1), "mixed": (-3, 8)}  # (new classes last: the others' seeds stay)
PRESENTATIONS = ("scan", "photo")


def compose(digits: np.ndarray, rng: np.random.Generator, spacing: str) -> np.ndarray:
    """uint8 digits [n, 28, 28] -> one row of them: float [H, W] in [0, 1], 1 = ink."""
    lo, hi = SPACINGS[spacing]
    parts = []
    for d in digits:
        x = _crop(d.astype(np.float64) / 255)
        s = rng.uniform(0.85, 1.15)
        h, w = max(1, round(x.shape[0] * s)), max(1, round(x.shape[1] * s))
        x = _resize(x, w, h)
        slant = rng.uniform(-0.2, 0.2)
        extra = int(np.ceil(abs(slant) * h))
        sheared = np.zeros((h, w + extra))
        for r in range(h):  # row r moves right by slant * (h - r): the top leans
            shift = int(round(slant * (h - 1 - r))) + (extra if slant < 0 else 0)
            sheared[r, shift:shift + w] = x[r]
        parts.append((_crop(np.clip(sheared, 0, 1)) if sheared.max() > 0 else sheared, int(rng.integers(-2, 3)),
                      int(rng.integers(lo, hi + 1))))
    height = max(p.shape[0] + abs(b) for p, b, _ in parts) + 4
    width = sum(p.shape[1] + g for p, _, g in parts) + 8
    out = np.zeros((height + 12, width + 12))
    x0 = 6
    for p, b, gap in parts:
        top = 6 + (height - p.shape[0]) // 2 + b
        out[top:top + p.shape[0], x0:x0 + p.shape[1]] = np.maximum(out[top:top + p.shape[0], x0:x0 + p.shape[1]], p)
        x0 += p.shape[1] + gap
    return _crop(out) if out.max() > 0 else out


def present(ink: np.ndarray, how: str, rng: np.random.Generator):
    """A composed number as the Pillow image a user would give."""
    if how == "scan":
        big = _resize(np.pad(ink, 8), 2 * (ink.shape[1] + 16), 2 * (ink.shape[0] + 16))
        return _gray(1 - big)
    height = int(rng.integers(40, 71))
    width = min(600, round(ink.shape[1] * height / ink.shape[0]))
    return sheet_photo(np.clip(_resize(ink, width, height), 0, 1), rng)


def draw(digits: np.ndarray, rng: np.random.Generator, length: int, spacing: str, how: str):
    """``length`` of ``digits`` drawn with ``rng``, composed and presented as a number: their
    indices and the Pillow image."""
    pick = rng.choice(len(digits), length, replace=False)
    return pick, present(compose(digits[pick], rng, spacing), how, rng)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions, each 1."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def case_seed(length: int, spacing: str, how: str, seed: int = SEED) -> list[int]:
    return [seed, length, list(SPACINGS).index(spacing), PRESENTATIONS.index(how)]


def read_case(model, digits: np.ndarray, labels: np.ndarray, length: int, spacing: str, how: str, n: int,
              seed: int = SEED) -> dict:
    """``n`` numbers of ``length`` test digits (drawn with a seed from ``digits``), composed,
    presented and read as ``predict`` reads: sequence and digit accuracy, seconds a number."""
    from .reading.images import NoDigit
    from .reading.numbers import number_of, read_number

    rng = np.random.default_rng(case_seed(length, spacing, how, seed))
    right, digit_errors, seconds, answers = 0, 0, 0.0, []
    for _ in range(n):
        pick, img = draw(digits, rng, length, spacing, how)
        truth = "".join(str(int(labels[i])) for i in pick)
        t0 = time.perf_counter()
        try:
            read = number_of(read_number(img, model))
        except NoDigit:
            read = ""
        seconds += time.perf_counter() - t0
        right += read == truth
        digit_errors += min(length, edit_distance(read, truth))
        answers.append((truth, read))
    return {"sequence_accuracy": right / n, "digit_accuracy": 1 - digit_errors / (n * length), "n": n,
            "ms_per_number": 1000 * seconds / n, "misread": [f"{t}->{r or '-'}" for t, r in answers if t != r][:5]}


def _read_case(args) -> tuple[str, dict]:
    model, digits, labels, length, spacing, how, n, seed = args
    return f"{how}/{spacing}/{length}", read_case(model, digits, labels, length, spacing, how, n, seed)


def run_numbers(model, digits: np.ndarray, labels: np.ndarray, n: int = 100, lengths=LENGTHS,
                spacings=tuple(SPACINGS), presentations=PRESENTATIONS, workers: int = 1,
                progress: Callable[[str], None] | None = None) -> dict:
    """The table: ``n`` numbers per (presentation, spacing, length)."""
    import multiprocessing

    jobs = [(model, digits, labels, k, s, p, n, SEED) for p in presentations for s in spacings for k in lengths]
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_read_case, jobs))
    else:
        results = [_read_case(j) for j in jobs]
    rows = {}
    for name, r in results:
        rows[name] = r
        if progress:
            progress(f"{name:>16}: number {r['sequence_accuracy'] * 100:5.1f}%  digits "
                     f"{r['digit_accuracy'] * 100:5.1f}%  {r['ms_per_number']:5.1f} ms")
    return {"rows": rows, "n": n, "seed": SEED}


def format_numbers(result: dict) -> str:
    lines = ["| presentation / spacing / length | number right | digits right | ms a number |", "|---|---:|---:|---:|"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['sequence_accuracy'] * 100:.1f}% | {r['digit_accuracy'] * 100:.1f}% | "
                     f"{r['ms_per_number']:.1f} |")
    return "\n".join(lines)


def benchmark(run_dir=None, n: int = 100, workers: int = 1, progress=None) -> dict:
    """The number benchmark on MNIST's test digits with a run (``None``: the shipped model)."""
    from .data.sources import locate, read_test_split
    from .reading import lite
    from .reading.modelfile import shipped_run

    digits, labels = read_test_split(locate("mnist"))
    run = run_dir if run_dir is not None else shipped_run()
    result = run_numbers(lite.load_run(run), digits, labels, n=n, workers=workers, progress=progress)
    result["run"] = str(run)
    return result
