"""An on-disk cache of what every run recomputes: the parsed dataset, the preprocessed features.

Deskewing and moment-normalising MNIST's 60,000 training images costs 1.5 to 2.3 s here
(one ``grid_sample`` per image, float64 moments), every run, for the same result;
gunzipping and checksumming the dataset another 0.35 s. Reading them back costs about
0.05 s each. Measured before choosing: making the preprocessing itself fast enough was
the other option, but PyTorch's ``grid_sample`` is the bulk of it and the exported models
must run that very op, so the results are cached instead.

An entry is one file named by a digest of its key (the digests of the input bytes, the
settings, the torch version), holding raw tensors and a JSON header with each tensor's
CRC-32; no pickle. It is written to a temporary file and renamed, so two runs that start
together each write a whole file and the last rename wins; a reader sees a whole file or
none. A file that fails its checks (damaged, truncated, another key) is ignored and
rebuilt. A cache that cannot be written (disk full, read-only) costs the run nothing but a
log line. The folder is ``$MNIST_LOGREG_CACHE/cache`` (default
``~/.cache/mnist-logreg/cache``); it is kept under 4 GiB (least recently used entries go
first) and may be deleted at any time. ``MNIST_LOGREG_NO_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

from .atomic import new_folder
from .errors import FileSystemError

log = logging.getLogger(__name__)

MAGIC = b"mnist-logreg cache 1\n"
_LEN = struct.Struct("<Q")
# The folder is kept under this size: after each write the least recently used entries go
# (a default run on MNIST takes about 1.9 GB with its damaged copies: five candidates'
# features of 110,000 rows; under 2 GiB, they pushed out the copies they were made from,
# which then took half a minute to read again on every run; a tuning study can add one
# entry per setting).
MAX_BYTES = 4 << 30
ALIGN = 64  # every tensor starts on a 64-byte boundary of the file (and so of the buffer read)
# (PyTorch is imported where entries are encoded and decoded, by training: cache_dir() is
# also what the NumPy-only data sources use, for a downloaded dataset's folder.)
_DTYPES = ("float32", "float64", "uint8", "int64")


def cache_dir() -> Path:
    """``$MNIST_LOGREG_CACHE`` or ``$XDG_CACHE_HOME/mnist-logreg`` (``~/.cache/mnist-logreg``).

    Downloaded datasets go there too (``data.datasets``), each in a folder of its name.
    """
    env = os.environ.get("MNIST_LOGREG_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-logreg"


def cache_root() -> Path:
    """Where the entries live: ``cache_dir()/cache``."""
    return cache_dir() / "cache"


def enabled() -> bool:
    return os.environ.get("MNIST_LOGREG_NO_CACHE", "") in ("", "0")


def entry_path(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return cache_root() / f"{digest}.bin"


def encode(key: dict, entry: dict) -> list[bytes | memoryview]:
    """The file's parts: magic, header length, JSON header, then each tensor's raw bytes.

    ``entry`` maps names to tensors, or to JSON values (kept in the header as ``meta``).

    The header is padded with spaces and the tensors with zeros so that each tensor
    starts on an ``ALIGN`` boundary: ``decode`` then views them in place, aligned.
    """
    import torch

    entries, blobs, offset = [], [], 0
    tensors = {k: v for k, v in entry.items() if isinstance(v, torch.Tensor)}
    meta = {k: v for k, v in entry.items() if k not in tensors}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        data = t.view(torch.uint8).reshape(-1).numpy().data if t.numel() else memoryview(b"")
        entries.append({"name": name, "dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                        "offset": offset, "nbytes": data.nbytes, "crc32": zlib.crc32(data)})
        pad = -data.nbytes % ALIGN
        blobs += [data, bytes(pad)]
        offset += data.nbytes + pad
    header = json.dumps({"key": key, "tensors": entries, "length": offset, "meta": meta}, sort_keys=True).encode()
    header += b" " * (-(len(MAGIC) + _LEN.size + len(header)) % ALIGN)
    return [MAGIC, _LEN.pack(len(header)), header, *blobs]


def decode(raw, key: dict) -> dict:
    """The entry in a cache file's bytes (any writable buffer), its tensors viewing them in place.

    ``ValueError`` if anything does not check out: magic, key, lengths, each CRC-32.
    """
    import torch

    if len(raw) < len(MAGIC) + _LEN.size or raw[:len(MAGIC)] != MAGIC:
        raise ValueError("not a cache file")
    start = len(MAGIC) + _LEN.size
    (n,) = _LEN.unpack_from(raw, len(MAGIC))
    header = json.loads(bytes(raw[start:start + n]))
    if header.get("key") != key:
        raise ValueError("written for another key")
    body = memoryview(raw)[start + n:]
    out = dict(header["meta"])
    for e in header["tensors"]:
        chunk = body[e["offset"]:e["offset"] + e["nbytes"]]
        if len(chunk) != e["nbytes"] or zlib.crc32(chunk) != e["crc32"]:
            raise ValueError(f"tensor {e['name']} is damaged")
        if e["dtype"] not in _DTYPES:
            raise ValueError(f"tensor {e['name']} has an unknown dtype {e['dtype']!r}")
        dtype = getattr(torch, e["dtype"])
        flat = torch.frombuffer(chunk, dtype=dtype) if e["nbytes"] else torch.empty(0, dtype=dtype)
        out[e["name"]] = flat.view(e["shape"])
    if len(body) != header["length"]:
        raise ValueError(f"{len(body)} bytes of tensors, expected {header['length']}")
    return out


def load(key: dict) -> dict | None:
    """The entry's tensors, viewing a private (copy-on-write) mapping of the file.

    Mapping instead of reading: 45 ms for MNIST's 188 MB of features against 170 to 240 ms
    for a read into memory (measured here). Entries are only ever replaced by a rename,
    never rewritten in place, so a mapped file cannot change under the tensors.
    """
    path = entry_path(key)
    try:
        with open(path, "rb") as fh:
            raw = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
        entry = decode(raw, key)
        os.utime(path)  # used now: the last to be pruned
        return entry
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        log.warning("ignoring the cache file %s (%s); rebuilding it", path, exc)
        return None


_STORE_LOCK = threading.Lock()


def store(key: dict, entry: dict) -> Path | None:
    """Write an entry (temporary file, then rename); on failure log it and return None.

    No fsync: a file cut short by a crash fails its checks and is rebuilt, and the
    cache is not worth a second of the user's time.
    """
    path = entry_path(key)
    try:
        # One writer at a time in this process: --select trains its candidates on threads,
        # and on a full disk two writers' folder clean-ups crossed (the first could not
        # remove the folder while the second's temporary file was in it; the second had
        # not made it), leaving an empty folder behind about one time in five.
        with _STORE_LOCK, new_folder(path.parent):  # removed again if the entry cannot be written
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    for part in encode(key, entry):
                        fh.write(part)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)  # before new_folder removes the folder
                raise
        prune(path.parent, keep=path)
        return path
    except (OSError, FileSystemError) as exc:
        log.warning("cannot write the cache file %s (%s); the run goes on without it", path,
                    getattr(exc, "strerror", None) or exc)
        return None


def prune(folder: Path, keep: Path, max_bytes: int = MAX_BYTES) -> None:
    """Remove the least recently used entries until the folder holds at most ``max_bytes``.

    Safe beside other runs: a file removed while another process has it mapped stays
    readable there, and a file another process removed first is simply skipped.
    """
    entries = []
    for path in folder.glob("*.bin"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        if path == keep:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        total -= size


def cached(key: dict, build: Callable[[], dict]) -> dict:
    """The entry stored under ``key`` (tensors and JSON values), or ``build()``'s, stored for next time."""
    if not enabled():
        return build()
    found = load(key)
    if found is not None:
        log.info("read from the cache: %s", entry_path(key))
        return found
    entry = build()
    store(key, entry)
    return entry
