"""The notebooks executed once, their outputs kept for the documentation site and the HTML
copies: build/notebooks/executed/NAME.ipynb, each remembering the SHA-256 of the notebook it
was run from, so that a notebook is executed again only when it changes.

    python scripts/notebooks.py          # execute the notebooks whose copy is missing or stale
    python scripts/notebooks.py --force  # execute them all

`make docs` runs it before the build: the site's notebook pages then show each cell's
output (printed text, figures) under its code (scripts/mkdocs_hooks.py). The notebooks stay
committed without outputs (tests/test_notebooks.py), so that figures never go stale in git.
A copy goes stale with its notebook, not with the package: after a change to what the
notebooks call, `--force`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# $MNIST_LOGREG_EXECUTED_NOTEBOOKS: another folder (the tests build the site with copies of their own).
EXECUTED = Path(os.environ.get("MNIST_LOGREG_EXECUTED_NOTEBOOKS") or ROOT / "build" / "notebooks" / "executed")
KEY = "mnist_logreg_executed_from"  # the notebook's SHA-256, in the copy's metadata


def fingerprint(notebook: Path) -> str:
    return hashlib.sha256(notebook.read_bytes()).hexdigest()


def executed_copy(notebook: Path, folder: Path | None = None) -> dict | None:
    """The executed copy of ``notebook`` (as JSON) in ``folder`` (``EXECUTED``), if there is
    one and it was run from the notebook as it is now; else None."""
    path = (folder or EXECUTED) / notebook.name
    try:
        copy = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return copy if copy.get("metadata", {}).get(KEY) == fingerprint(notebook) else None


def execute(notebook: Path, folder: Path | None = None) -> Path:
    """Run ``notebook`` top to bottom in a kernel of this Python, in a scratch folder (what it
    writes stays out of the repository), and save the copy with its outputs atomically."""
    import nbclient
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata[KEY] = fingerprint(notebook)
    with tempfile.TemporaryDirectory() as scratch:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": scratch}}).execute()
    folder = folder or EXECUTED
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / notebook.name
    tmp = out.with_name(f".{out.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out)
    return out


if __name__ == "__main__":
    force = "--force" in sys.argv[1:]
    for notebook in NOTEBOOKS:
        if not force and executed_copy(notebook) is not None:
            print(f"{notebook.relative_to(ROOT)}: executed copy is current")
            continue
        print(f"{notebook.relative_to(ROOT)}: executing...", flush=True)
        print(f"  wrote {execute(notebook).relative_to(ROOT)}")
