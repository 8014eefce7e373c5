import functools
import http.server
import shutil
import threading

import pytest
import torch

from mnist_logreg.data import load_dataset, train_val_split
from mnist_logreg.data.sources import FILE_STEMS, MNIST, bundled_dir, download
from mnist_logreg.errors import DataError


def test_bundled_mnist_is_the_published_set(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == torch.uint8
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.n_classes == 10
    assert mnist.train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist.train_images.double().mean().item() == pytest.approx(33.318, abs=1e-3)
    assert torch.bincount(mnist.test_labels).tolist()[:3] == [980, 1135, 1032]


def test_bundled_files_ship_with_attribution():
    folder = bundled_dir()
    assert sorted(p.name for p in folder.glob("*.gz")) == sorted(s + ".gz" for s in FILE_STEMS)
    assert "CC BY-SA 3.0" in (folder / "README.md").read_text()


def test_data_dir_with_raw_files(tmp_path, mnist):
    from conftest import write_small

    ds = load_dataset(data_dir=write_small(tmp_path, mnist, 300, 100, gz=False))
    assert ds.train_images.shape == (300, 28, 28) and torch.equal(ds.test_labels, mnist.test_labels[:100])


def test_data_dir_with_real_mnist_is_verified(tmp_path):
    for stem in FILE_STEMS:
        shutil.copy(bundled_dir() / (stem + ".gz"), tmp_path / (stem + ".gz"))
    raw = bytearray((tmp_path / "train-labels-idx1-ubyte.gz").read_bytes())
    # Same length, valid gzip, different label bytes: only the checksum can tell.
    import gzip

    labels = bytearray(gzip.decompress(bytes(raw)))
    labels[100] = (labels[100] + 1) % 10
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset(data_dir=tmp_path)


def test_the_test_split_alone_is_read_and_checked_with_numpy(tmp_path, mnist):
    """evaluate's reader (data/sources.py): the same test split as the training Dataset's,
    held to the published checksums as that is."""
    import gzip

    import numpy as np

    from mnist_logreg.data.sources import locate, read_test_split

    x, y = read_test_split(locate())
    assert np.array_equal(x, mnist.test_images.numpy()) and np.array_equal(y, mnist.test_labels.numpy())
    for stem in FILE_STEMS:
        shutil.copy(bundled_dir() / (stem + ".gz"), tmp_path / (stem + ".gz"))
    # (The test labels name the dataset: changed, the folder is the user's own data.)
    images = bytearray(gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()))
    images[1000] ^= 0xFF  # the same size: only the checksum can tell
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(images)))
    with pytest.raises(DataError, match="checksum mismatch"):
        read_test_split(locate(data_dir=tmp_path))


@pytest.fixture()
def mirror(tmp_path):
    """A local HTTP mirror serving the bundled MNIST files."""
    root = tmp_path / "mirror"
    root.mkdir()
    for stem in FILE_STEMS:
        shutil.copy(bundled_dir() / (stem + ".gz"), root / (stem + ".gz"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_into_empty_data_dir(tmp_path, mirror):
    _, url = mirror
    target = tmp_path / "data"
    target.mkdir()
    ds = load_dataset(data_dir=target, mirrors=("http://127.0.0.1:9/", url))  # first mirror refuses
    assert ds.train_images.shape == (60000, 28, 28)
    assert sorted(p.name for p in target.iterdir()) == sorted(s + ".gz" for s in FILE_STEMS)


def test_download_rejects_bad_checksum(tmp_path, mirror):
    root, url = mirror
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes((root / "train-labels-idx1-ubyte.gz").read_bytes())
    target = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch"):
        download(MNIST, target, mirrors=(url,))
    assert not (target / "t10k-labels-idx1-ubyte.gz").exists()  # nothing unverified lands


def test_offline_error_says_where_to_put_files(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    with pytest.raises(DataError, match=f"cannot download mnist.*put train-images-idx3-ubyte.gz.* into {target}"):
        load_dataset(data_dir=target, mirrors=("http://127.0.0.1:9/",))


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_split_is_deterministic_and_disjoint():
    tr, va = train_val_split(1000, 100)
    tr2, va2 = train_val_split(1000, 100)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert len(tr) == 900 and len(va) == 100
    assert len(set(tr.tolist()) | set(va.tolist())) == 1000
    with pytest.raises(DataError, match="--val-size"):
        train_val_split(1000, 1000)


def test_a_subset_of_a_published_set_is_the_users_data(tmp_path, mnist):
    """Files of the published sizes are checked; the others (here the training files) are accepted."""
    from conftest import write_small

    ds = load_dataset(data_dir=write_small(tmp_path, mnist, 1000, 10000))
    assert ds.verified == ("t10k-images", "t10k-labels") and ds.unverified == ("train-images", "train-labels")
    assert "your own data (1,000 training images)" in ds.provenance
    # A damaged test file of the published size is still caught.
    import gzip

    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    images = bytearray(gzip.decompress(path.read_bytes()))
    images[5000] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(images)))
    with pytest.raises(DataError, match="checksum mismatch for mnist"):
        load_dataset(data_dir=tmp_path)


def test_an_unknown_dataset_is_used_as_given(tmp_path, mnist):
    from conftest import write_small

    write_small(tmp_path, mnist, 300, 100)  # test labels are not the published ones: not MNIST
    ds = load_dataset(data_dir=tmp_path)
    assert ds.verified == () and "not a published dataset we know" in ds.provenance
