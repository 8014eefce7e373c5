"""KaTeX, the math renderer the documentation site and the notebook pages ship with, so
that their formulas are typeset offline (no CDN at reading time).

It comes from npm (one pinned release, its tarball checked against a SHA-256) into
build/katex/ once, and is copied from there beside the pages that need it:

    python scripts/katex.py DEST   # DEST/katex.min.js, katex.min.css, contrib/, fonts/

The site's build hook (scripts/mkdocs_hooks.py) and `make notebooks-html` call it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "katex"
VERSION = "0.16.22"
SHA256 = "e9e0d167db3175481cbadaff38e8d90b130f6a3ddb451a47e43c577fd511f365"  # npm's katex-0.16.22.tgz
# What a page needs: the renderer, its auto-render extension (finds $...$ and \[...\]
# in the page), the stylesheet and the fonts it names.
FILES = ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js")


class KatexError(RuntimeError):
    pass


def fetch() -> Path:
    """build/katex/ with KaTeX's files, fetched with npm when missing; a one-line error
    when npm is missing or the tarball is not the pinned one."""
    if (CACHE / "VERSION").is_file() and (CACHE / "VERSION").read_text() == VERSION:
        return CACHE
    if shutil.which("npm") is None:
        raise KatexError(f"npm is needed once to fetch KaTeX {VERSION} (the docs' math renderer): "
                         "apt-get install -y npm")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(["npm", "pack", f"katex@{VERSION}", "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True)
        tarball = Path(tmp) / f"katex-{VERSION}.tgz"
        if proc.returncode != 0 or not tarball.is_file():
            why = (proc.stderr.strip() or "no tarball").splitlines()[-1]
            raise KatexError(f"npm could not fetch KaTeX {VERSION}: {why}")
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        if digest != SHA256:
            raise KatexError(f"KaTeX {VERSION} from npm has SHA-256 {digest}, expected {SHA256}")
        staging = Path(tmp) / "katex"
        with tarfile.open(tarball) as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("package/dist/")
                if member.isfile() and (name in FILES or name.startswith("fonts/")) and ".." not in name:
                    target = staging / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(member).read())
        (staging / "VERSION").write_text(VERSION)
        # Swapped in whole by a rename: a second process (make test runs two) that fetched
        # it too either finds no folder or a complete one, never one half copied.
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=".katex.", dir=CACHE.parent))
        shutil.copytree(staging, fresh, dirs_exist_ok=True)
        if CACHE.exists():
            old = Path(tempfile.mkdtemp(prefix=".katex.old.", dir=CACHE.parent))
            try:
                os.replace(CACHE, old / "katex")
            except FileNotFoundError:  # the other process moved it first
                pass
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(fresh, CACHE)
        except OSError:  # the other process's copy, the same files, is in place
            shutil.rmtree(fresh, ignore_errors=True)
    return CACHE


def install(dest: Path) -> Path:
    """KaTeX's files copied into ``dest`` (made if needed)."""
    shutil.copytree(fetch(), dest, dirs_exist_ok=True)
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/katex.py DEST")
    try:
        print(f"KaTeX {VERSION} in {install(Path(sys.argv[1]))}")
    except KatexError as exc:
        sys.exit(f"error: {exc}")
