"""How fast `predict` and `serve` read an image into the 28x28 digit, against an earlier
commit's reader in the same run (and whether they answer the same).

    python benchmarks/read_speed.py [--before REV] [--rounds 7]

Three kinds of input, as people send them: a 280x280 canvas PNG (MNIST test digits
scaled up, black on white), gray and in RGBA as the drawing page's canvas sends it, and a
640x480 JPEG photo of a digit on paper with uneven light (tests/digits.py). Each reader
reads every file once per round, the two alternating so that a noisy machine slows both
alike; the best round is reported (``--cold``: each round with the reader's per-size
caches emptied first). With ``--before REV`` that commit's ``images.py`` is
loaded beside this one and every output is compared pixel for pixel. Nothing is asserted: the figures are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from serving import canvas_digits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def inputs() -> dict[str, list[bytes]]:
    from digits import photo
    from mnist_logreg.data import load_dataset

    digits = load_dataset().test_images.numpy()
    rng = np.random.default_rng(0)

    def photo_640(d):
        img = Image.open(io.BytesIO(photo(d, rng, "dark-on-light", fmt="PNG"))).resize((640, 480))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    return {"280x280 canvas PNG": canvas_digits(60)[0],
            "280x280 canvas PNG, RGBA as the page sends it": canvas_digits(60, "RGBA")[0],
            "640x480 photo JPEG": [photo_640(d) for d in digits[:15]]}


def reader_at(rev: str):
    """``images.py`` as it was at ``rev``, loaded beside today's (in ``reading/`` since the
    layout split by runtime, at the package's top before it)."""
    for where, package in (("reading/images.py", "mnist_logreg.reading"), ("images.py", "mnist_logreg")):
        proc = subprocess.run(["git", "show", f"{rev}:src/mnist_logreg/{where}"], cwd=ROOT, capture_output=True,
                              text=True)
        if proc.returncode == 0:
            path = Path(tempfile.mkdtemp()) / "images_before.py"
            path.write_text(proc.stdout)
            spec = importlib.util.spec_from_file_location(f"{package}.images_before", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
    sys.exit(f"{rev}: no src/mnist_logreg/reading/images.py or src/mnist_logreg/images.py there")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REV", help="an earlier commit whose reader to time beside this one")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cold", action="store_true",
                    help="empty the reader's per-size caches (the resize's weights) before every round, "
                         "as if every digit came in a size not seen before")
    args = ap.parse_args()
    from mnist_logreg.reading import images

    readers = {"this checkout": images}
    if args.before:
        readers[args.before] = reader_at(args.before)
    for kind, files in inputs().items():
        best = {name: float("inf") for name in readers}
        for _ in range(args.rounds):
            for name, reader in readers.items():
                if args.cold and hasattr(reader, "_cached_weights"):
                    reader._cached_weights.cache_clear()
                t0 = time.perf_counter()
                for data in files:
                    reader.read_digit(data)
                best[name] = min(best[name], (time.perf_counter() - t0) / len(files) * 1000)
        line = f"{kind}: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in best.items())
        if args.before:
            same = sum(np.array_equal(images.read_digit(d), readers[args.before].read_digit(d)) for d in files)
            line += (f" ({best[args.before] / best['this checkout']:.2f}x); identical digits: "
                     f"{same} of {len(files)}")
        print(line)


if __name__ == "__main__":
    main()
