"""A base ``pip install mnist-logreg`` (no extras): what works, and the one line for what needs one.

The optional packages are made unimportable (``tests/base_install.py``) in a subprocess,
as they would be where they are not installed; one slow test also installs the wheel built
from this checkout into a fresh virtual environment, without extras, and trains.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from PIL import Image

from conftest import BASE, ROOT, one_line_error, run_base, write_small


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, small_dir):
    """A run trained on a base install (the default recipe, its choice of preprocessing included)."""
    out = tmp_path_factory.mktemp("base") / "run"
    proc = run_base("train", "--data-dir", str(small_dir), "--out", str(out), "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and "preprocessing chosen on validation" in proc.stdout
    return out


def test_the_blocker_blocks():
    proc = subprocess.run([sys.executable, str(BASE), "-c", "import sklearn"], capture_output=True, text=True)
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_train_on_a_base_install(base_run):
    assert (base_run / "model.safetensors").is_file() and (base_run / "metrics.json").is_file()


def test_evaluate_writes_the_numbers_without_matplotlib(base_run, small_dir):
    proc = run_base("evaluate", "--run", str(base_run), "--data-dir", str(small_dir))
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "report written to" in proc.stdout
    assert "matplotlib is not installed" in proc.stderr and "mnist-logreg[report]" in proc.stderr
    report = base_run / "report"
    assert sorted(p.name for p in report.iterdir()) == ["evaluation.json", "report.html", "report.md"]
    evaluation = json.loads((report / "evaluation.json").read_text())
    saved = json.loads((base_run / "metrics.json").read_text())
    assert evaluation["accuracy"] == saved["test_accuracy"] and evaluation["figures"] == []
    assert "<img" not in (report / "report.html").read_text()


def test_predict_export_torchscript_and_compare_on_a_base_install(base_run, tmp_path):
    from PIL import Image

    from mnist_logreg import load_dataset

    digit = tmp_path / "seven.png"
    Image.fromarray(255 - load_dataset().test_images[0].numpy()).resize((140, 140)).save(digit)  # a 7
    proc = run_base("predict", "--run", str(base_run), str(digit), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] == 7

    proc = run_base("export", "--run", str(base_run), "--format", "torchscript", "--out", str(tmp_path / "m.pt"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.pt").stat().st_size > 0

    proc = run_base("compare", str(base_run), str(base_run))
    assert proc.returncode == 0, proc.stderr
    assert "test_accuracy" in proc.stdout


@pytest.mark.parametrize("args, extra", [
    (["tune", "--trials", "1"], "tune"),
    (["serve"], "serve"),
    (["export", "--format", "onnx"], "export"),
    (["bench", "--quick"], "bench"),
    (["train", "--tensorboard", "--epochs", "1"], "tensorboard"),
])
def test_extras_are_named_in_one_line(args, extra, base_run, tmp_path):
    if args[0] in ("serve", "export"):
        args = [*args, "--run", str(base_run)]
    elif args[0] != "bench":
        args = [*args, "--out", str(tmp_path / "out")]
    else:
        args = [*args, "--out", str(tmp_path / "bench.json")]
    proc = run_base(*args)
    one_line_error(proc, f"pip install 'mnist-logreg[{extra}]'")
    assert not (tmp_path / "out").exists() and not (tmp_path / "bench.json").exists()


def test_a_postgresql_study_names_the_postgres_extra(tmp_path, small_dir):
    """The tune extra without psycopg2: a PostgreSQL URL says to install mnist-logreg[postgres]."""
    proc = run_base("tune", "--data-dir", str(small_dir), "--out", str(tmp_path / "t"), "--storage",
                    "postgresql://me:s3cret@127.0.0.1:9/none", hide="psycopg2")
    one_line_error(proc, "pip install 'mnist-logreg[postgres]'")


def test_a_missing_extra_is_named_before_pytorch_loads(tmp_path, small_dir):
    """train --tensorboard and tune on PostgreSQL name their missing extra before anything
    imports PyTorch (seconds): here torch is hidden too, and the line is the same."""
    proc = run_base("train", "--tensorboard", "--out", str(tmp_path / "out"), hide="tensorboard,torch")
    one_line_error(proc, "pip install 'mnist-logreg[tensorboard]'")
    proc = run_base("tune", "--data-dir", str(small_dir), "--out", str(tmp_path / "t"), "--storage",
                    "postgresql://me:s3cret@127.0.0.1:9/none", hide="psycopg2,torch")
    one_line_error(proc, "pip install 'mnist-logreg[postgres]'")


def test_the_estimator_without_scikit_learn():
    code = ("import numpy as np, torch\n"
            "from mnist_logreg import LogisticRegression\n"
            "g = torch.Generator().manual_seed(0)\n"
            "x = torch.randn(200, 5, generator=g).numpy(); y = (x[:, 0] > 0).astype(int)\n"
            "clf = LogisticRegression(C=1.0, max_iter=50).fit(x, y)\n"
            "assert clf.score(x, y) > 0.9, clf.score(x, y)\n"
            "assert clf.get_params()['C'] == 1.0 and clf.set_params(C=2.0).C == 2.0\n"
            "p = clf.predict_proba(x); assert np.allclose(p.sum(1), 1)\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, str(BASE), "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("level", [[], ["train"], ["evaluate"], ["compare"], ["predict"], ["serve"], ["export"],
                                   ["tune"], ["bench"]])
def test_help_imports_neither_torch_nor_scikit_learn(level):
    code = ("import sys\n"
            "from mnist_logreg.cli import main\n"
            "try:\n"
            f"    main({[*level, '--help']!r})\n"
            "except SystemExit as exc:\n"
            "    assert exc.code == 0, exc.code\n"
            "heavy = sorted(m for m in ('torch', 'sklearn', 'numpy', 'matplotlib') if m in sys.modules)\n"
            "print(','.join(heavy) or 'none')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "none"


@pytest.mark.slow
@pytest.mark.minutes
def test_the_wheel_installs_into_a_fresh_venv_without_extras_and_trains(tmp_path, mnist, request):
    """pip wheel from this checkout, a new venv, pip install of the wheel alone, then train (about a minute)."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("mnist_logreg-*.whl")
    venv = tmp_path / "venv"
    request.addfinalizer(lambda: shutil.rmtree(venv, ignore_errors=True))  # 5.5 GB with torch
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # --no-compile: no .pyc for torch's thousands of modules (a quarter of the test's time here).
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    python = str(venv / "bin" / "python")
    missing = subprocess.run([python, "-c", "import sklearn"], capture_output=True, text=True)
    assert missing.returncode != 0, "scikit-learn came with the base install"
    data = write_small(tmp_path / "data", mnist, 1000, 500)
    env = dict(os.environ, MNIST_LOGREG_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([str(venv / "bin" / "mnist-logreg"), "train", "--data-dir", str(data), "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and (tmp_path / "run" / "metrics.json").is_file()
    # The wheel carries the compiled kernel: the installed package trains on it, with no
    # compiler involved on the target.
    from mnist_logreg.training import kernels

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["kernel"] == kernels.active() != "off"
    assert any(name.startswith("mnist_logreg/training/_kernels") for name in zipfile.ZipFile(wheel).namelist())
    # The shipped model travels as package data too: predict works with no run at all.
    digit = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.test_images[0].numpy()).resize((140, 140)).save(digit)
    proc = subprocess.run([str(venv / "bin" / "mnist-logreg"), "predict", str(digit)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0 and proc.stdout.split("\t")[1] == "7", (proc.stdout, proc.stderr)
    assert "using the model shipped with mnist-logreg" in proc.stderr
    # The web page's files travel as package data: the installed package exports the page.
    page = tmp_path / "digits.html"
    proc = subprocess.run([str(venv / "bin" / "mnist-logreg"), "export", "--run", str(tmp_path / "run"), "--format",
                           "web", "--out", str(page)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "MnistLogreg" in page.read_text() and "MnistPage" in page.read_text()
    proc = subprocess.run([str(venv / "bin" / "mnist-logreg"), "tune"], capture_output=True, text=True, cwd=tmp_path)
    one_line_error(proc, "pip install 'mnist-logreg[tune]'")
