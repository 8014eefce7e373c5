"""Each gradient engine's batch sums against autograd (float64), on every path this CPU runs."""

import pytest
import torch
import torch.nn.functional as F

from mnist_logreg.training import kernels
from mnist_logreg.training.gradients import KernelEngine, TorchEngine, engine_for


@pytest.mark.parametrize("path", [*kernels.RUNNABLE, "off"])
@pytest.mark.parametrize("with_table", [True, False])
def test_batch_sums_equal_autograd(path, with_table):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(90, 30, generator=g), torch.randint(0, 6, (90,), generator=g)
    w, b = torch.randn(6, 30, generator=g) * 0.2, torch.randn(6, generator=g)
    perm = torch.randperm(90, generator=g)
    with kernels.using(path):
        engine = engine_for(w, y, lambda idx: x.index_select(0, idx), x if with_table else None, 6)
    assert isinstance(engine, TorchEngine if path == "off" else KernelEngine) and engine.name == path
    with kernels.using(path):
        engine.start_epoch(perm)
        start, idx = 40, perm[40:72]  # the second batch of 32 in this epoch's order
        gw, gb = (t.clone() for t in engine.sums(w, b, idx, start))
    wd, bd = w.double().requires_grad_(), b.double().requires_grad_()
    F.cross_entropy(x[idx].double() @ wd.t() + bd, y[idx], reduction="sum").backward()
    torch.testing.assert_close(gw.double(), wd.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gb.double(), bd.grad, rtol=1e-5, atol=1e-5)


def test_pytorch_ops_where_the_kernel_cannot_take_the_rows():
    w, y = torch.zeros(3, 8, dtype=torch.float64), torch.zeros(5, dtype=torch.int64)
    assert isinstance(engine_for(w, y, lambda idx: None, None, 3), TorchEngine)  # float64: not the kernel's
