"""Reading and writing IDX files, the format MNIST is published in.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order. We only
need unsigned bytes (type 0x08), which is what every MNIST-style dataset uses.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import DataError

UBYTE_TYPE = 0x08
MAX_DIMS = 4
GZIP_MAGIC = b"\x1f\x8b"


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The decompressed bytes of an IDX file (``.gz`` detected by content, not name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    return decompress(raw, str(path)) if raw[:2] == GZIP_MAGIC else raw


def decompress(gz: bytes, name: str) -> bytes:
    """gunzip, with a corrupt archive reported as a ``DataError`` naming the file."""
    try:
        return gzip.decompress(gz)
    except (OSError, EOFError) as exc:
        raise DataError(f"{name}: corrupt gzip data ({exc})") from None


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse decompressed IDX bytes into a uint8 array, validating the header."""
    if len(raw) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(raw)} bytes)")
    zero1, zero2, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0:
        raise DataError(f"{name}: bad IDX magic number {raw[:4].hex()} (must start with 0000)")
    if type_code != UBYTE_TYPE:
        raise DataError(f"{name}: unsupported IDX data type 0x{type_code:02x} (only unsigned bytes, 0x08)")
    if ndim == 0:
        raise DataError(f"{name}: IDX file declares zero dimensions")
    if ndim > MAX_DIMS:
        raise DataError(f"{name}: IDX file declares {ndim} dimensions (MNIST-format files have 1 for labels, "
                        f"3 for images)")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} bytes, need {header_len})")
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected = header_len + math.prod(dims)  # exact: numpy's int64 product wraps past 2**63
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: {kind}: header says {'x'.join(map(str, dims))} "
            f"({expected} bytes) but the file holds {len(raw)} bytes"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)
    # frombuffer gives a read-only view of `raw`; a copy owns writable memory.
    return array.copy()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a uint8 array with the file's dimensions."""
    return parse_idx(read_idx_bytes(path), str(path))


def encode_idx(array) -> bytes:
    """The IDX bytes of a uint8 array (or a PyTorch tensor on the CPU)."""
    array = np.asarray(array.detach().cpu() if hasattr(array, "detach") else array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX writer supports uint8 arrays only, got {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"cannot write a {array.ndim}-dimensional array as IDX")
    header = bytes([0, 0, UBYTE_TYPE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_idx(path: str | os.PathLike, array, compress: bool | None = None) -> Path:
    """Write a uint8 array (or tensor) as IDX, gzip-compressed when the name ends in ``.gz``.

    The file appears atomically (written to a temporary name, then renamed).
    """
    path = Path(path)
    data = encode_idx(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write_bytes(path, data)
    return path
