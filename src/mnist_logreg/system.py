"""What this machine offers the process: the CPU cores it may run on, and how a reader's
process keeps its freed memory."""

from __future__ import annotations

import os


def cores() -> int:
    """CPU cores this process may use (its affinity where the OS has one, else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# Freed memory the process keeps for its next image. Reading a 640x480 photo peaks at about
# 15 MB of arrays of 2.4 MB (``images._ink``); glibc's own thresholds follow the largest
# block freed so far, and after a run of small ones gave those 15 MB back to the system
# every photo and took them again, zeroed a page at a time: about 4,600 page faults a
# touching 5-digit photo, 38-40 ms against 29-31 ms kept (benchmarks/read_numbers.py --speed).
KEEP_FREED = 64 << 20


def keep_freed_memory() -> bool:
    """Keep up to ``KEEP_FREED`` bytes of freed memory in the process, and serve arrays of up
    to 32 MB from it rather than from fresh pages (glibc's ``mallopt``; a reader's process,
    ``predict`` and ``serve``, not the library: the setting is process-wide). Whether it
    was set: False on another C library or system."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # 32 MB: glibc's largest mmap threshold on 64 bits; above it, a block still comes from mmap.
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED))
