"""The C kernel's paths against autograd (float64), against each other and against the
PyTorch path they stand in for. Every path this CPU runs is tested (``path`` fixture);
NEON can only be tested on an ARM machine."""

import pytest
import torch
import torch.nn.functional as F

from mnist_logreg import build_config, train
from mnist_logreg.config import OptimConfig
from mnist_logreg.data import load_dataset
from mnist_logreg.training import kernels
from mnist_logreg.training.preprocess import to_float
from mnist_logreg.training.train import fit_features, softmax_xent_grad

pytestmark = pytest.mark.skipif(not kernels.RUNNABLE, reason="the C kernel was not built")


@pytest.fixture(params=kernels.RUNNABLE or ["none"])
def path(request):
    """Each path this CPU runs, made the active one for the test."""
    with kernels.using(request.param):
        yield request.param


def _reference(w, b, x, y):
    """Summed loss and the summed gradients, by autograd in float64."""
    w = w.double().requires_grad_()
    b = b.double().requires_grad_()
    loss = F.cross_entropy(x.double() @ w.t() + b, y, reduction="sum")
    loss.backward()
    return loss.detach(), w.grad, b.grad


def _problem(n, d, c, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g),
            torch.randn(c, d, generator=g) * 0.3, torch.randn(c, generator=g))


# d: a multiple of 16 and not (the masked tail); n: below, at and past a block of rows;
# c: fewer than, equal to and more than the classes of one forward pass (5).
@pytest.mark.parametrize("n, d, c", [(1, 20, 3), (7, 784, 10), (33, 16, 5), (100, 37, 17), (64, 784, 64)])
@pytest.mark.parametrize("indexed", [False, True])
def test_gradient_sums_equal_autograd(path, n, d, c, indexed):
    x, y, w, b = _problem(max(n, 50), d, c)
    idx = torch.randint(0, x.shape[0], (n,), generator=torch.Generator().manual_seed(1)) if indexed else None
    rows = x[idx] if indexed else x[:n]
    labels = y[idx] if indexed else y[:n]
    gw, gb = torch.empty(c, d), torch.empty(c)
    assert kernels.usable(x, w)
    loss = kernels.grad_sums(w, b, x if indexed else x[:n], labels, gw, gb, idx=idx)
    ref_loss, ref_gw, ref_gb = _reference(w, b, rows, labels)
    torch.testing.assert_close(torch.tensor(loss, dtype=torch.float64), ref_loss, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gw.double(), ref_gw, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gb.double(), ref_gb, rtol=1e-4, atol=1e-4)


def test_uint8_rows_give_exactly_the_float_features(path):
    u = torch.arange(256, dtype=torch.uint8)
    assert kernels._LIB.u8_exact  # all 256 conversions equal torch.div(u, 255)
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (300, 784), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (300,), generator=g)
    w, b = torch.randn(10, 784, generator=g) * 0.01, torch.randn(10, generator=g)
    idx = torch.randperm(300, generator=g)[:100]
    out_u8 = torch.empty(10, 784), torch.empty(10)
    out_f = torch.empty(10, 784), torch.empty(10)
    loss_u8 = kernels.grad_sums(w, b, pixels, y[idx], *out_u8, idx=idx)
    loss_f = kernels.grad_sums(w, b, to_float(pixels), y[idx], *out_f, idx=idx)
    assert loss_u8 == loss_f
    assert torch.equal(out_u8[0], out_f[0]) and torch.equal(out_u8[1], out_f[1])
    assert torch.equal(to_float(u), torch.div(u, 255.0))


def test_full_batch_is_the_same_on_any_number_of_threads(path):
    x, y, w, b = _problem(3000, 50, 10)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = softmax_xent_grad(w, b, x, y)
        torch.set_num_threads(3)
        three = softmax_xent_grad(w, b, x, y)
    finally:
        torch.set_num_threads(threads)
    for a, c in zip(one, three):
        assert torch.equal(a, c)
    ref_loss, ref_gw, ref_gb = _reference(w, b, x, y)
    n = x.shape[0]
    torch.testing.assert_close(one[1].double(), ref_gw / n, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(one[2].double(), ref_gb / n, rtol=1e-4, atol=1e-6)


def test_not_used_where_it_cannot_run():
    x, _, w, _ = _problem(10, 20, 3)
    assert not kernels.usable(x.double(), w.double())
    assert not kernels.usable(x.t(), w[:, :10])  # not contiguous
    assert not kernels.usable(x, torch.randn(65, 20))  # more classes than the kernel holds


@pytest.mark.parametrize("momentum, nesterov, wd", [(0.0, False, 0.0), (0.9, True, 1e-3)])
def test_training_with_the_kernel_matches_the_pytorch_path(path, momentum, nesterov, wd):
    x, y, _, _ = _problem(500, 40, 6, seed=2)
    optim = OptimConfig(optimizer="sgd", lr=0.05, momentum=momentum, nesterov=nesterov, weight_decay=wd,
                        batch_size=64, epochs=3, schedule="constant")
    fast, _, _ = fit_features(x, y, optim, seed=4)
    with kernels.disabled():
        slow, _, _ = fit_features(x, y, optim, seed=4)
    torch.testing.assert_close(fast.linear.weight, slow.linear.weight, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.linear.bias, slow.linear.bias, rtol=1e-4, atol=1e-5)


def test_tutorial_recipe_same_accuracy_either_path(path):
    """The tutorial preset reads uint8 pixels in the kernel; the result is the same model."""
    mnist = load_dataset()
    small = type(mnist)(mnist.train_images[:6000], mnist.train_labels[:6000], mnist.test_images,
                        mnist.test_labels, mnist.name)
    config = build_config("tutorial", epochs=2)
    fast = train(config, small)
    with kernels.disabled():
        slow = train(config, small)
    torch.testing.assert_close(fast.model.linear.weight, slow.model.linear.weight, rtol=1e-4, atol=1e-5)
    assert fast.history[-1]["train_accuracy"] == pytest.approx(slow.history[-1]["train_accuracy"], abs=1e-3)


def test_full_batch_works_in_a_forked_child():
    import multiprocessing

    x, y, w, b = _problem(2000, 30, 4)
    expected = softmax_xent_grad(w, b, x, y)[1]  # starts the thread pool in this process
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        # Without the at-fork reset this waits forever on threads the child does not have.
        got = pool.apply_async(softmax_xent_grad, (w, b, x, y)).get(timeout=60)[1]
    assert torch.equal(got, expected)


def test_a_bad_class_count_is_an_error_not_a_divergence(path):
    """The kernel's errors are raised as what they are, not a NaN loss that reads as "lower --lr"."""
    c = kernels._LIB.max_classes + 1
    w, b, x = torch.zeros(c, 16), torch.zeros(c), torch.zeros(4, 16)
    labels = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match=f"takes 1 to {c - 1} classes, got {c}"):
        kernels.grad_sums(w, b, x, labels, torch.empty(c, 16), torch.empty(c))


def test_the_paths_agree_with_each_other():
    """Different vector widths sum in different orders: equal to float rounding, not bit for bit."""
    x, y, w, b = _problem(200, 784, 10, seed=5)
    idx = torch.randperm(200, generator=torch.Generator().manual_seed(2))[:97]
    sums = {}
    for name in kernels.RUNNABLE:
        gw, gb = torch.empty(10, 784), torch.empty(10)
        with kernels.using(name):
            loss = kernels.grad_sums(w, b, x, y[idx], gw, gb, idx=idx)
        sums[name] = (loss, gw, gb)
    first = sums[kernels.RUNNABLE[0]]
    for name, (loss, gw, gb) in sums.items():
        assert loss == pytest.approx(first[0], rel=1e-6), name
        torch.testing.assert_close(gw, first[1], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gb, first[2], rtol=1e-5, atol=1e-5)


def test_a_path_this_cpu_cannot_run_is_refused():
    missing = [p for p in kernels.PATHS if p not in kernels.RUNNABLE]
    with pytest.raises(ValueError, match="cannot run"):
        with kernels.using(missing[0] if missing else "nonsense"):
            pass


_MISSING = [p for p in kernels.PATHS if p not in kernels.RUNNABLE]


@pytest.mark.parametrize("value, needle", [("avx1024", "must be auto, off or one of"),
                                           *([(_MISSING[0], "this CPU cannot run it")] if _MISSING else [])])
def test_the_environment_variable_is_checked(value, needle, tmp_path, monkeypatch):
    """Refused in one line by every command that trains, before PyTorch loads (here any
    import of torch fails), nothing written."""
    from conftest import one_line_error, run_base

    monkeypatch.setenv(kernels.ENV, value)
    for command in (("train", "--out", str(tmp_path / "o")), ("tune", "--trials", "1", "--out", str(tmp_path / "o")),
                    ("bench", "--quick", "--out", str(tmp_path / "o" / "bench.json"))):
        one_line_error(run_base(*command, hide="torch"), f"{kernels.ENV}={value}", needle)
    assert not (tmp_path / "o").exists()


def test_the_path_that_trained_a_run_is_recorded(small_dir, tmp_path):
    from conftest import run_main

    last = kernels.RUNNABLE[-1]  # the generic path: never the default where others exist
    with kernels.using(last):
        proc = run_main("train", "--data-dir", str(small_dir), "--out", str(tmp_path / "r"), "--epochs", "1",
                        "--preset", "tutorial")
    assert proc.returncode == 0, proc.stderr
    import json

    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["kernel"] == last
    with kernels.disabled():
        run_main("train", "--data-dir", str(small_dir), "--out", str(tmp_path / "p"), "--epochs", "1",
                 "--preset", "tutorial")
    assert json.loads((tmp_path / "p" / "metrics.json").read_text())["kernel"] == "off"


def _check_kernel(compiler: str, run: list[str], tmp_path) -> str:
    """Build tests/kernel_check.c (the kernel without Python) with ``compiler``, run it, return its report."""
    import shutil
    import subprocess
    from pathlib import Path

    if not shutil.which(compiler) or (run and not shutil.which(run[0])):
        pytest.skip(f"{compiler} or {run[0] if run else ''} not installed (.ci/run installs them)")
    exe = tmp_path / "kernel_check"
    source = Path(__file__).with_name("kernel_check.c")
    build = subprocess.run([compiler, "-O3", "-o", str(exe), str(source), "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    proc = subprocess.run([*run, str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_neon_path_under_an_emulator(tmp_path):
    """NEON cannot run on this x86 machine: the kernel is built for aarch64 and run under
    qemu, its NEON path against its generic path (gradients, exact uint8 conversion)."""
    out = _check_kernel("aarch64-linux-gnu-gcc", ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"], tmp_path)
    print(out)
    assert "path 3:" in out and "MISMATCH" not in out  # 3: NEON


def test_the_standalone_check_passes_here(tmp_path):
    out = _check_kernel("gcc", [], tmp_path)
    assert out.count(": ok") == len(kernels.RUNNABLE)


def test_info_says_which_path_trains_and_why(monkeypatch):
    from conftest import run_main

    proc = run_main("info")
    assert proc.returncode == 0, proc.stderr
    assert f"kernel: {kernels.active()} (" in proc.stdout and kernels.ENV in proc.stdout
