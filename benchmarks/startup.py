"""How long the CLI makes a person wait, as ratios to ``python -c "import torch"`` in the same run.

    python benchmarks/startup.py [--rounds 5] [--before REV]

Each command runs as a user runs it (a fresh process, wall clock), in rounds that
alternate the commands so a noisy shared machine slows them all alike; the median of each
is reported, and its ratio to the median of ``import torch``. Commands:

- ``mnist-logreg --help``
- the default ``train``, second run (cache warm), and first run (cache cold: a fresh cache
  folder each round)
- ``train --preset moment-normalized`` without any cache: the recipe the default trained
  before it chose its preprocessing on the data
- with ``--before REV``: the default ``train`` of that earlier commit (checked out into a
  temporary git worktree, with this checkout's compiled C kernel), as it ran before the
  cache and the lazy imports
- ``predict`` of one image

Nothing is asserted: the figures are printed (and saved with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", help="also save the figures as JSON here")
    parser.add_argument("--before", metavar="REV", help="also time the default train of this git revision")
    args = parser.parse_args()

    py = sys.executable
    cli = [py, "-m", "mnist_logreg"]
    work = Path(tempfile.mkdtemp(prefix="mnist-logreg-startup-"))
    warm_cache = work / "warm-cache"
    base = dict(os.environ, MNIST_LOGREG_CACHE=str(warm_cache))
    no_cache = dict(base, MNIST_LOGREG_NO_CACHE="1")

    # One trained run and one digit image to predict on; this also warms the cache.
    run_dir = work / "run"
    subprocess.run([*cli, "train", "--out", str(run_dir)], env=base, check=True, capture_output=True)
    digit = work / "digit.png"
    subprocess.run([py, "-c", "import sys; from PIL import Image; from mnist_logreg import load_dataset; "
                    "Image.fromarray(255 - load_dataset().test_images[0].numpy()).save(sys.argv[1])", str(digit)],
                   env=base, check=True)

    def cold_env() -> dict:
        return dict(base, MNIST_LOGREG_CACHE=tempfile.mkdtemp(dir=work, prefix="cold-"))

    before = {}
    if args.before:
        tree = work / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.before], check=True,
                       capture_output=True)
        source = next((tree / "src").rglob("_kernels.c")).parent  # where that commit keeps the kernel
        for kernel in (ROOT / "src" / "mnist_logreg" / "training").glob("_kernels*.so"):
            shutil.copy(kernel, source)
        old_env = dict(no_cache, PYTHONPATH=str(tree / "src"))
        before[f"train (default) at {args.before}"] = ([*cli, "train", "--out", str(work / "old")], lambda: old_env)

    commands = {
        "import torch": ([py, "-c", "import torch"], lambda: base),
        "mnist-logreg --help": ([*cli, "--help"], lambda: base),
        "train (default, cache warm)": ([*cli, "train", "--out", str(work / "warm")], lambda: base),
        "train (default, cache cold)": ([*cli, "train", "--out", str(work / "cold")], cold_env),
        "train --preset moment-normalized, no cache":
            ([*cli, "train", "--preset", "moment-normalized", "--out", str(work / "before")], lambda: no_cache),
        "predict (one image)": ([*cli, "predict", "--run", str(run_dir), str(digit)], lambda: base),
        **before,
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for r in range(args.rounds):
            for name, (cmd, make_env) in commands.items():
                times[name].append(timed(cmd, make_env()))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        if args.before:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "before")],
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    torch_s = medians["import torch"]
    width = max(map(len, commands))
    print(f"{'command':<{width}}  {'median s':>8}  {'x import torch':>14}  runs (s)")
    for name, ts in times.items():
        print(f"{name:<{width}}  {medians[name]:8.2f}  {medians[name] / torch_s:13.2f}x  "
              + " ".join(f"{t:.2f}" for t in ts))
    for name in before:
        print(f"default train, cache cold, against {name}: "
              f"{medians['train (default, cache cold)'] / medians[name]:.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps({"rounds": times, "medians": medians}, indent=2) + "\n")


if __name__ == "__main__":
    main()
