"""Atomic file writes: a reader sees the old file or the new one, never half of one.

What the system refuses (disk full, permission denied, a path that is a file) becomes a
``FileSystemError`` naming the file and the reason, which the CLI prints as one line; the
temporary files are removed first, so nothing half-written is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def new_folder(folder: str | os.PathLike, keep: bool = True) -> Iterator[Path]:
    """``make_folder`` for a block that fills the folder: if the block fails (or always,
    with ``keep=False``), the folders this call created are removed again (those still
    empty), so a failed command leaves no empty folder behind."""
    folder = Path(folder)
    created = []
    missing = folder
    while not missing.exists() and missing != missing.parent:
        created.append(missing)  # deepest first
        missing = missing.parent
    make_folder(folder)
    ok = False
    try:
        yield folder
        ok = True
    finally:
        if not (ok and keep):
            for made in created:
                try:
                    made.rmdir()
                except OSError:  # not empty (something else is in it now), or already gone
                    break


def check_folder_writable(folder: str | os.PathLike, flag: str) -> Path:
    """Refuse now, in one line, a folder that could not be made or written in (a file in
    the way, no permission, a read-only file system): a probe folder is made in the
    nearest existing folder and removed. For commands that work before they write."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileSystemError(f"{flag} {folder}: exists and is not a folder")
    parent = folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise FileSystemError(f"{flag} {folder}: {parent} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".probe.", dir=parent))
    except OSError as exc:
        raise FileSystemError(f"{flag} {folder}: cannot write in {parent}: {_reason(exc)}") from None
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


def check_writable(path: str | os.PathLike, size: int = 0) -> Path:
    """Refuse now, in one line, a ``path`` that could not be written later (its folder
    missing and not creatable, not writable, a file in the way, no room for ``size``
    bytes): a probe file of that size is written beside it and removed, and so is any
    folder made for it. For commands that work a while before they write."""
    path = Path(path)
    if path.is_dir():
        raise FileSystemError(f"cannot write {path}: it is a folder")
    with new_folder(path.parent, keep=False):
        probe = _temp_beside(path)
        try:
            _write_synced(probe, path, lambda tmp: Path(tmp).write_bytes(b"\0" * size))
        finally:
            _discard(probe)
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it.

    The temporary file lives in the same folder so ``os.replace`` is a rename on one
    file system (atomic on POSIX). On any error the temporary file is removed.
    """
    path = Path(path)
    with new_folder(path.parent):
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
    with contextlib.ExitStack() as folders:
        try:
            for path, data in files.items():
                folders.enter_context(new_folder(path.parent))
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
