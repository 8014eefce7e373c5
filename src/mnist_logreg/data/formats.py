"""Training data in the formats people hold, beside MNIST's IDX files.

``--data PATH`` (``load_dataset``'s ``data_dir``) is recognised by what it is:

- a ``.csv`` file: Kaggle's "Digit Recognizer" ``train.csv`` (a ``label`` column, then
  ``pixel0`` ... ``pixelN`` for a square image, values 0-255, one image a row);
- a ``.npz`` file: NumPy arrays as Keras' ``mnist.load_data()`` returns them, saved with
  ``np.savez`` (``x_train``, ``y_train``, and ``x_test``, ``y_test`` where there is a test
  split);
- a folder holding ``MNIST/raw`` (or ``FashionMNIST/raw``): what
  ``torchvision.datasets.MNIST(root=...)`` leaves behind, MNIST's own IDX files (read by
  ``datasets.py``, checksums and all);
- a folder of image files, one sub-folder per class (``digits/3/*.png``: the layout of
  torchvision's ``ImageFolder`` and Keras' ``image_dataset_from_directory``). Each image
  goes through the reading path of ``predict`` (``images.read_digit``), so a person's
  photos become training digits; files that cannot be read, or hold no digit, are listed
  and skipped. Classes are the folder names: integers are the labels themselves (``3/``
  is class 3), other names are numbered in sorted order and kept as the class names.

Where there is no test split, 1/12 of the images (stratified by class, seeded) are held
out for it, and the one-line description (``Dataset.provenance``) says so. A malformed
file is one line naming the file and the row or column.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError

# Without a test split, this share of the images (per class) is held out for it: the same
# share as the validation split's default (5,000 of MNIST's 60,000).
TEST_FRACTION = 1 / 12
HOLDOUT_SEED = 0
TORCHVISION_FOLDERS = ("MNIST", "FashionMNIST", "KMNIST", "EMNIST")


def torchvision_raw(folder: Path) -> Path | None:
    """The ``<root>/<Name>/raw`` folder torchvision made under ``folder`` (or ``folder``
    itself being ``<Name>`` or its ``raw``), if there is one."""
    for candidate in [folder / name / "raw" for name in TORCHVISION_FOLDERS] + [folder / "raw"]:
        if candidate.is_dir():
            return candidate
    return None


def holdout(images: np.ndarray, labels: np.ndarray, seed: int = HOLDOUT_SEED, fraction: float = TEST_FRACTION):
    """(train images, train labels, test images, test labels): ``fraction`` of each class
    held out, chosen by a seeded permutation (the same split every time)."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        test.append(rng.permutation(members)[:round(len(members) * fraction)])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    if test.size == 0 or train.size == 0:
        raise DataError(f"{len(labels)} labelled images are too few to hold out a test split")
    return images[train], labels[train], images[test], labels[test]


def _square(n_pixels: int, where: str) -> int:
    side = int(round(n_pixels ** 0.5))
    if side * side != n_pixels or side < 2:
        raise DataError(f"{where}: {n_pixels} pixel columns do not make a square image (784 for 28x28)")
    return side


def read_kaggle_csv(path: Path, labelled: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Kaggle's Digit Recognizer CSV -> (uint8 images [N, S, S], int64 labels [N] or None).

    ``labelled``: train.csv, whose first column is ``label``; otherwise test.csv's shape
    (``pixel0`` ... only; a ``label`` column, if there is one, is read and returned)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{path}: empty file")
    header = [h.strip() for h in lines[0].split(",")]
    has_label = header[0] == "label"
    if labelled and "label" not in header:
        raise DataError(f"{path}: no 'label' column (a Kaggle test.csv has none: predict reads it, train cannot)")
    if "label" in header and not has_label:
        raise DataError(f"{path}: the 'label' column must come first (column 1 is {header[0]!r})")
    first = int(has_label)
    for i, name in enumerate(header[first:]):
        if name != f"pixel{i}":
            raise DataError(f"{path}: column {i + first + 1} is {name!r}, expected 'pixel{i}' (missing column?)")
    width = len(header)
    side = _square(width - first, str(path))
    rows = [ln for ln in lines[1:] if ln.strip()]
    if not rows:
        raise DataError(f"{path}: a header and no images")
    # In blocks of rows: the byte-wise parse makes temporaries of 8 bytes a character.
    blocks = [_unsigned_ints("\n".join(rows[i:i + CSV_BLOCK]), len(rows[i:i + CSV_BLOCK]) * width)
              for i in range(0, len(rows), CSV_BLOCK)]
    if all(b is not None for b in blocks):
        table = np.concatenate(blocks).reshape(len(rows), width)
        if table[:, first:].max(initial=0) <= 255:  # else the careful reading below names the pixel
            labels = table[:, 0].astype(np.int64) if has_label else None
            return table[:, first:].astype(np.uint8).reshape(-1, side, side), labels
    try:
        values = np.array(",".join(rows).split(","), dtype=np.float64)
    except ValueError:
        for n, ln in enumerate(lines[1:], start=2):
            for j, v in enumerate(ln.split(",")):
                try:
                    float(v)
                except ValueError:
                    raise DataError(f"{path}: row {n}, column {j + 1} ({header[j] if j < width else '?'}): "
                                    f"{v.strip()!r} is not a number") from None
        raise
    if values.size != len(rows) * width:
        for n, ln in enumerate(lines[1:], start=2):
            if ln.strip() and ln.count(",") + 1 != width:
                raise DataError(f"{path}: row {n} has {ln.count(',') + 1} values, the header {width}")
    table = values.reshape(len(rows), width)
    for column, hi in ((slice(first, None), 255), (slice(0, first), None)):  # pixels 0-255, labels >= 0
        part = table[:, column]
        wrong = (part != np.round(part)) | (part < 0) | ((part > hi) if hi is not None else False)
        if wrong.any():
            r, c = np.argwhere(wrong)[0]
            c += column.start
            limit = "an integer from 0 to 255" if hi is not None else "an integer >= 0"
            raise DataError(f"{path}: row {r + 2}, column {c + 1} ({header[c]}): {table[r, c]:g} is not {limit}")
    images = table[:, first:].astype(np.uint8).reshape(-1, side, side)
    return images, table[:, 0].astype(np.int64) if has_label else None


CSV_BLOCK = 1024


def _unsigned_ints(text: str, count: int) -> np.ndarray | None:
    """``count`` comma- or newline-separated unsigned integers, parsed over the bytes at
    once (Kaggle's 28,000-row test.csv in a second, not 16 s and 700 MB through Python's
    floats); None where the text holds anything else (a sign, a point, an empty field, a
    wrong count), for the careful reader to name the row and column."""
    raw = np.frombuffer(text.replace("\r", "").encode("ascii", "replace"), dtype=np.uint8)
    sep = (raw == ord(",")) | (raw == ord("\n"))
    digit = (raw >= ord("0")) & (raw <= ord("9"))
    if not (sep | digit).all() or np.count_nonzero(sep) + 1 != count:
        return None
    bounds = np.flatnonzero(sep)
    starts, ends = np.concatenate([[0], bounds + 1]), np.concatenate([bounds, [raw.size]])
    lengths = ends - starts
    if lengths.min(initial=1) < 1 or lengths.max(initial=0) > 9:
        return None  # an empty field, or a number too long to be a pixel or a label
    token = np.cumsum(sep)[digit]  # which number each digit belongs to
    place = np.repeat(ends, lengths) - np.flatnonzero(digit) - 1  # its power of ten
    return np.bincount(token, weights=(raw[digit] - ord("0")) * 10.0 ** place, minlength=count).astype(np.int32)


def submission_csv(labels) -> bytes:
    """Kaggle's submission: ``ImageId,Label``, ids from 1, one row per image of test.csv."""
    return ("ImageId,Label\n" + "".join(f"{i},{y}\n" for i, y in enumerate(labels, start=1))).encode()


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """``np.savez`` arrays: x_train, y_train (required), x_test, y_test (both or neither)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a NumPy .npz file ({exc})") from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise DataError(f"{path}: no {' or '.join(missing)} array (found: {', '.join(sorted(arrays)) or 'none'})")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: x_test and y_test come together (found only one)")
    for name in [k for k in ("x_train", "x_test") if k in arrays]:
        x = arrays[name]
        if x.ndim != 3:
            raise DataError(f"{path}: {name} must be images [N, H, W], got shape {x.shape}")
        if x.dtype != np.uint8:
            if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all() or x.min() < 0 or x.max() > 255 \
                    or (x != np.round(x)).any():
                raise DataError(f"{path}: {name} must hold pixel values 0-255 (uint8), got {x.dtype}")
            arrays[name] = x.astype(np.uint8)
    for name in [k for k in ("y_train", "y_test") if k in arrays]:
        y = arrays[name]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: {name} must be integer labels [N], got {y.dtype} of shape {y.shape}")
        if y.size and y.min() < 0:
            raise DataError(f"{path}: {name} holds a negative label ({y.min()})")
        arrays[name] = y.astype(np.int64)
    return arrays


def _sub_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _label_name(name: str) -> bool:
    """Whether a folder's name is a class number (the label itself, as IDX stores them)."""
    return name.isdigit() and int(name) < 256


def image_classes(folder: Path) -> list[Path] | None:
    """The class sub-folders of an image folder (those holding image files), or None when
    ``folder`` is not laid out that way."""
    from ..reading.images import expand_paths

    subs = _sub_folders(folder)
    return subs if any(expand_paths([p]) for p in subs) else None


def read_image_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None, str, list[str]]:
    """(uint8 digits [N, 28, 28], int64 labels [N], the class names (None where the folder
    names are the labels), a summary, and the files skipped, each with why). Every class
    folder must give at least one digit."""
    from ..reading.images import ImageError, NoDigit, expand_paths, read_digit

    subs = image_classes(folder)
    if not subs or len(subs) < 2:
        raise DataError(f"{folder}: an image folder needs a sub-folder of images per class, at least two classes")
    names = [p.name for p in subs]
    numeric = all(map(_label_name, names))
    digits, labels, skipped = [], [], []
    for index, sub in enumerate(subs):
        files = expand_paths([sub])
        before = len(digits)
        for f in files:
            try:
                digits.append(read_digit(f))
                labels.append(int(sub.name) if numeric else index)
            except NoDigit as exc:
                skipped.append(f"{f}: no digit: {exc.reason}")
            except ImageError as exc:
                skipped.append(str(exc))
        if len(digits) == before:
            raise DataError(f"{sub}: no readable digit in this class folder ({len(files)} image files)")
    summary = f"{len(names)} classes, {len(digits):,} images" + (f" ({len(skipped)} skipped)" if skipped else "")
    return np.stack(digits), np.array(labels, dtype=np.int64), None if numeric else names, summary, skipped


def read_collected(folder: Path, image_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A person's own digits for ``--add``: a sub-folder per (integer) label of images.
    Images of the data's own shape (what ``serve --collect`` saves: the digit as the model
    saw it) are taken as they are; any other image goes through ``predict``'s reading path."""
    from ..reading.images import ImageError, NoDigit, expand_paths, open_image, read_digit

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--add {folder}: no such folder")
    digits, labels = [], []
    for sub in _sub_folders(folder):
        if not _label_name(sub.name):
            raise DataError(f"--add {sub}: a label folder must be named by its class number (0, 1, ...)")
        for f in expand_paths([sub]):
            try:
                img = open_image(f, str(f))
                opaque = img.mode not in ("RGBA", "LA") or img.getchannel("A").getextrema()[0] == 255
                if img.size[::-1] == tuple(image_shape) and img.mode in ("L", "P", "RGB", "RGBA", "LA") and opaque:
                    digits.append(np.asarray(img.convert("L"), dtype=np.uint8))  # the page's PNGs are RGBA
                else:
                    digits.append(read_digit(f))
            except (NoDigit, ImageError, OSError) as exc:
                raise DataError(f"--add {f}: {getattr(exc, 'reason', None) or exc}") from None
            labels.append(int(sub.name))
    if not digits:
        raise DataError(f"--add {folder}: no digits here (a sub-folder of images per label, as serve --collect "
                        "writes)")
    return np.stack(digits), np.array(labels, dtype=np.int64)
