"""What this machine offers the process: the CPU cores it may run on."""

from __future__ import annotations

import os


def cores() -> int:
    """CPU cores this process may use (its affinity where the OS has one, else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
