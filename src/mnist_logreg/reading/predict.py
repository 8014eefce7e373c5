"""Predict digits in a person's own image files with a trained run.

Works with either model: ``training.checkpoint.Checkpoint`` (PyTorch) or ``lite.LiteModel`` (NumPy, what
the ``predict`` command uses, so it never imports PyTorch). Both take uint8 arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import ImageError, NoDigit, expand_paths, read_digit


@dataclass
class Prediction:
    file: str
    label: int | None = None
    probability: float | None = None
    top: list[tuple[int, float]] | None = None
    error: str | None = None
    reason: str | None = None  # why there is no digit here (``label`` is then None)

    def as_dict(self) -> dict:
        if self.error:
            return {"file": self.file, "error": self.error}
        if self.reason:
            return {"file": self.file, "label": None, "reason": self.reason}
        return {"file": self.file, "label": self.label, "probability": self.probability,
                "top": [{"label": c, "probability": p} for c, p in self.top]}


def predict_digits(checkpoint, digits, top_k: int = 3) -> list[dict]:
    """uint8 [N, 28, 28] -> per image: label, probability, top-k, all probabilities."""
    probs = np.asarray(checkpoint.predict_proba(digits), dtype=np.float64)
    k = min(top_k, probs.shape[1])
    top_i = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [{"label": checkpoint.classes[int(i[0])], "probability": float(row[i[0]]),
             "top": [(checkpoint.classes[int(c)], float(row[c])) for c in i],
             "probabilities": [float(x) for x in row]} for i, row in zip(top_i, probs)]


def predict_files(checkpoint, paths: list[str | os.PathLike], top_k: int = 3,
                  save_preprocessed: str | os.PathLike | None = None) -> list[Prediction]:
    """One ``Prediction`` per image file: a label, or no label and the ``reason`` there is no
    digit; an unreadable file gets its ``error``, and the rest go on."""
    files = expand_paths(paths)
    digits, ok, results = [], [], []
    for path in files:
        try:
            digits.append(read_digit(path, str(path)))
            ok.append(len(results))
            results.append(Prediction(file=str(path)))
        except NoDigit as exc:
            results.append(Prediction(file=str(path), reason=exc.reason))
        except ImageError as exc:
            results.append(Prediction(file=str(path), error=str(exc)))
    if digits:
        batch = np.stack(digits)
        for idx, pred in zip(ok, predict_digits(checkpoint, batch, top_k)):
            r = results[idx]
            r.label, r.probability, r.top = pred["label"], pred["probability"], pred["top"]
        if save_preprocessed is not None:
            save_digits(save_preprocessed, [results[i].file for i in ok], batch)
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
