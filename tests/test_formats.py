"""Training data in the formats people hold (data/formats.py): real files written in each
format from MNIST's own digits, trained on from the command line."""

import json
import shutil

import numpy as np
import pytest

from conftest import one_line_error, run_main, write_small
from mnist_logreg.data import load_dataset
from mnist_logreg.data.formats import TEST_FRACTION, read_kaggle_csv

N = 1200  # training digits written in each format: enough to train on in a second
FAST = ("--epochs", "2", "--no-select")


def _kaggle_csv(path, images, labels, header=None, rows=None):
    """Kaggle's Digit Recognizer train.csv: label, pixel0..pixel783, one digit a row."""
    header = header or "label," + ",".join(f"pixel{i}" for i in range(images[0].size))
    lines = rows if rows is not None else [f"{y}," + ",".join(map(str, x.ravel())) for x, y in zip(images, labels)]
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.train_images[:N].numpy(), mnist.train_labels[:N].numpy()


def _trained(tmp_path, *args):
    proc = run_main("train", *args, *FAST, "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    return proc, metrics


def test_kaggle_csv_trains_with_a_stratified_held_out_test_split(tmp_path, digits):
    images, labels = digits
    path = _kaggle_csv(tmp_path / "train.csv", images, labels)
    x, y = read_kaggle_csv(path)
    assert np.array_equal(x, images) and np.array_equal(y, labels)
    crlf = tmp_path / "windows.csv"  # the same file saved on Windows
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    x, y = read_kaggle_csv(crlf)
    assert np.array_equal(x, images) and np.array_equal(y, labels)
    proc, metrics = _trained(tmp_path, "--data", str(path))
    n_test = metrics["n_test"]
    assert (f"data: Kaggle CSV {path}, 1,200 labelled images, no test split: 1/12 held out for test "
            f"({n_test} images)") in proc.stdout
    assert abs(n_test - N * TEST_FRACTION) <= 10 and metrics["test_accuracy"] > 0.85
    # Stratified and seeded: each class gives its twelfth, the same images every time.
    ds, again = load_dataset(data_dir=str(path)), load_dataset(data_dir=str(path))
    assert np.array_equal(ds.test_images.numpy(), again.test_images.numpy())
    share = np.bincount(ds.test_labels.numpy(), minlength=10) / np.bincount(labels, minlength=10)
    assert np.allclose(share, TEST_FRACTION, atol=0.02)
    # The NumPy-only reader of the test split (evaluate's) holds out the same images.
    from mnist_logreg.data.sources import locate, read_test_split

    x, y = read_test_split(locate(data_dir=str(path)))
    assert np.array_equal(x, ds.test_images.numpy()) and np.array_equal(y, ds.test_labels.numpy())
    # evaluate finds the same split from the run's config
    proc = run_main("evaluate", "--run", str(tmp_path / "run"), "--no-report")
    assert proc.returncode == 0 and json.loads(proc.stdout)["test_accuracy"] == metrics["test_accuracy"]


@pytest.mark.parametrize("change, needle", [
    (lambda h, r: (h.replace(",pixel5,", ",pixel6,"), r), "column 7 is 'pixel6', expected 'pixel5' (missing column?)"),
    (lambda h, r: (h.replace("label,", ""), [x.split(",", 1)[1] for x in r]), "no 'label' column"),
    (lambda h, r: (h, r[:2] + [r[2].rsplit(",", 1)[0]] + r[3:]), "row 4 has 784 values, the header 785"),
    (lambda h, r: (h, r[:1] + [r[1].replace(",0,", ",300,", 1)] + r[2:]), "row 3, column"),
    (lambda h, r: (h, r[:1] + [r[1].replace(",0,", ",x,", 1)] + r[2:]), "'x' is not a number"),
    (lambda h, r: (h, ["-1" + r[0][1:]] + r[1:]), "row 2, column 1 (label): -1 is not an integer >= 0"),
])
def test_a_malformed_csv_is_one_line_naming_row_or_column(tmp_path, digits, change, needle):
    images, labels = digits
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    rows = [f"{y}," + ",".join(map(str, x.ravel())) for x, y in zip(images[:20], labels[:20])]
    header, rows = change(header, rows)
    path = _kaggle_csv(tmp_path / "train.csv", images, labels, header, rows)
    one_line_error(run_main("train", "--data", str(path), *FAST, "--out", str(tmp_path / "run")), str(path), needle)
    assert not (tmp_path / "run").exists()


def test_numpy_npz_with_and_without_a_test_split(tmp_path, digits, mnist):
    images, labels = digits
    with_test = tmp_path / "mnist.npz"  # as Keras' mnist.load_data() returns them
    np.savez(with_test, x_train=images, y_train=labels, x_test=mnist.test_images[:300].numpy(),
             y_test=mnist.test_labels[:300].numpy())
    proc, metrics = _trained(tmp_path / "a", "--data", str(with_test))
    assert f"data: NumPy arrays {with_test}, 1,200 labelled images, 300 test images" in proc.stdout
    assert metrics["n_test"] == 300
    only_train = tmp_path / "train.npz"
    np.savez(only_train, x_train=images.astype(np.float32), y_train=labels.astype(np.int32))
    proc, metrics = _trained(tmp_path / "b", "--data", str(only_train))
    assert "no test split: 1/12 held out for test" in proc.stdout


@pytest.mark.parametrize("arrays, needle", [
    (dict(x_train=np.zeros((4, 28, 28), np.uint8)), "no y_train array"),
    (dict(x_train=np.zeros((4, 784), np.uint8), y_train=np.zeros(4, np.int64)), "x_train must be images [N, H, W]"),
    (dict(x_train=np.full((4, 28, 28), 1.5), y_train=np.zeros(4, np.int64)), "pixel values 0-255"),
    (dict(x_train=np.zeros((4, 28, 28), np.uint8), y_train=np.zeros(4)), "y_train must be integer labels"),
    (dict(x_train=np.zeros((4, 28, 28), np.uint8), y_train=np.zeros(4, int), x_test=np.zeros((2, 28, 28))),
     "x_test and y_test come together"),
])
def test_a_malformed_npz_is_one_line(tmp_path, arrays, needle):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    one_line_error(run_main("train", "--data", str(path), *FAST, "--out", str(tmp_path / "run")), needle)


def test_other_files_are_refused_in_one_line(tmp_path):
    path = tmp_path / "digits.txt"
    path.write_text("1 2 3")
    one_line_error(run_main("train", "--data", str(path), "--out", str(tmp_path / "run")), "not a format we read")


def test_the_folder_torchvision_leaves_behind(tmp_path, mnist):
    """torchvision.datasets.MNIST(root) keeps MNIST's IDX files (the .gz and their contents)
    in root/MNIST/raw; --data root finds them there."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    write_small(raw, mnist, N, 300, gz=True)
    write_small(raw, mnist, N, 300, gz=False)
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        MNIST = None
    if MNIST is not None:  # torchvision itself reads the folder as its own
        assert len(MNIST(str(tmp_path / "data"), train=True, download=False)) == N
    proc, metrics = _trained(tmp_path, "--data", str(tmp_path / "data"))
    assert f"data: torchvision's folder {raw}" in proc.stdout
    assert metrics["n_test"] == 300 and metrics["n_train"] + metrics["n_val"] == N
    shutil.rmtree(raw)


def test_kaggle_round_trip_writes_the_submission(tmp_path, mnist, default_run):
    """test.csv (pixel0..pixel783, no labels) -> predict --out submission.csv: ImageId from 1,
    a row per digit, each the model's reading of the 28x28 digit as it stands (no photo path)."""
    from mnist_logreg.reading.lite import load_run

    n = 600
    images, labels = mnist.test_images[:n].numpy(), mnist.test_labels[:n].numpy()
    test_csv = tmp_path / "test.csv"
    test_csv.write_text(",".join(f"pixel{i}" for i in range(784)) + "\n"
                        + "".join(",".join(map(str, x.ravel())) + "\n" for x in images))
    out = tmp_path / "submission.csv"
    proc = run_main("predict", "--run", str(default_run), str(test_csv), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"600 predictions written to {out} (ImageId,Label)"
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == n + 1
    ids, answers = zip(*(map(int, line.split(",")) for line in lines[1:]))
    assert list(ids) == list(range(1, n + 1))
    assert list(answers) == load_run(default_run).logits(images).argmax(axis=1).tolist()
    assert (np.array(answers) == labels).mean() >= 0.98
    # without --out the same file goes to stdout
    assert run_main("predict", "--run", str(default_run), str(test_csv)).stdout == out.read_text()
    one_line_error(run_main("predict", "--run", str(default_run), str(test_csv), str(tmp_path / "x.png")),
                   "is read alone")
    one_line_error(run_main("predict", "--run", str(default_run), str(tmp_path / "x.png"), "--out", str(out)),
                   "--out writes a Kaggle submission")
    bad = tmp_path / "bad.csv"
    bad.write_text("pixel0,pixel2\n1,2\n")
    one_line_error(run_main("predict", "--run", str(default_run), str(bad), "--out", str(tmp_path / "s.csv")),
                   "column 2 is 'pixel2', expected 'pixel1'")
    assert not (tmp_path / "s.csv").exists()


def _image_folder(root, mnist, per_class, names=None):
    """One sub-folder per class of photos-like files: MNIST digits, dark on white, scaled to
    84x84, PNG and JPEG in turn (torchvision's ImageFolder layout)."""
    from PIL import Image

    labels = mnist.train_labels.numpy()
    for c in range(10):
        folder = root / (names[c] if names else str(c))
        folder.mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            img = Image.fromarray(255 - mnist.train_images[i].numpy()).resize((84, 84))
            img.save(folder / f"{i}.{'png' if k % 2 else 'jpg'}")
    return root


def test_an_image_folder_trains_through_the_reading_path(tmp_path, mnist):
    from PIL import Image

    root = _image_folder(tmp_path / "digits", mnist, 24)
    (root / "3" / "notes.png").write_bytes(b"not an image")
    Image.new("L", (60, 60), 255).save(root / "4" / "empty.png")
    proc, metrics = _trained(tmp_path, "--data", str(root))
    assert f"data: image folder {root}, 10 classes, 240 images (2 skipped), no test split" in proc.stdout
    assert proc.stderr.splitlines() == [f"mnist-logreg: skipped {root}/3/notes.png: not an image in a supported "
                                        "format (PNG, JPEG, BMP, GIF, TIFF, WEBP)",
                                        f"mnist-logreg: skipped {root}/4/empty.png: no digit: the image is blank"]
    assert len(metrics["skipped"]) == 2 and "class_names" not in metrics
    # the folder names are the labels: the training digits are what predict reads
    from mnist_logreg.data import load_dataset
    from mnist_logreg.reading.images import read_digit

    ds = load_dataset(data_dir=str(root))
    first = sorted((root / "0").iterdir())[0]
    assert any(np.array_equal(read_digit(first), x) for x in np.concatenate([ds.train_images.numpy(),
                                                                            ds.test_images.numpy()]))
    assert set(ds.train_labels.tolist()) == set(range(10))


def test_an_image_folder_names_its_classes(tmp_path, mnist):
    from mnist_logreg.reading.modelfile import run_class_names

    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    root = _image_folder(tmp_path / "named", mnist, 12, names)
    _, metrics = _trained(tmp_path, "--data", str(root))
    assert metrics["class_names"] == sorted(names)  # numbered in sorted order
    assert run_class_names(tmp_path / "run", 10) == sorted(names)  # the exported page shows them


def test_an_image_folder_with_an_empty_class_is_one_line(tmp_path, mnist):
    from PIL import Image

    root = _image_folder(tmp_path / "digits", mnist, 3)
    for f in (root / "5").iterdir():
        f.unlink()
    Image.new("L", (60, 60), 255).save(root / "5" / "blank.png")
    one_line_error(run_main("train", "--data", str(root), *FAST, "--out", str(tmp_path / "run")),
                   f"{root}/5: no readable digit in this class folder (1 image files)")


def test_data_names_a_dataset_where_no_such_path_is_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_dataset(data_dir="mnist").provenance == "mnist: every file matches the published checksums"
    (tmp_path / "mnist").mkdir()  # a folder of that name is a folder (downloaded into when empty)
    write_small(tmp_path / "mnist", load_dataset(), 300, 100)
    assert load_dataset(data_dir="mnist").train_images.shape[0] == 300


def test_npz_arrays_fit_the_python_estimator(tmp_path, digits, mnist):
    """Arrays are what the Python API takes: Keras' arrays from an .npz, flattened, fit
    mnist_logreg.LogisticRegression as they fit scikit-learn's."""
    from mnist_logreg import LogisticRegression

    images, labels = digits
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=images, y_train=labels, x_test=mnist.test_images[:300].numpy(),
             y_test=mnist.test_labels[:300].numpy())
    with np.load(path) as z:
        x_train, y_train, x_test, y_test = (z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    model = LogisticRegression().fit(x_train.reshape(len(x_train), -1) / 255, y_train)
    assert model.score(x_test.reshape(len(x_test), -1) / 255, y_test) > 0.8
