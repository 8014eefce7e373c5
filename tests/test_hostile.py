"""Hostile inputs (issue 18): run folders tampered with field by field, images past every
limit, numbers that cannot make sense. Each must end in one line naming the problem and
exit code 2, never a traceback, a NaN printed as a result, or a half-written file."""

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import one_line_error, run_main
from digits import png_bytes

MODEL = "model.safetensors"


@pytest.fixture(scope="module")
def parts(default_run):
    """The real run's model file: its tensors and metadata."""
    from safetensors import safe_open

    with safe_open(str(default_run / MODEL), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata())


def _set(meta, key, **changes):
    """``meta`` with the JSON under ``key`` changed: a section's field, or a whole value."""
    value = json.loads(meta[key])
    for path, new in changes.items():
        *sections, field = path.split("__")
        target = value
        for s in sections:
            target = target[s]
        target[field] = new
    return {**meta, key: json.dumps(value)}


def _tensor_cases():
    names = ("linear.weight", "linear.bias", "preprocess.mean", "preprocess.std", "preprocess.target_std")
    for name in names:
        yield f"{name} NaN", name, lambda t: t.clone().fill_(float("nan")), "NaN or infinite"
        yield f"{name} inf", name, lambda t: t.clone().fill_(float("inf")), "NaN or infinite"
        yield f"{name} int8", name, lambda t: t.to(torch.int8), "expected floats"
        yield f"{name} bool", name, lambda t: t.to(torch.bool), "expected floats"
        yield f"{name} 2-D", name, lambda t: t.reshape(1, -1), "has shape"
        yield f"{name} missing", name, None, "missing tensor"
    yield "std zero", "preprocess.std", lambda t: t.clone().fill_(0.0), "must be positive"
    yield "target_std zero", "preprocess.target_std", lambda t: torch.zeros_like(t), "must be positive"


TENSOR_CASES = list(_tensor_cases())

META_CASES = [
    ("config not JSON", lambda m: {**m, "config": "{nope"}, "damaged model metadata"),
    ("config a list", lambda m: {**m, "config": "[]"}, "must be a JSON object"),
    ("section a string", lambda m: _set(m, "config", preprocess="deskew"), "section 'preprocess'"),
    ("lr a string", lambda m: _set(m, "config", optim__lr="fast"), "--lr"),
    ("epochs negative", lambda m: _set(m, "config", optim__epochs=-3), "--epochs"),
    ("normalize unknown", lambda m: _set(m, "config", preprocess__normalize="bogus"), "--normalize"),
    ("augment an int", lambda m: _set(m, "config", augment__augment=5), "damaged settings"),
    ("image_shape strings", lambda m: {**m, "image_shape": '["28", "28"]'}, "image_shape"),
    ("image_shape 1-D", lambda m: {**m, "image_shape": "[784]"}, "image_shape"),
    ("image_shape zero", lambda m: {**m, "image_shape": "[0, 28]"}, "image_shape"),
    ("image_shape huge", lambda m: {**m, "image_shape": "[100000, 100000]"}, "image_shape"),
    ("image_shape odd", lambda m: {**m, "image_shape": "[27, 27]"}, "even image sides"),
    ("classes an int", lambda m: {**m, "classes": "10"}, "classes"),
    ("classes empty", lambda m: {**m, "classes": "[]"}, "classes"),
    ("one class", lambda m: {**m, "classes": "[3]"}, "classes"),
    ("classes repeated", lambda m: {**m, "classes": "[1, 1, 2, 3, 4, 5, 6, 7, 8, 9]"}, "classes"),
    ("classes strings", lambda m: {**m, "classes": json.dumps([str(i) for i in range(10)])}, "classes"),
    ("no classes", lambda m: {k: v for k, v in m.items() if k != "classes"}, "no 'classes'"),
    ("other format", lambda m: {**m, "format": "pickle"}, "not an mnist-logreg model"),
]


def _tampered(default_run, tmp_path, tensors, meta):
    from safetensors.torch import save_file

    run = tmp_path / "run"
    shutil.copytree(default_run, run)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(run / MODEL), metadata=meta)
    return run


def _refused_by_every_command(run, tmp_path, needle):
    image = tmp_path / "digit.png"
    image.write_bytes(png_bytes(np.full((28, 28), 255, np.uint8) - np.eye(28, dtype=np.uint8) * 200))
    out = tmp_path / "exported.onnx"
    for args in (("predict", "--run", str(run), str(image), "--json"),
                 ("export", "--run", str(run), "--format", "onnx", "--out", str(out)),
                 ("evaluate", "--run", str(run))):
        proc = run_main(*args)
        one_line_error(proc, needle)
        assert "nan" not in proc.stdout.lower()
    assert not out.exists()
    assert not (run / "report").exists()


@pytest.mark.parametrize("case, name, change, needle", TENSOR_CASES, ids=[c[0] for c in TENSOR_CASES])
def test_a_tampered_tensor_is_refused_by_every_command(default_run, parts, tmp_path, case, name, change, needle):
    tensors, meta = parts
    tensors = dict(tensors)
    if change is None:
        del tensors[name]
    else:
        tensors[name] = change(tensors[name])
    _refused_by_every_command(_tampered(default_run, tmp_path, tensors, meta), tmp_path, needle)


def test_an_extra_tensor_is_refused(default_run, parts, tmp_path):
    tensors, meta = parts
    run = _tampered(default_run, tmp_path, {**tensors, "hidden": torch.zeros(3)}, meta)
    _refused_by_every_command(run, tmp_path, "unexpected tensor 'hidden'")


@pytest.mark.parametrize("case, change, needle", META_CASES, ids=[c[0] for c in META_CASES])
def test_tampered_metadata_is_refused_by_every_command(default_run, parts, tmp_path, case, change, needle):
    tensors, meta = parts
    _refused_by_every_command(_tampered(default_run, tmp_path, tensors, change(meta)), tmp_path, needle)


def _metrics(**changes) -> bytes:
    """The real run's metrics.json with ``changes`` (raw JSON text per field)."""
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in changes.items()) + ', "epochs": 10}').encode()


# (file, content, needle, commands that read the file): metrics.json is read by evaluate
# (its report) and compare, config.json by compare, history.csv by evaluate's report.
SIDE_FILE_CASES = [
    ("metrics a list", "metrics.json", b"[1, 2, 3]", "must be a JSON object", ("evaluate", "compare")),
    ("metrics binary", "metrics.json", b"\xff\xfe\x00binary", "invalid JSON", ("evaluate", "compare")),
    ("train_seconds a string", "metrics.json", _metrics(train_seconds='"slow"'), "'train_seconds' must be a number",
     ("evaluate", "compare")),
    ("test_accuracy 1.5", "metrics.json", _metrics(test_accuracy="1.5"), "between 0 and 1", ("evaluate", "compare")),
    ("test_loss infinite", "metrics.json", _metrics(test_loss="Infinity"), "'test_loss' must be between",
     ("evaluate", "compare")),
    ("epochs 2.5", "metrics.json", b'{"epochs": 2.5}', "'epochs' must be an integer", ("evaluate", "compare")),
    ("device a number", "metrics.json", _metrics(device="5"), "'device' must be a string", ("evaluate", "compare")),
    ("selection a string", "metrics.json", _metrics(selection='"x"'), "'selection'", ("evaluate", "compare")),
    ("selection NaN", "metrics.json", _metrics(selection='{"chosen": "x", "val_accuracy": {"x": NaN}}'),
     "val_accuracy.x", ("evaluate", "compare")),
    ("config a string", "config.json", b'"just a string"', "must be a JSON object", ("compare",)),
    ("config lr a string", "config.json", b'{"optim": {"lr": "fast"}}', "--lr", ("compare",)),
    ("config section a list", "config.json", b'{"optim": [1]}', "section 'optim'", ("compare",)),
    ("history binary", "history.csv", b"\x00\xff\xfe" * 100, "history", ("evaluate",)),
    ("history without epochs", "history.csv", b"lr,train_loss\n0.1,0.5\n", "no epoch", ("evaluate",)),
    ("history NaN", "history.csv", b"epoch,train_loss\n1,nan\n", "NaN or infinity", ("evaluate",)),
    ("history extra cells", "history.csv", b"epoch,train_loss\n1,0.5,7,8\n", "history", ("evaluate",)),
]


@pytest.mark.parametrize("case, file, content, needle, commands", SIDE_FILE_CASES,
                         ids=[c[0] for c in SIDE_FILE_CASES])
def test_tampered_side_files_are_refused(default_run, small_dir, tmp_path, case, file, content, needle, commands):
    """Not only the model file: the JSON and CSV beside it are checked field by field."""
    run = tmp_path / "run"
    shutil.copytree(default_run, run, ignore=shutil.ignore_patterns("report"))
    (run / file).write_bytes(content)
    if "evaluate" in commands:
        proc = run_main("evaluate", "--run", str(run), "--data-dir", str(small_dir))
        one_line_error(proc, needle)
        assert proc.stdout == "" and not (run / "report").exists()
    if "compare" in commands:
        one_line_error(run_main("compare", str(run), str(default_run), "--out", str(tmp_path / "t.md")), needle)
        assert not (tmp_path / "t.md").exists()


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP"])
def test_an_image_past_pillows_own_limit_is_one_line(tmp_path, default_run, fmt):
    """A header declaring ~200 megapixels (past Pillow's refusal) or ~100 (its warning)."""
    import io

    from PIL import Image

    for side in (14_200, 10_000):
        buf = io.BytesIO()
        Image.new("1" if fmt != "GIF" else "P", (side, side)).save(buf, format=fmt)
        path = tmp_path / f"big-{side}.{fmt.lower()}"
        path.write_bytes(buf.getvalue())
        proc = run_main("predict", "--run", str(default_run), str(path))
        assert proc.returncode == 2 and "megapixels" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Warning" not in proc.stderr, proc.stderr


def test_a_float_tiff_digit_is_read(mnist, tmp_path):
    from PIL import Image

    from mnist_logreg.reading.images import load_digit

    img = Image.fromarray(mnist.test_images[0].numpy().astype(np.float32) / 255.0, mode="F")
    img.save(tmp_path / "digit.tif")
    assert load_digit(tmp_path / "digit.tif").sum() > 0


def test_an_image_the_system_cannot_open_says_why_once(tmp_path, default_run):
    """A symbolic link to itself: the reason, and the path once (the OSError's text repeats it)."""
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    proc = run_main("predict", "--run", str(default_run), str(loop))
    one_line_error(proc, "loop.png: cannot read image (Too many levels of symbolic links)")
    assert proc.stderr.count("loop.png") == 1, proc.stderr


@pytest.mark.parametrize("command, flag, value, needle", [
    ("train", "--epochs", "99999999999999999999", "from 1 to 100,000"),
    ("train", "--epochs", "1000000", "from 1 to 100,000"),
    ("train", "--batch-size", "100000000000", "from 1 to 10,000,000"),
    ("train", "--lbfgs-iters", "1000000", "from 1 to 10,000"),
    ("train", "--std-floor", "1e308", "between 0 and 10"),  # overflowed float32: a traceback
    ("train", "--lr", "1e308", "up to 1,000,000"),  # the same
    ("train", "--weight-decay", "1e308", "from 0 to 1,000"),  # the same
    ("train", "--translate", "1e308", "at most 1,000 pixels"),  # trained on blank images
    ("train", "--scale-max", "1e308", "a zoom from 0.01 to 100"),
    ("tune", "--trials", "99999999999999999999", "from 1 to 10,000"),
    ("tune", "--n-jobs", "1000", "from 1 to 64"),
    ("tune", "--timeout", "1e400", "a finite number of seconds"),
    ("tune", "--seed", "99999999999999999999", "from 0 to 2**32 - 1"),
    ("train", "--val-size", "99999999999999999999", "between 0 and 59999"),  # the dataset sets the limit
    ("tune", "--val-size", "0", "at least 1 for tune"),  # trials scored on nothing: a KeyError
    ("bench", "--repeats", "1000", "from 1 to 100"),
])
def test_absurd_numbers_are_refused_with_the_limit(tmp_path, command, flag, value, needle):
    one_line_error(run_main(command, flag, value, "--out", str(tmp_path / "r")), needle)
    assert not (tmp_path / "r").exists()
