"""Parameter updates from a minibatch's gradient *sums*: SGD (momentum, Nesterov) and Adam.

The trainer hands over sums over a batch of ``n`` rows (what the gradient engines give)
and the step's learning rate. The maths is ``torch.optim.SGD``'s and ``torch.optim.Adam``
/ ``AdamW``'s, with the bias never decayed (as in scikit-learn); tests/test_updates.py
checks each against ``torch.optim`` step for step. SGD is written out: ``torch.optim``'s
per-step dispatch costs about as much as the arithmetic at batch size 100.
"""

from __future__ import annotations

import torch

from ..config import OptimConfig


class SGD:
    """torch.optim.SGD's update, weight decay on ``w`` only."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor, momentum: float, nesterov: bool, weight_decay: float):
        self.w, self.b = w, b
        self.momentum, self.nesterov, self.wd = momentum, nesterov, weight_decay
        self.buffers = (torch.zeros_like(w), torch.zeros_like(b)) if momentum else None
        self.steps = 0

    def step(self, gw: torch.Tensor, gb: torch.Tensor, n: int, lr: float) -> None:
        """``gw``, ``gb``: gradient sums over ``n`` rows, shaped like ``w`` and ``b`` (overwritten)."""
        w, b = self.w, self.b
        if self.buffers is None:  # plain SGD: two fused in-place ops per tensor
            if self.wd:
                w.mul_(1 - lr * self.wd)
            w.sub_(gw, alpha=lr / n)
            b.sub_(gb, alpha=lr / n)
        else:
            gw, gb = gw.div_(n), gb.div_(n)
            if self.wd:
                gw.add_(w, alpha=self.wd)
            for param, grad, buf in ((w, gw, self.buffers[0]), (b, gb, self.buffers[1])):
                if self.steps == 0:
                    buf.copy_(grad)
                else:
                    buf.mul_(self.momentum).add_(grad)
                param.sub_(grad.add(buf, alpha=self.momentum) if self.nesterov else buf, alpha=lr)
        self.steps += 1


class Adam:
    """torch.optim.Adam or AdamW itself (its per-step cost matters less: Adam is not the default)."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor, decoupled: bool, lr: float, weight_decay: float):
        self.w, self.b = w, b
        cls = torch.optim.AdamW if decoupled else torch.optim.Adam
        # The bias is not penalised (as in scikit-learn), so it gets its own group.
        self.opt = cls([{"params": [w], "weight_decay": weight_decay}, {"params": [b], "weight_decay": 0.0}],
                       lr=lr)

    def step(self, gw: torch.Tensor, gb: torch.Tensor, n: int, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.w.grad, self.b.grad = gw.div_(n), gb.div_(n)
        self.opt.step()


def make_update(optim: OptimConfig, w: torch.Tensor, b: torch.Tensor) -> SGD | Adam:
    """The update ``optim`` names, for parameters ``w`` and ``b`` (updated in place)."""
    if optim.optimizer in ("adam", "adamw"):
        return Adam(w, b, optim.optimizer == "adamw", optim.lr, optim.weight_decay)
    if optim.optimizer == "sgd":
        return SGD(w, b, optim.momentum, optim.nesterov, optim.weight_decay)
    raise ValueError(f"no minibatch update for {optim.optimizer!r}")
