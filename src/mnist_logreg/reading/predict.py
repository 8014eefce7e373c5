"""Predict digits in a person's own image files with a trained run.

Works with either model: ``training.checkpoint.Checkpoint`` (PyTorch) or ``lite.LiteModel`` (NumPy, what
the ``predict`` command uses, so it never imports PyTorch). Both take uint8 arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import ImageError, NoDigit, expand_paths, open_image
from .numbers import DigitRead, number_of, ranked, read_number


@dataclass
class Prediction:
    file: str
    label: int | None = None
    probability: float | None = None
    top: list[tuple[int, float]] | None = None
    error: str | None = None
    reason: str | None = None  # why there is no digit here (``label`` is then None)
    number: str | None = None  # the digits read, left to right ("?" for a mark that is not one)
    digits: list[DigitRead] | None = None  # each digit of a number (None for a single digit)
    classes: list | None = None

    def as_dict(self, top_k: int = 3) -> dict:
        if self.error:
            return {"file": self.file, "error": self.error}
        if self.reason:
            return {"file": self.file, "label": None, "number": None, "reason": self.reason}
        if self.digits is not None:
            return {"file": self.file, "label": None, "number": self.number,
                    "digits": [d.as_dict(top_k, self.classes) for d in self.digits]}
        return {"file": self.file, "label": self.label, "number": self.number, "probability": self.probability,
                "top": [{"label": c, "probability": p} for c, p in self.top]}


def predict_files(checkpoint, paths: list[str | os.PathLike], top_k: int = 3,
                  save_preprocessed: str | os.PathLike | None = None) -> list[Prediction]:
    """One ``Prediction`` per image file: a label (a number for a row of digits), or no
    label and the ``reason`` there is no digit; an unreadable file gets its ``error``, and
    the rest go on."""
    files = expand_paths(paths)
    results, names, seen = [], [], []
    for path in files:
        try:
            reads = read_number(open_image(path, str(path)), checkpoint)
        except NoDigit as exc:
            results.append(Prediction(file=str(path), reason=exc.reason))
            continue
        except ImageError as exc:
            results.append(Prediction(file=str(path), error=str(exc)))
            continue
        r = Prediction(file=str(path), number=number_of(reads), classes=list(checkpoint.classes))
        if len(reads) == 1 and reads[0].probabilities is not None:
            pred = ranked(checkpoint.classes, np.asarray(reads[0].probabilities), top_k)
            r.label, r.probability, r.top = pred["label"], pred["probability"], pred["top"]
        else:
            r.digits = reads
        results.append(r)
        stem = Path(path).stem
        for k, d in enumerate(reads):  # stem-K.png: the number's Kth digit (none for a "?")
            if d.digit is not None:
                names.append(f"{stem}.png" if len(reads) == 1 else f"{stem}-{k + 1}.png")
                seen.append(d.digit)
    if save_preprocessed is not None and seen:
        save_digits(save_preprocessed, names, seen)
    return results


def save_digits(folder: str | os.PathLike, names: list[str], digits) -> None:
    """Write the 28x28 images the model saw, as PNGs named after their source files: all of
    them or, when the disk refuses one, none (and no folder made for them)."""
    import io

    from PIL import Image

    from ..atomic import atomic_write_files

    folder = Path(folder)
    files: dict[Path, bytes] = {}
    for name, digit in zip(names, digits):
        stem = Path(name).stem
        out = f"{stem}.png"
        n = 1
        while folder / out in files:
            n += 1
            out = f"{stem}-{n}.png"
        buf = io.BytesIO()
        Image.fromarray(np.asarray(digit)).save(buf, format="PNG")
        files[folder / out] = buf.getvalue()
    atomic_write_files(files)
