"""updates.py against torch.optim, step for step, from gradient sums over batches of n rows."""

import pytest
import torch

from mnist_logreg.config import OptimConfig
from mnist_logreg.training.updates import make_update


def _steps(update_of, reference_of, steps=6, n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    w0, b0 = torch.randn(4, 7, generator=g), torch.randn(4, generator=g)
    ours_w, ours_b = w0.clone(), b0.clone()
    ref_w, ref_b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    update, reference = update_of(ours_w, ours_b), reference_of(ref_w, ref_b)
    for step in range(steps):
        gw, gb = torch.randn(4, 7, generator=g) * n, torch.randn(4, generator=g) * n  # sums over n rows
        lr = 0.1 / (1 + step)  # a schedule: the rate may change every step
        update.step(gw.clone(), gb.clone(), n, lr)
        for group in reference.param_groups:
            group["lr"] = lr
        ref_w.grad, ref_b.grad = gw / n, gb / n
        reference.step()
    torch.testing.assert_close(ours_w, ref_w.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours_b, ref_b.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("momentum, nesterov, wd", [(0.0, False, 0.0), (0.0, False, 0.01), (0.9, False, 0.0),
                                                    (0.9, True, 0.003), (0.5, True, 0.0)])
def test_sgd_is_torch_optim_sgd_with_an_undecayed_bias(momentum, nesterov, wd):
    optim = OptimConfig(optimizer="sgd", momentum=momentum, nesterov=nesterov, weight_decay=wd)
    _steps(lambda w, b: make_update(optim, w, b),
           lambda w, b: torch.optim.SGD([{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}],
                                        lr=0.1, momentum=momentum, nesterov=nesterov))


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adam_is_torch_optim_adam_with_an_undecayed_bias(name, cls, wd):
    optim = OptimConfig(optimizer=name, lr=0.1, weight_decay=wd)
    _steps(lambda w, b: make_update(optim, w, b),
           lambda w, b: cls([{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}], lr=0.1))


def test_lbfgs_has_no_minibatch_update():
    with pytest.raises(ValueError, match="lbfgs"):
        make_update(OptimConfig(optimizer="lbfgs", lr=1.0), torch.zeros(2, 2), torch.zeros(2))
