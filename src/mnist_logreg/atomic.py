"""Atomic file writes: a reader sees the old file or the new one, never half of one.

What the system refuses (disk full, permission denied, a path that is a file) becomes a
``FileSystemError`` naming the file and the reason, which the CLI prints as one line; the
temporary files are removed first, so nothing half-written is left behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import FileSystemError


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def make_folder(folder: str | os.PathLike) -> Path:
    """``mkdir -p``, with the system's refusal as a ``FileSystemError``."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FileSystemError(f"cannot create folder {folder}: a file of that name is in the way") from None
    except OSError as exc:
        raise FileSystemError(f"cannot create folder {folder}: {_reason(exc)}") from None
    return folder


def _temp_beside(path: Path) -> str:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise FileSystemError(f"cannot write {path}: {_reason(exc)}") from None
    os.close(fd)
    return tmp


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def _write_synced(tmp: str, path: Path, write: Callable[[str], None]) -> None:
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        raise FileSystemError(f"cannot write {path}: {_reason(exc)}") from None


def check_writable(path: str | os.PathLike) -> Path:
    """Refuse now, in one line, a ``path`` that could not be written later (its folder
    missing and not creatable, not writable, a file in the way): a probe file is created
    beside it and removed. For commands that work for minutes before they write."""
    path = Path(path)
    if path.is_dir():
        raise FileSystemError(f"cannot write {path}: it is a folder")
    make_folder(path.parent)
    _discard(_temp_beside(path))
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it.

    The temporary file lives in the same folder so ``os.replace`` is a rename on one
    file system (atomic on POSIX). On any error the temporary file is removed.
    """
    path = Path(path)
    make_folder(path.parent)
    tmp = _temp_beside(path)
    try:
        _write_synced(tmp, path, write)
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    return path


def atomic_write_files(files: dict[Path, bytes]) -> None:
    """Write several files so that either all are replaced or none is.

    Every file is written and synced under a temporary name first; only when all of them
    are on disk are they renamed into place, in the order given (so a marker file last
    means the others are complete). A full disk half-way leaves the old files untouched.
    """
    temps: dict[Path, str] = {}
    try:
        for path, data in files.items():
            make_folder(path.parent)
            temps[path] = _temp_beside(path)
            _write_synced(temps[path], path, lambda tmp, data=data: Path(tmp).write_bytes(data))
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps.values():
            _discard(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    atomic_write_files({Path(path): data})
    return Path(path)


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, json_bytes(obj))
