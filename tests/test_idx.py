import gzip
import struct

import numpy as np
import pytest
import torch

from conftest import write_small
from mnist_logreg.data import load_dataset, read_idx, write_idx
from mnist_logreg.errors import DataError


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("shape", [(7,), (5, 3, 4), (2, 28, 28)])
def test_round_trip(tmp_path, name, shape):
    t = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    path = write_idx(tmp_path / name, t)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)  # NumPy: reading data needs no PyTorch
    assert back.dtype == np.uint8 and back.shape == t.shape
    assert np.array_equal(back, t.numpy())


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _header(*dims, type_code=0x08):
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad IDX magic"),
        (_header(3, type_code=0x0D) + b"\x00" * 12, "unsupported IDX data type"),
        (_header(2, 2)[:6], "truncated IDX header"),
        (_header(2, 3, 3) + b"\x00" * 10, "truncated"),
        (_header(4) + b"\x00" * 9, "trailing bytes"),
        (bytes([0, 0, 8, 0]), "zero dimensions"),
        (bytes([0, 0, 8, 255]) + b"\x00" * 1020, "declares 255 dimensions"),  # not 255 numbers in the message
        # 65536**4 = 2**64: a product in int64 wraps to 0 and a bare header looked complete.
        (_header(65536, 65536, 65536, 65536), "truncated: header says 65536x65536x65536x65536"),
    ],
)
def test_corrupt_files_are_rejected(tmp_path, data, match):
    with pytest.raises(DataError, match=match):
        read_idx(_write(tmp_path / "bad.idx", data))


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(_header(4) + b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(_write(tmp_path / "bad.idx.gz", good[:-6]))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope.idx")


def test_images_and_labels_must_agree(tmp_path, mnist):
    folder = write_small(tmp_path, mnist, 100, 50)
    write_idx(folder / "train-labels-idx1-ubyte.gz", mnist.train_labels[:99].to(torch.uint8))
    with pytest.raises(DataError, match="100 images but 99 labels"):
        load_dataset(data_dir=folder)


def test_label_range_checked(tmp_path, mnist):
    folder = write_small(tmp_path, mnist, 100, 50)
    labels = mnist.train_labels[:100].clamp(max=4).to(torch.uint8)  # training labels 0..4
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataError, match="test label 9 is out of range"):
        load_dataset(data_dir=folder)


def test_image_dimensions_checked(tmp_path, mnist):
    folder = write_small(tmp_path, mnist, 100, 50)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", mnist.test_images[:50, :20, :20].contiguous())
    with pytest.raises(DataError, match="train images are \\(28, 28\\) but test images are \\(20, 20\\)"):
        load_dataset(data_dir=folder)


def test_wrong_rank(tmp_path, mnist):
    folder = write_small(tmp_path, mnist, 100, 50)
    write_idx(folder / "train-images-idx3-ubyte.gz", mnist.train_images[:100].reshape(100, -1).contiguous())
    with pytest.raises(DataError, match="must be 3-D"):
        load_dataset(data_dir=folder)
