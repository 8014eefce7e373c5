"""Which path of the fused C kernel training runs, from ``$MNIST_LOGREG_KERNEL`` and what
this CPU runs: without PyTorch, so that the command line refuses a bad value before
PyTorch loads (seconds), and ``kernels`` binds the path chosen here."""

from __future__ import annotations

import ctypes
import os

# Path numbers of _kernels.c, and the order ``auto`` prefers them in. The generic path
# (SSE2 on x86-64) comes before PyTorch's ops although on this AVX-512 machine it is
# slower on the tutorial recipe (0.51 s against 0.38 s, against PyTorch's AVX-512 BLAS):
# it is faster on the default recipe (3.5 s against 4.3 s), and a CPU with neither AVX2
# nor NEON has no AVX-512 BLAS either.
PATHS = ("generic", "avx2", "avx512", "neon")
PREFERENCE = ("avx512", "neon", "avx2", "generic")
ENV = "MNIST_LOGREG_KERNEL"  # auto (default), one of PATHS, or off (PyTorch ops)


def _open() -> ctypes.CDLL | None:
    try:
        from . import _kernels
    except ImportError:
        return None
    return ctypes.CDLL(_kernels.__file__)


CDLL = _open()
# The paths this CPU runs (empty without the compiled library), best first.
RUNNABLE: tuple[str, ...] = () if CDLL is None else tuple(
    p for p in PREFERENCE if CDLL.mlr_paths() >> PATHS.index(p) & 1)


def choose() -> tuple[str, str]:
    """(path, why) from ``$MNIST_LOGREG_KERNEL`` and what this CPU runs; path "off": PyTorch ops."""
    from ..errors import ConfigError

    asked = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if os.environ.get("MNIST_LOGREG_NO_KERNELS"):  # the older switch, kept
        asked = "off"
    if asked not in ("auto", "off", *PATHS):
        raise ConfigError(f"{ENV}={asked}: must be auto, off or one of {', '.join(PATHS)}")
    if asked == "off":
        return "off", f"{ENV}=off"
    if CDLL is None:
        if asked != "auto":
            raise ConfigError(f"{ENV}={asked}: the C kernel was not built (no C compiler at install time)")
        return "off", "the C kernel was not built (no C compiler at install time): PyTorch ops"
    if asked == "auto":
        return RUNNABLE[0], f"the fastest path this CPU runs (it runs: {', '.join(RUNNABLE)})"
    if asked not in RUNNABLE:
        raise ConfigError(f"{ENV}={asked}: this CPU cannot run it (it runs: {', '.join(RUNNABLE)})")
    return asked, f"{ENV}={asked}"
