"""Where an MNIST-style dataset is and what its files are, with NumPy alone.

``locate`` decides what ``--data``/``--data-dir`` (or a dataset's name) points at: the
bundled MNIST, a downloaded copy, a folder of IDX files (or the ``MNIST/raw`` folder that
torchvision leaves), a Kaggle ``.csv`` or NumPy ``.npz`` file, or a folder of images by
class. ``check_file`` holds a file to the published checksums where it claims to be
published. ``datasets.load_dataset`` builds the training ``Dataset`` (PyTorch) from these;
``read_test_split`` reads only the test split, without PyTorch (``evaluate``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import cache
from ..atomic import atomic_write_bytes
from ..errors import DataError
from . import formats
from .idx import GZIP_MAGIC, decompress, parse_idx, read_idx_bytes

log = logging.getLogger(__name__)

SPLITS = ("train", "t10k")
KINDS = ("images", "labels")


def file_stem(split: str, kind: str) -> str:
    return f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"


FILE_STEMS = [file_stem(split, kind) for split in SPLITS for kind in KINDS]


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: where to download it and how to check what we got.

    ``idx_md5`` maps a file stem to the digest of its decompressed bytes, independent of
    how it was (re)compressed: what every copy is checked against. ``gz_md5``, where a
    dataset publishes only digests of its ``.gz`` files, maps a stem to that digest:
    what a download from the dataset's own mirrors is checked against.
    """

    name: str
    mirrors: tuple[str, ...]
    attribution: str
    idx_md5: dict
    gz_md5: dict = field(default_factory=dict)
    # What each label means, where it is not the digit itself (shown by the web page).
    class_names: tuple[str, ...] | None = None


# Decompressed IDX sizes of the published files (60,000 training and 10,000 test images of
# 28x28), which MNIST and Fashion-MNIST share: a file of this size claims to be published.
PUBLISHED_SIZES = {
    "train-images-idx3-ubyte": 16 + 60000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60000,
    "t10k-images-idx3-ubyte": 16 + 10000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10000,
}

MNIST = DatasetSpec(
    name="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    attribution="MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0",
    idx_md5={
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    attribution="Fashion-MNIST by Zalando Research, MIT licence",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
    # Computed from Debian's package dataset-fashion-mnist, which ships the IDX bytes
    # recompressed (its .gz digests differ from the published ones below).
    idx_md5={
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
    gz_md5={
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    },
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


def bundled_dir() -> Path:
    """The folder of MNIST files shipped inside the package (checkout and wheel alike)."""
    return Path(str(resources.files("mnist_logreg.data") / "mnist"))


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def verify_checksum(spec: DatasetSpec, stem: str, gz_bytes: bytes | None, idx_bytes: bytes, where: str) -> None:
    """Raise ``DataError`` unless the file is the published one: by its published ``.gz``
    digest where there is one and the ``.gz`` bytes are given (a download), else by the
    digest of its decompressed bytes."""
    if gz_bytes is not None and stem in spec.gz_md5:
        covers, expected, actual = "gz", spec.gz_md5[stem], _md5(gz_bytes)
    else:
        covers, expected, actual = "idx", spec.idx_md5[stem], _md5(idx_bytes)
    if actual != expected:
        raise DataError(
            f"{where}: checksum mismatch for {spec.name} ({covers} md5 {actual}, expected {expected}); "
            "the file is corrupt or not the published one"
        )


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def _progress(total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not sys.stderr.isatty(), leave=False)


def _fetch(url: str, desc: str, timeout: float) -> bytes:
    import urllib.request  # here, where it is used: reading a run's class names (lite.load_run) needs no HTTP client

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = resp.headers.get("Content-Length")
        chunks = []
        with _progress(int(total) if total else None, desc) as bar:
            while chunk := resp.read(1 << 16):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def download(spec: DatasetSpec, folder: Path, mirrors: tuple[str, ...] | None = None, timeout: float = 30.0) -> None:
    """Download the dataset's four files into ``folder``, verified before they land."""
    import urllib.error

    mirrors = mirrors or spec.mirrors
    folder.mkdir(parents=True, exist_ok=True)
    for stem in FILE_STEMS:
        if _find_file(folder, stem) is not None:
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + stem + ".gz"
            try:
                gz = _fetch(url, stem, timeout)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            try:
                idx_bytes = decompress(gz, url)
                verify_checksum(spec, stem, gz, idx_bytes, url)
            except DataError as exc:
                errors.append(str(exc))
                continue
            atomic_write_bytes(folder / (stem + ".gz"), gz)
            log.info("downloaded %s", url)
            break
        else:
            raise DataError(
                f"cannot download {spec.name} ({errors[-1] if errors else 'no mirrors'}); "
                f"put {', '.join(s + '.gz' for s in FILE_STEMS)} into {folder} and run again"
            )


def _identify(folder: Path) -> DatasetSpec | None:
    """The known dataset whose published test labels this folder holds (then its files are checked)."""
    path = _find_file(folder, "t10k-labels-idx1-ubyte")
    try:
        digest = _md5(read_idx_bytes(path))
    except (OSError, DataError):
        return None
    return next((spec for spec in DATASETS.values() if spec.idx_md5["t10k-labels-idx1-ubyte"] == digest), None)


def folder_paths(folder: Path, stems=FILE_STEMS) -> dict[str, Path]:
    """The IDX file of each stem in ``folder`` (``.gz`` or raw); ``DataError`` naming a missing one."""
    paths = {}
    for stem in stems:
        path = _find_file(folder, stem)
        if path is None:
            raise DataError(f"{folder}: missing {stem}(.gz)")
        paths[stem] = path
    return paths


def check_file(spec: DatasetSpec | None, strict: bool, stem: str, raw: bytes, path: Path) -> tuple[np.ndarray, bool]:
    """A file's array, and whether it was checked as the published one.

    A file of the published size must match the published checksum (else ``DataError``);
    a file of another size (a subset, the user's own data) is accepted as it is.
    ``strict`` (the bundled copy, a download): every file must be the published one.
    """
    gz = raw if raw[:2] == GZIP_MAGIC else None
    idx_bytes = decompress(gz, str(path)) if gz is not None else raw
    verified = spec is not None and (strict or len(idx_bytes) == PUBLISHED_SIZES[stem])
    if verified:
        # A download is checked as published (.gz digest where that is all there is);
        # a user's copy by its content, however it was recompressed.
        verify_checksum(spec, stem, gz if strict else None, idx_bytes, str(path))
    return parse_idx(idx_bytes, str(path)), verified


@dataclass(frozen=True)
class Source:
    """What a dataset name or ``--data`` path points at (``locate``)."""
    kind: str  # "idx": a folder of the four IDX files; "file": a .csv or .npz; "images": a folder by class
    path: Path
    spec: DatasetSpec | None = None  # the published dataset an "idx" folder claims to be
    strict: bool = False  # every file must be the published one (the bundled copy, a download)
    torchvision: bool = False  # an "idx" folder found as torchvision's MNIST/raw


def locate(name: str = "mnist", data_dir=None, allow_download: bool = True, mirrors=None) -> Source:
    """Where the data is (see ``datasets``' docstring for the order), downloading a
    published dataset that is nowhere here yet."""
    if data_dir is not None and str(data_dir) in DATASETS and not Path(data_dir).exists():
        name, data_dir = str(data_dir), None  # --data mnist: the dataset of that name
    spec = DATASETS.get(name)
    if spec is None:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)} or give --data-dir")
    if data_dir is not None:
        folder = Path(data_dir)
        if folder.is_file():
            if folder.suffix.lower() not in (".csv", ".npz"):
                raise DataError(f"--data {folder}: not a format we read (a folder of IDX files, torchvision's "
                                "folder, a Kaggle .csv or a NumPy .npz)")
            return Source("file", folder)
        if folder.exists() and not folder.is_dir():
            raise DataError(f"--data {folder}: not a file or a folder")
        present = [s for s in FILE_STEMS if folder.is_dir() and _find_file(folder, s) is not None]
        raw = formats.torchvision_raw(folder) if folder.is_dir() and not present else None
        if raw is not None and all(_find_file(raw, s) for s in FILE_STEMS):
            return Source("idx", raw, _identify(raw), torchvision=True)
        if folder.is_dir() and not present and raw is None and formats.image_classes(folder):
            return Source("images", folder)
        if len(present) == len(FILE_STEMS):
            # A user's folder may hold any MNIST-format dataset, or part of a known one:
            # check what claims to be a published file, accept the rest (``check_file``).
            return Source("idx", folder, _identify(folder))
        if present:
            missing = sorted(set(FILE_STEMS) - set(present))
            raise DataError(f"--data-dir {folder}: missing {', '.join(m + '(.gz)' for m in missing)}")
    elif spec is MNIST:
        return Source("idx", bundled_dir(), MNIST, strict=True)
    else:
        folder = cache.cache_dir() / spec.name
        if folder.is_dir() and all(_find_file(folder, s) for s in FILE_STEMS):
            return Source("idx", folder, spec, strict=True)
    if not allow_download:
        raise DataError(f"{folder}: no {spec.name} files here and downloading is disabled")
    download(spec, folder, mirrors)
    return Source("idx", folder, spec, strict=True)


class Arrays(NamedTuple):
    """What a "file" or "images" source holds, as NumPy arrays (``read_arrays``)."""
    what: str  # the format, as the data line names it
    images: np.ndarray
    labels: np.ndarray
    test: tuple[np.ndarray, np.ndarray] | None  # its own test split, where it has one
    summary: str | None = None  # what was read, where there is more to say than a count
    classes: list[str] | None = None  # the classes' names (an image folder's sub-folders)
    skipped: tuple[str, ...] = ()  # files that were not read, each with why


def read_arrays(source: Source) -> Arrays:
    """A "file" or "images" source's arrays."""
    if source.kind == "images":
        images, labels, classes, summary, skipped = formats.read_image_folder(source.path)
        return Arrays("image folder", images, labels, None, summary, classes, tuple(skipped))
    if source.path.suffix.lower() == ".csv":
        return Arrays("Kaggle CSV", *formats.read_kaggle_csv(source.path), None)
    arrays = formats.read_npz(source.path)
    test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    return Arrays("NumPy arrays", arrays["x_train"], arrays["y_train"], test)


def read_test_split(source: Source) -> tuple[np.ndarray, np.ndarray]:
    """The test images (uint8 [N, H, W]) and labels (int64) of a source, with NumPy alone:
    the same split ``datasets.load_dataset`` gives (a held-out twelfth where the data has
    no test split), the same checks, nothing of the training split kept."""
    if source.kind == "idx":
        stems = [file_stem("t10k", kind) for kind in KINDS]
        images, labels = (check_file(source.spec, source.strict, stem, read_file(path), path)[0]
                          for stem, path in folder_paths(source.path, stems).items())
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or len(labels) == 0:
            raise DataError(f"{source.path}: test images {images.shape} and labels {labels.shape} do not match")
        return images, labels.astype(np.int64)
    images, labels, test = read_arrays(source)[1:4]
    if test is None:
        _, _, *test = formats.holdout(images, labels)
    return np.ascontiguousarray(test[0]), np.asarray(test[1], dtype=np.int64)
