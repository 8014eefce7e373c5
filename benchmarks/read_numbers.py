"""How well `predict` reads numbers: rows of 2 to 6 MNIST *test* digits, set apart or
touching, as scans and as 640x480 photos (``mnist_logreg.number_bench``).

    python benchmarks/read_numbers.py [--run DIR] [--n 100] [--out numbers.json]
    python benchmarks/read_numbers.py --speed [--rounds 3] [--plain]

Prints sequence accuracy (the whole number right), digit accuracy and milliseconds a
number, by presentation, spacing and length, and writes them as JSON. Nothing is asserted:
tests/test_numbers.py runs a reduced form with floors. The process keeps its freed memory
as ``predict`` and ``serve`` do (``system.keep_freed_memory``; ``--plain``: not).

``--speed``: milliseconds a 5-digit number, 40 of the benchmark's numbers of each kind
(photos and scans, touching and apart) read in one process, the best of ``--rounds``
rounds, beside the time of a plain Python loop of 3 million steps (how fast the machine
runs today: a shared one varies), and the page faults a number takes (see ``--plain``).

(Not "numbers.py": that name would hide the standard library module NumPy imports.)
"""

from __future__ import annotations

import argparse
import json
import time

from mnist_logreg.number_bench import benchmark, format_numbers
from mnist_logreg.system import cores, keep_freed_memory


def speed(run, rounds: int) -> None:
    import resource

    import numpy as np

    from mnist_logreg.data.sources import locate, read_test_split
    from mnist_logreg.number_bench import case_seed, draw
    from mnist_logreg.reading import lite
    from mnist_logreg.reading.modelfile import shipped_run
    from mnist_logreg.reading.numbers import read_number

    digits, _ = read_test_split(locate("mnist"))
    model = lite.load_run(run if run is not None else shipped_run())
    t0 = time.perf_counter()
    for _ in range(3_000_000):
        pass
    print(f"a Python loop of 3 million steps: {time.perf_counter() - t0:.2f} s")
    for how in ("photo", "scan"):
        for spacing in ("touching", "apart"):
            rng = np.random.default_rng(case_seed(5, spacing, how))
            imgs = [draw(digits, rng, 5, spacing, how)[1] for _ in range(40)]
            times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(rounds):
                t0 = time.perf_counter()
                for img in imgs:
                    read_number(img, model)
                times.append((time.perf_counter() - t0) / len(imgs))
            faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (rounds * len(imgs))
            rounds_ms = ", ".join(f"{1000 * t:.1f}" for t in times)
            print(f"5 digits, {spacing}, {how}: {1000 * min(times):.1f} ms (rounds {rounds_ms}; "
                  f"{faults:.0f} page faults a number)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run folder (default: the model shipped with mnist-logreg)")
    parser.add_argument("--n", type=int, default=100, help="numbers a row (default 100)")
    parser.add_argument("--out", default="numbers.json", help="where to write the JSON (default numbers.json)")
    parser.add_argument("--speed", action="store_true", help="time 5-digit numbers instead (nothing written)")
    parser.add_argument("--rounds", type=int, default=3, help="--speed: rounds, the best reported (default 3)")
    parser.add_argument("--plain", action="store_true", help="leave the C library's memory settings as they are")
    args = parser.parse_args()
    if not args.plain:
        keep_freed_memory()
    if args.speed:
        speed(args.run, args.rounds)
        return
    t0 = time.perf_counter()
    result = benchmark(args.run, n=args.n, workers=cores(), progress=print)
    print(format_numbers(result))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{time.perf_counter() - t0:.0f} s; results saved to {args.out}")


if __name__ == "__main__":
    main()
