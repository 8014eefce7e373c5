"""Gradient engines: a minibatch's gradient *sums*, one implementation per way of computing them.

``train.py`` asks ``engine_for`` once per run and then only calls ``start_epoch`` and
``sums``: which path runs (the C kernel's, on whichever instruction set ``kernels``
chose, or PyTorch's own ops) is decided here, and a new path is one more class.

For logits z = W x + b and p = softmax(z), a row's gradient is (p - y) x^T for W and
p - y for b; ``sums`` adds them over the batch's rows (the caller divides by the batch size).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from . import kernels


class KernelEngine:
    """The fused C kernel: logits, softmax and gradient sums in one pass over the rows.

    It reads the rows of ``table`` in place through their indices (no gathered copy),
    or, without a table, the rows ``batch(idx)`` gives.
    """

    def __init__(self, w: torch.Tensor, labels: torch.Tensor, batch: Callable, table: torch.Tensor | None):
        self.name = kernels.active()
        self.labels, self.batch, self.table = labels, batch, table
        self.gw, self.gb = torch.empty_like(w), torch.empty(w.shape[0], dtype=w.dtype, device=w.device)
        self.targets = labels

    def start_epoch(self, perm: torch.Tensor) -> None:
        self.targets = self.labels.index_select(0, perm)  # one gather per epoch; per step a free slice

    def sums(self, w: torch.Tensor, b: torch.Tensor, idx: torch.Tensor, start: int) -> tuple[torch.Tensor, ...]:
        """Gradient sums (gw [C, D], gb [C]) over rows ``idx``, the batch at ``start`` of this
        epoch's permutation. The tensors are reused by the next call."""
        labels = self.targets[start:start + idx.numel()]
        if self.table is not None:
            kernels.grad_sums(w, b, self.table, labels, self.gw, self.gb, idx=idx)
        else:
            kernels.grad_sums(w, b, self.batch(idx).contiguous(), labels, self.gw, self.gb)
        return self.gw, self.gb


class TorchEngine:
    """PyTorch's own ops, in the class-major layout ``W @ x.T``: with only 10 outputs it runs
    about twice as fast as ``x @ W.T`` (the per-step tensors are [C, B])."""

    name = "off"

    def __init__(self, w: torch.Tensor, labels: torch.Tensor, batch: Callable, n_classes: int):
        self.batch = batch
        self.onehot_t = F.one_hot(labels, n_classes).to(w.dtype).t().contiguous()
        self.targets = self.onehot_t

    def start_epoch(self, perm: torch.Tensor) -> None:
        self.targets = self.onehot_t.index_select(1, perm)

    def sums(self, w: torch.Tensor, b: torch.Tensor, idx: torch.Tensor, start: int) -> tuple[torch.Tensor, ...]:
        x = self.batch(idx)
        g = torch.softmax(torch.addmm(b.view(-1, 1), w, x.t()), dim=0).sub_(self.targets[:, start:start + idx.numel()])
        return torch.mm(g, x), g.sum(dim=1)


def engine_for(w: torch.Tensor, labels: torch.Tensor, batch: Callable, table: torch.Tensor | None,
               n_classes: int) -> KernelEngine | TorchEngine:
    """The kernel where it can take these rows and weights (``kernels.usable``), else PyTorch's ops.

    ``batch(idx)`` gives the features of rows ``idx``; ``table``, when given, is what it
    gathers from (``batch(idx) == table[idx]``, features or uint8 pixels / 255).
    """
    if kernels.path_for(table if table is not None else w.new_empty(0, w.shape[1]), w) != "off":
        return KernelEngine(w, labels, batch, table)
    return TorchEngine(w, labels, batch, n_classes)
