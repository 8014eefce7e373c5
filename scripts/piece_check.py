"""Train the piece checks that ``read_number`` ships with (``make piece-check``).

    python scripts/piece_check.py [--view moments|plain] [--rows 16000] [--out DIR]

Pieces of rows of MNIST *training* digits (``mnist_logreg.pieces``; the validation split
and the test set are never used), labelled with the digit they hold whole, or as none
(class 10), trained with the
project's ``train`` under the ``directions`` recipe (the default model's features, without
its damaged copies). ``--view moments`` (``data/piece-check``) normalises a piece's spreads
as the digit model does; ``--view plain`` (``data/piece-check-plain``) does not, and sees how
wide the piece is in its frame (``numbers.read_and_check`` weighs the two together). The
held-out pieces are made from other rows, of the same digits.
Seeded: the same pieces on any machine, and the same model where training gives the same
(as for the default model, the CPU's kernel may change the last bits).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

ROWS_SEED, HELD_OUT_SEED = 1990, 1991
VIEWS = {"moments": "src/mnist_logreg/data/piece-check", "plain": "src/mnist_logreg/data/piece-check-plain"}
CHUNKS = 8


def _pieces(digits: np.ndarray, labels: np.ndarray, rows: int, seed: int, workers: int) -> tuple[np.ndarray, ...]:
    """The pieces of ``rows`` rows, made in CHUNKS seeded parts (the same on any number of cores)."""
    from concurrent.futures import ProcessPoolExecutor

    from mnist_logreg.pieces import piece_set

    share = [rows // CHUNKS + (i < rows % CHUNKS) for i in range(CHUNKS)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(piece_set, [digits] * CHUNKS, [labels] * CHUNKS, share,
                              [[seed, i] for i in range(CHUNKS)]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def main() -> None:
    import torch

    from mnist_logreg.api import train_run
    from mnist_logreg.config import build_config
    from mnist_logreg.data import load_dataset, train_val_split
    from mnist_logreg.data.datasets import Dataset
    from mnist_logreg.pieces import NOT_ONE
    from mnist_logreg.reading import lite
    from mnist_logreg.reading.modelfile import shipped_run
    from mnist_logreg.system import cores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--view", choices=VIEWS, default="moments",
                        help="moments: the digit model's normalisation; plain: without moment normalisation")
    parser.add_argument("--rows", type=int, default=16000, help="rows of digits to cut (default 16000)")
    parser.add_argument("--out", help=f"where the model goes (default {VIEWS['moments']} or {VIEWS['plain']})")
    args = parser.parse_args()
    out = Path(args.out or VIEWS[args.view])
    mnist = load_dataset()
    train_idx, _ = train_val_split(len(mnist.train_labels), None)  # MNIST's validation digits left out
    digits, labels = (t.numpy()[train_idx.numpy()] for t in (mnist.train_images, mnist.train_labels))
    x, y = _pieces(digits, labels, args.rows, ROWS_SEED, cores())
    tx, ty = _pieces(digits, labels, args.rows // 8, HELD_OUT_SEED, cores())
    print(f"{len(y)} pieces ({np.mean(y == NOT_ONE):.1%} not one digit), {len(ty)} held out")
    data = Dataset(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(tx), torch.from_numpy(ty),
                   name="pieces", source="mnist_logreg.pieces",
                   description=f"pieces of {args.rows} rows of MNIST training digits (mnist_logreg.pieces)")
    if args.view == "moments":
        # The digit model's target spreads, not the pieces' own: a piece is then normalised as
        # the digit model normalises it, and read_number makes its features once for both
        # (numbers.read_and_check). (repr: the float32 spreads exactly.)
        y, x = (float(v) for v in lite.load_run(shipped_run()).tensors["preprocess.target_std"])
        config = build_config("directions", target_spreads=f"{y!r},{x!r}")
    else:
        config = build_config("directions", moment_norm=False)
    with tempfile.TemporaryDirectory() as tmp:
        _, _, metrics = train_run(config, Path(tmp) / "run", dataset=data)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("model.safetensors", "config.json", "metrics.json"):
            shutil.copyfile(Path(tmp) / "run" / name, out / name)
    print(f"held-out accuracy {metrics['test_accuracy']:.4f}; written to {out}")


if __name__ == "__main__":
    main()
