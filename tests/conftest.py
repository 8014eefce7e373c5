import os
import subprocess
import sys
from pathlib import Path

# make test runs a worker per core (pytest-xdist, Makefile): there each worker, and every
# process it starts, runs PyTorch, OpenMP and BLAS on one thread. Two workers of two
# threads each on two cores took turns with threads that wait busily after each parallel
# region: make test 262 s, 197 s so. Set before NumPy and PyTorch load, which read it
# then; tests that need more threads ask for them (test_kernels, test_serve).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from mnist_logreg.data import load_dataset, write_idx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The tests' own cache folder (downloads, parsed datasets, features), never the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["MNIST_LOGREG_CACHE"] = str(folder)
    os.environ.pop("MNIST_LOGREG_NO_CACHE", None)
    return folder


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST, loaded once for the whole session."""
    return load_dataset()


@pytest.fixture(scope="session")
def small_dir(tmp_path_factory, mnist):
    """A small MNIST-format dataset (real digits: 2,000 train, 500 test) in IDX files."""
    folder = tmp_path_factory.mktemp("small-mnist")
    write_small(folder, mnist, 2000, 500)
    return folder


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_small(folder: Path, mnist, n_train: int, n_test: int, gz: bool = True) -> Path:
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", mnist.train_images[:n_train])
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", mnist.train_labels[:n_train].to(torch.uint8))
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", mnist.test_images[:n_test])
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", mnist.test_labels[:n_test].to(torch.uint8))
    return folder


def run_cli(*args: str, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (as a user would)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "mnist_logreg", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


BASE = Path(__file__).with_name("base_install.py")


def run_base(*args: str, cwd=None, timeout: float = 300, hide: str = "") -> subprocess.CompletedProcess:
    """The CLI as on a base install (``tests/base_install.py``): every optional package
    unimportable, or only those of ``hide`` (comma-separated; ``"torch"``: a command must
    answer before PyTorch loads)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", BASE_INSTALL_HIDE=hide)
    return subprocess.run([sys.executable, str(BASE), "-m", "mnist_logreg", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def run_main(*args: str) -> subprocess.CompletedProcess:
    """The CLI's ``main`` in this process, output captured, as ``run_cli`` reports it.

    Each ``run_cli`` starts a Python that imports torch again (about 2 s here); the tests
    that are about what a command does or says use this, and a few keep the real entry
    point (and the ones whose failure could take the process down, like a SIGABRT).
    """
    import contextlib
    import io
    import warnings

    from mnist_logreg.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as PYTHONWARNINGS=ignore does for run_cli
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(["mnist-logreg", *args], code, out.getvalue(), err.getvalue())


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2 and one line on stderr naming the problem (each of ``needles``), no traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """The default recipe trained on the real MNIST, as a run folder: a copy of the one
    shipped in the package (training it here took 45 s, 30 of them reading the damaged
    copies). tests/test_model_card.py holds the shipped run to what the recipe trains, in
    make test-minutes."""
    import shutil

    from mnist_logreg.reading.modelfile import shipped_run

    out = tmp_path_factory.mktemp("default-run") / "run"
    shutil.copytree(shipped_run(), out)
    return out
