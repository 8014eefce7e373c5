"""The fused C kernel for the CPU (``_kernels.c``, whose header says why and how), loaded
with ctypes.

``train.py`` asks ``usable()`` and otherwise computes the same gradient with PyTorch ops.
The path (AVX-512, AVX2, NEON, generic) is the best this CPU runs, or the one
``$MNIST_LOGREG_KERNEL`` names (``auto``, a path, or ``off`` for PyTorch ops); ``active()``
and ``WHY`` say which and why.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import torch

from .kernel_choice import CDLL as _CDLL
from .kernel_choice import ENV, PATHS, PREFERENCE, RUNNABLE  # noqa: F401 (the names callers use)
from .kernel_choice import choose as _choose
from .preprocess import PIXEL_MAX

# The full-batch gradient goes in this many equal row ranges (fixed, so the sum's order
# does not depend on the thread count): enough for any thread count to share evenly.
PARTS = 16
_BAD_CLASSES = -1.0  # MLR_BAD_CLASSES in _kernels.c (MLR_NO_MEMORY is -2)
_NO_PATH = -3.0  # MLR_NO_PATH


class _Lib:
    """The compiled library, bound to one path."""

    def __init__(self, cdll: ctypes.CDLL, path: str):
        p, i32, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
        self.path, self.code = path, PATHS.index(path)
        self.grad = cdll.mlr_softmax_xent_grad
        self.grad.argtypes = [i32, p, p, i64, i64, p, p, i64, p, p, p]
        self.grad.restype = ctypes.c_double
        self.grad_u8 = cdll.mlr_softmax_xent_grad_u8
        self.grad_u8.argtypes = [i32, p, p, i64, i64, p, p, i64, p, p, p]
        self.grad_u8.restype = ctypes.c_double
        self.max_classes = cdll.mlr_max_classes()
        # The uint8 path must give exactly the features the PyTorch path makes
        # (``to_float``); it is used only if it does, for all 256 pixel values.
        u = torch.arange(256, dtype=torch.uint8)
        out = torch.empty(256)
        cdll.mlr_u8_to_f32.argtypes = [i32, p, i64, p]
        cdll.mlr_u8_to_f32.restype = ctypes.c_double
        cdll.mlr_u8_to_f32(self.code, u.data_ptr(), 256, out.data_ptr())
        self.u8_exact = torch.equal(out, torch.div(u, PIXEL_MAX))


_ACTIVE, WHY = _choose()
_LIBS: dict[str, _Lib] = {}


def _bind(path: str) -> _Lib | None:
    if path == "off":
        return None
    if path not in _LIBS:
        _LIBS[path] = _Lib(_CDLL, path)
    return _LIBS[path]


_LIB = _bind(_ACTIVE)
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


def _forget_pool() -> None:
    global _POOL
    _POOL = None  # a forked child has none of the parent's threads: start afresh


os.register_at_fork(after_in_child=_forget_pool)


def active() -> str:
    """The path training uses now: one of ``PATHS``, or "off" (PyTorch ops)."""
    return "off" if _LIB is None else _LIB.path


@contextlib.contextmanager
def using(path: str):
    """Within the block, the kernel runs ``path`` ("off": PyTorch ops). For the tests and
    the benchmark, which compare the paths in one process."""
    global _LIB
    if path != "off" and path not in RUNNABLE:
        raise ValueError(f"this CPU cannot run the {path} path (it runs: {', '.join(RUNNABLE) or 'none'})")
    saved, _LIB = _LIB, _bind(path)
    try:
        yield
    finally:
        _LIB = saved


def disabled():
    """Within the block, everything runs on the PyTorch path (the benchmark's comparison row)."""
    return using("off")


def available() -> bool:
    """Whether training uses the C kernel now (built, and a path this CPU runs)."""
    return _LIB is not None


def usable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the kernel can take rows of ``x`` with weights ``weight`` as they are.

    ``x`` is float32 features, or uint8 pixels whose features are pixel / 255.
    """
    return (_LIB is not None and x.device.type == "cpu" and weight.device.type == "cpu"
            and (x.dtype == torch.float32 or (x.dtype == torch.uint8 and _LIB.u8_exact))
            and weight.dtype == torch.float32 and x.dim() == 2 and x.is_contiguous()
            and weight.is_contiguous() and 1 <= weight.shape[0] <= _LIB.max_classes
            and weight.shape[1] == x.shape[1])


def path_for(x: torch.Tensor, weight: torch.Tensor) -> str:
    """The path that computes gradients for rows ``x`` and weights ``weight``: the active
    kernel path where ``usable``, else "off" (PyTorch's ops)."""
    return active() if usable(x, weight) else "off"


def grad_sums(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, labels: torch.Tensor,
              gw: torch.Tensor, gb: torch.Tensor, idx: torch.Tensor | None = None) -> float:
    """Summed cross-entropy of rows ``idx`` of ``x`` (all rows if None) with ``labels``
    (one per row taken), writing the gradient *sums* into ``gw`` [C, D] and ``gb`` [C].

    One thread; the caller checked ``usable``. ``labels``/``idx`` are contiguous int64.
    """
    if labels.dtype != torch.int64 or (idx is not None and idx.dtype != torch.int64):
        raise TypeError("kernels.grad_sums: labels and idx must be int64")
    n = labels.numel() if idx is None else idx.numel()
    args = (x.data_ptr(), None if idx is None else idx.data_ptr(), n, x.shape[1], weight.data_ptr(),
            bias.data_ptr(), weight.shape[0], labels.data_ptr(), gw.data_ptr(), gb.data_ptr())
    loss = (_LIB.grad_u8 if x.dtype == torch.uint8 else _LIB.grad)(_LIB.code, *args)
    if loss < 0:  # the kernel's errors (_kernels.c); NaN or inf is divergence, for the caller to report
        if loss == _NO_PATH:
            raise RuntimeError(f"the C kernel's {_LIB.path} path cannot run on this CPU")
        if loss == _BAD_CLASSES:
            raise ValueError(f"the C kernel takes 1 to {_LIB.max_classes} classes, got {weight.shape[0]}")
        raise MemoryError("the C kernel could not allocate its scratch buffer")
    return loss


def softmax_xent_grad(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor,
                      labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed loss and the gradients of the mean loss over all rows, on every core."""
    global _POOL, _POOL_SIZE
    n, (c, d) = x.shape[0], weight.shape
    labels = labels.to(torch.int64).contiguous()
    bounds = [n * k // PARTS for k in range(PARTS + 1)]
    # One small tensor per part, not rows of one big one: measured 15% faster here (a big
    # fresh allocation is page-faulted in by the workers, mid-kernel).
    gws = [torch.empty(c, d) for _ in range(PARTS)]
    gbs = [torch.empty(c) for _ in range(PARTS)]
    losses = [0.0] * PARTS
    tasks = itertools.count()  # next() on it is atomic under the GIL

    def worker() -> None:
        # Parts go to whichever thread is free (balanced even when a core is busy with
        # something else); each part's sums land in its own slot, added up in order below.
        while (k := next(tasks)) < PARTS:
            lo, hi = bounds[k], bounds[k + 1]
            losses[k] = grad_sums(weight, bias, x[lo:hi], labels[lo:hi], gws[k], gbs[k])

    threads = min(torch.get_num_threads(), PARTS)
    if threads > 1:
        if _POOL is None or _POOL_SIZE < threads:
            _POOL, _POOL_SIZE = ThreadPoolExecutor(threads, thread_name_prefix="mnist-logreg-kernel"), threads
        for helper in [_POOL.submit(worker) for _ in range(threads)]:
            helper.result()
    else:
        worker()
    # Added up one part at a time: each add is too small for PyTorch to hand to its
    # OpenMP threads, whose spinning after a parallel region (milliseconds) would take a
    # core from the next call's workers.
    gw, gb = gws[0], gbs[0]
    for k in range(1, PARTS):
        gw.add_(gws[k])
        gb.add_(gbs[k])
    return torch.tensor(sum(losses), dtype=torch.float32), gw.div_(n), gb.div_(n)
