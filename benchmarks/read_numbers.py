"""How well `predict` reads numbers: rows of 2 to 6 MNIST *test* digits, set apart or
touching, as scans and as 640x480 photos (``mnist_logreg.number_bench``).

    python benchmarks/read_numbers.py [--run DIR] [--n 100] [--out numbers.json]

Prints sequence accuracy (the whole number right), digit accuracy and milliseconds a
number, by presentation, spacing and length, and writes them as JSON. Nothing is asserted:
tests/test_numbers.py runs a reduced form with floors. (Not "numbers.py": that name
would hide the standard library module NumPy imports.)
"""

from __future__ import annotations

import argparse
import json
import time

from mnist_logreg.number_bench import benchmark, format_numbers
from mnist_logreg.system import cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run folder (default: the model shipped with mnist-logreg)")
    parser.add_argument("--n", type=int, default=100, help="numbers a row (default 100)")
    parser.add_argument("--out", default="numbers.json", help="where to write the JSON (default numbers.json)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = benchmark(args.run, n=args.n, workers=cores(), progress=print)
    print(format_numbers(result))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{time.perf_counter() - t0:.0f} s; results saved to {args.out}")


if __name__ == "__main__":
    main()
