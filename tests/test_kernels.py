"""The C kernel against autograd (float64) and against the PyTorch path it stands in for."""

import pytest
import torch
import torch.nn.functional as F

from mnist_logreg import build_config, kernels, train
from mnist_logreg.config import OptimConfig
from mnist_logreg.data import load_dataset
from mnist_logreg.preprocess import to_float
from mnist_logreg.train import fit_features, softmax_xent_grad

pytestmark = pytest.mark.skipif(not kernels.available(), reason="C kernel not built or no AVX-512 here")


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
def test_gradient_sums_equal_autograd(n, d, c, indexed):
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


def test_uint8_rows_give_exactly_the_float_features():
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


def test_full_batch_is_the_same_on_any_number_of_threads():
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
def test_training_with_the_kernel_matches_the_pytorch_path(monkeypatch, momentum, nesterov, wd):
    x, y, _, _ = _problem(500, 40, 6, seed=2)
    optim = OptimConfig(optimizer="sgd", lr=0.05, momentum=momentum, nesterov=nesterov, weight_decay=wd,
                        batch_size=64, epochs=3, schedule="constant")
    fast, _, _ = fit_features(x, y, optim, seed=4)
    monkeypatch.setattr(kernels, "_LIB", None)
    slow, _, _ = fit_features(x, y, optim, seed=4)
    torch.testing.assert_close(fast.linear.weight, slow.linear.weight, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.linear.bias, slow.linear.bias, rtol=1e-4, atol=1e-5)


def test_tutorial_recipe_same_accuracy_either_path(monkeypatch):
    """The tutorial preset reads uint8 pixels in the kernel; the result is the same model."""
    mnist = load_dataset()
    small = type(mnist)(mnist.train_images[:6000], mnist.train_labels[:6000], mnist.test_images,
                        mnist.test_labels, mnist.name)
    config = build_config("tutorial", epochs=2)
    fast = train(config, small)
    monkeypatch.setattr(kernels, "_LIB", None)
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


def test_a_bad_class_count_is_an_error_not_a_divergence():
    """The kernel's errors are raised as what they are, not a NaN loss that reads as "lower --lr"."""
    if not kernels.available():
        pytest.skip("the C kernel is not built or this CPU lacks AVX-512")
    c = kernels._LIB.max_classes + 1
    w, b, x = torch.zeros(c, 16), torch.zeros(c), torch.zeros(4, 16)
    labels = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match=f"takes 1 to {c - 1} classes, got {c}"):
        kernels.grad_sums(w, b, x, labels, torch.empty(c, 16), torch.empty(c))
