"""Finding, verifying and (as a fallback) downloading MNIST-style datasets.

Resolution order for ``load_dataset``:

1. ``data_dir`` given and holding the four IDX files (``.gz`` or raw): use them.
   Any MNIST-format dataset works; known ones are also checksum-verified. The same for
   the ``MNIST/raw`` folder torchvision leaves under its root; a Kaggle ``.csv`` or a
   NumPy ``.npz`` file is read by ``formats.py``.
2. No ``data_dir`` and the dataset is MNIST: the copy bundled inside this package.
3. Otherwise download from the dataset's mirrors into ``data_dir`` (or the cache
   folder), verifying checksums, with a progress bar on a terminal.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

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


@dataclass
class Dataset:
    """MNIST-style data as uint8 tensors: images [N, H, W], labels [N] (int64)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    name: str = "mnist"
    source: str = ""
    # Which files were checked against a published dataset's checksums, and which were
    # taken as the user's own data (see ``_load_folder``).
    verified: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    # What a file in another format held (``formats.py``), said instead of the checksums.
    description: str = ""
    # The classes' names where the data named them (an image folder's sub-folders).
    class_names: list[str] | None = None
    # Files of an image folder that were not read, each with why.
    skipped: tuple[str, ...] = ()
    # The last n_extra training images are a person's own (--add): always trained on,
    # never part of the validation split (which stays that of the data without them).
    n_extra: int = 0

    @property
    def provenance(self) -> str:
        """One line on what was checked: the whole published dataset, part of it, or nothing."""
        if self.description:
            return self.description
        if not self.unverified:
            return f"{self.name}: every file matches the published checksums"
        if not self.verified:
            return f"{self.source}: not a published dataset we know; used as given"
        return (f"{self.name}: {', '.join(self.verified)} match the published checksums; "
                f"{', '.join(self.unverified)} differ in size from the published files, so they were taken as "
                f"your own data ({self.train_images.shape[0]:,} training images)")

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def n_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1

    @functools.cached_property
    def train_digest(self) -> str:
        """A digest of the training images (what preprocessing caches are keyed by); ~50 ms for MNIST."""
        return hashlib.blake2b(self.train_images.contiguous().numpy().data, digest_size=20).hexdigest()


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


def _load_folder(folder: Path, spec: DatasetSpec | None, strict: bool = False) -> Dataset:
    """The four files of ``folder`` as a ``Dataset``, checked against ``spec`` where they claim to be it.

    A file of the published size must match the published checksum (else ``DataError``);
    a file of another size (a subset, the user's own data) is accepted as it is, and the
    ``Dataset`` says which was which. ``strict`` (the bundled copy, a download): every file
    must be the published one. The parsed result is cached on disk by the digests of the
    files' bytes, so a second load skips the gunzip and the checksums (``cache.py``).
    """
    paths = {}
    for stem in FILE_STEMS:
        path = _find_file(folder, stem)
        if path is None:
            raise DataError(f"{folder}: missing {stem}(.gz)")
        paths[stem] = path
    raw = {stem: _read(path) for stem, path in paths.items()}
    key = {"what": "dataset", "spec": spec.name if spec else None, "strict": strict,
           "files": {stem: hashlib.blake2b(data, digest_size=20).hexdigest() for stem, data in raw.items()}}

    def build() -> dict:
        entry: dict = {"verified": [], "unverified": []}
        for stem, path in paths.items():
            gz = raw[stem] if raw[stem][:2] == GZIP_MAGIC else None
            idx_bytes = decompress(gz, str(path)) if gz is not None else raw[stem]
            if spec is not None and (strict or len(idx_bytes) == PUBLISHED_SIZES[stem]):
                # A download is checked as published (.gz digest where that is all there is);
                # a user's copy by its content, however it was recompressed.
                verify_checksum(spec, stem, gz if strict else None, idx_bytes, str(path))
                entry["verified"].append(stem)
            else:
                entry["unverified"].append(stem)
            entry[stem] = parse_idx(idx_bytes, str(path))
        return entry

    entry = cache.cached(key, build)
    tensors = {(split, kind): entry[file_stem(split, kind)] for split in SPLITS for kind in KINDS}
    dataset = make_dataset(tensors, name=spec.name if spec else folder.name, source=str(folder))
    dataset.verified = tuple(s.split("-idx")[0] for s in entry["verified"])
    dataset.unverified = tuple(s.split("-idx")[0] for s in entry["unverified"])
    return dataset


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def make_dataset(tensors: dict, name: str, source: str) -> Dataset:
    """Validate the four arrays against each other and build a ``Dataset``."""
    for split in SPLITS:
        images, labels = tensors[(split, "images")], tensors[(split, "labels")]
        where = f"{source}: {split}"
        if images.dim() != 3:
            raise DataError(f"{where} images must be 3-D (N, H, W), got shape {tuple(images.shape)}")
        if labels.dim() != 1:
            raise DataError(f"{where} labels must be 1-D, got shape {tuple(labels.shape)}")
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{where}: {images.shape[0]} images but {labels.shape[0]} labels")
        if images.shape[0] == 0:
            raise DataError(f"{where}: no images")
    if tensors[("train", "images")].shape[1:] != tensors[("t10k", "images")].shape[1:]:
        raise DataError(
            f"{source}: train images are {tuple(tensors[('train', 'images')].shape[1:])} "
            f"but test images are {tuple(tensors[('t10k', 'images')].shape[1:])}"
        )
    n_classes = int(tensors[("train", "labels")].max()) + 1
    if n_classes < 2:
        raise DataError(f"{source}: the training labels hold fewer than two classes")
    test_max = int(tensors[("t10k", "labels")].max())
    if test_max >= n_classes:
        raise DataError(f"{source}: test label {test_max} is out of range (training labels are 0..{n_classes - 1})")
    return Dataset(
        train_images=tensors[("train", "images")],
        train_labels=tensors[("train", "labels")].long(),
        test_images=tensors[("t10k", "images")],
        test_labels=tensors[("t10k", "labels")].long(),
        name=name,
        source=source,
    )


def _progress(total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not sys.stderr.isatty(), leave=False)


def _fetch(url: str, desc: str, timeout: float) -> bytes:
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


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    mirrors: tuple[str, ...] | None = None,
) -> Dataset:
    """Load an MNIST-style dataset as uint8 tensors (see the module docstring)."""
    if data_dir is not None and str(data_dir) in DATASETS and not Path(data_dir).exists():
        name, data_dir = str(data_dir), None  # --data mnist: the dataset of that name
    spec = DATASETS.get(name)
    if spec is None:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)} or give --data-dir")
    if data_dir is not None:
        folder = Path(data_dir)
        if folder.is_file():
            return _load_file(folder)
        if folder.exists() and not folder.is_dir():
            raise DataError(f"--data {folder}: not a file or a folder")
        present = [s for s in FILE_STEMS if folder.is_dir() and _find_file(folder, s) is not None]
        raw = formats.torchvision_raw(folder) if folder.is_dir() and not present else None
        if raw is not None and all(_find_file(raw, s) for s in FILE_STEMS):
            dataset = _load_folder(raw, _identify(raw))
            dataset.description = f"torchvision's folder {raw}: {dataset.provenance}"
            return dataset
        if folder.is_dir() and not present and raw is None and formats.image_classes(folder):
            images, labels, classes, summary, skipped = formats.read_image_folder(folder)
            dataset = _from_arrays(folder, "image folder", images, labels, None, summary, classes)
            dataset.skipped = tuple(skipped)
            return dataset
        if len(present) == len(FILE_STEMS):
            # A user's folder may hold any MNIST-format dataset, or part of a known one:
            # check what claims to be a published file, accept the rest (``_load_folder``).
            return _load_folder(folder, _identify(folder))
        if present:
            missing = sorted(set(FILE_STEMS) - set(present))
            raise DataError(f"--data-dir {folder}: missing {', '.join(m + '(.gz)' for m in missing)}")
    elif spec is MNIST:
        return _load_folder(bundled_dir(), MNIST, strict=True)
    else:
        folder = cache.cache_dir() / spec.name
        if folder.is_dir() and all(_find_file(folder, s) for s in FILE_STEMS):
            return _load_folder(folder, spec, strict=True)
    if not allow_download:
        raise DataError(f"{folder}: no {spec.name} files here and downloading is disabled")
    download(spec, folder, mirrors)
    return _load_folder(folder, spec, strict=True)


def _load_file(path: Path) -> Dataset:
    """A dataset in one file: Kaggle's CSV or NumPy's .npz (``formats.py``)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        images, labels = formats.read_kaggle_csv(path)
        what, test = "Kaggle CSV", None
    elif suffix == ".npz":
        arrays = formats.read_npz(path)
        images, labels = arrays["x_train"], arrays["y_train"]
        what = "NumPy arrays"
        test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    else:
        raise DataError(f"--data {path}: not a format we read (a folder of IDX files, torchvision's folder, "
                        "a Kaggle .csv or a NumPy .npz)")
    return _from_arrays(path, what, images, labels, test)


def _from_arrays(path: Path, what: str, images, labels, test, summary: str | None = None,
                 class_names: list[str] | None = None) -> Dataset:
    """A ``Dataset`` from NumPy arrays, a test split held out where there is none."""
    if len(images) != len(labels):
        raise DataError(f"{path}: {len(images)} training images but {len(labels)} labels")
    n = len(images)
    if test is None:
        images, labels, *test = formats.holdout(images, labels)
        split = f"no test split: 1/12 held out for test ({len(test[1]):,} images)"
    else:
        split = f"{len(test[1]):,} test images"
    tensors = {("train", "images"): torch.from_numpy(np.ascontiguousarray(images)),
               ("train", "labels"): torch.from_numpy(labels),
               ("t10k", "images"): torch.from_numpy(np.ascontiguousarray(test[0])),
               ("t10k", "labels"): torch.from_numpy(test[1])}
    dataset = make_dataset(tensors, name=path.stem, source=str(path))
    dataset.description = f"{what} {path}, {summary or f'{n:,} labelled images'}, {split}"
    dataset.class_names = class_names
    return dataset


def with_added(dataset: Dataset, images: torch.Tensor, labels: torch.Tensor, copies: int) -> Dataset:
    """``dataset`` with ``copies`` copies of a person's own digits after its training images."""
    if tuple(images.shape[1:]) != dataset.image_shape:
        raise DataError(f"--add: digits of {tuple(images.shape[1:])} pixels, the data's are {dataset.image_shape}")
    if int(labels.max()) >= dataset.n_classes:
        raise DataError(f"--add: label {int(labels.max())} is not one of the data's classes "
                        f"(0..{dataset.n_classes - 1})")
    extra_images, extra_labels = images.repeat(copies, 1, 1), labels.long().repeat(copies)
    return dataclasses.replace(
        dataset, train_images=torch.cat([dataset.train_images, extra_images]),
        train_labels=torch.cat([dataset.train_labels, extra_labels]), n_extra=dataset.n_extra + len(extra_labels),
        description=f"{dataset.provenance}; plus {len(labels):,} of your own digits x {copies}")


def _identify(folder: Path) -> DatasetSpec | None:
    """The known dataset whose published test labels this folder holds (then its files are checked)."""
    path = _find_file(folder, "t10k-labels-idx1-ubyte")
    try:
        digest = _md5(read_idx_bytes(path))
    except (OSError, DataError):
        return None
    return next((spec for spec in DATASETS.values() if spec.idx_md5["t10k-labels-idx1-ubyte"] == digest), None)


# The validation split by default: MNIST's 5,000 of 60,000, as a fraction for other sizes, with
# a floor so a small dataset still ranks candidates on enough images (and at most half).
VAL_FRACTION = 1 / 12
VAL_FLOOR = 200


def default_val_size(n: int) -> int:
    """Validation images held out of ``n`` training images when ``--val-size`` is not given."""
    return min(max(round(n * VAL_FRACTION), VAL_FLOOR), n // 2)


def train_val_split(n: int, val_size: int | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a deterministic train/validation split of ``n`` training samples.

    The split depends only on ``n``, ``val_size`` (``None``: ``default_val_size(n)``) and
    ``seed`` (default 0, independent of the training seed) so every run and every tuning
    trial validates on the same images.
    """
    if val_size is None:
        val_size = default_val_size(n)
    if not 0 <= val_size < n:
        raise DataError(f"--val-size must be between 0 and {n - 1} (the training set has {n} images), got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:].sort().values, perm[:val_size].sort().values
