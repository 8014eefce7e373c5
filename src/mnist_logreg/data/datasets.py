"""The training ``Dataset``: an MNIST-style dataset as uint8 tensors, for PyTorch.

Where the data are, and the checks of their files, are ``sources.py`` (NumPy alone, also
what ``evaluate`` reads its test split with); this module turns them into tensors,
cached on disk (``cache.py``). Resolution order for ``load_dataset``:

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
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import cache
from ..errors import DataError
from . import formats
from .sources import KINDS, SPLITS, Source, check_file, file_stem, folder_paths, locate, read_arrays, read_file


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


def _load_folder(source: Source) -> Dataset:
    """The four files of an "idx" source as a ``Dataset``, each checked against the
    published dataset where it claims to be it (``sources.check_file``), the ``Dataset``
    saying which was which. The parsed result is cached on disk by the digests of the
    files' bytes, so a second load skips the gunzip and the checksums (``cache.py``).
    """
    spec, strict, folder = source.spec, source.strict, source.path
    paths = folder_paths(folder)
    raw = {stem: read_file(path) for stem, path in paths.items()}
    key = {"what": "dataset", "spec": spec.name if spec else None, "strict": strict,
           "files": {stem: hashlib.blake2b(data, digest_size=20).hexdigest() for stem, data in raw.items()}}

    def build() -> dict:
        entry: dict = {"verified": [], "unverified": []}
        for stem, path in paths.items():
            array, verified = check_file(spec, strict, stem, raw[stem], path)
            entry["verified" if verified else "unverified"].append(stem)
            entry[stem] = torch.from_numpy(array)
        return entry

    entry = cache.cached(key, build)
    tensors = {(split, kind): entry[file_stem(split, kind)] for split in SPLITS for kind in KINDS}
    dataset = make_dataset(tensors, name=spec.name if spec else folder.name, source=str(folder))
    dataset.verified = tuple(s.split("-idx")[0] for s in entry["verified"])
    dataset.unverified = tuple(s.split("-idx")[0] for s in entry["unverified"])
    return dataset


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


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    mirrors: tuple[str, ...] | None = None,
) -> Dataset:
    """Load an MNIST-style dataset as uint8 tensors (see the module docstring)."""
    source = locate(name, data_dir, allow_download, mirrors)
    if source.kind == "idx":
        dataset = _load_folder(source)
        if source.torchvision:
            dataset.description = f"torchvision's folder {source.path}: {dataset.provenance}"
        return dataset
    arrays = read_arrays(source)
    dataset = _from_arrays(source.path, arrays.what, arrays.images, arrays.labels, arrays.test, arrays.summary,
                           arrays.classes)
    dataset.skipped = arrays.skipped
    return dataset


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
