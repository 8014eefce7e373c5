"""MkDocs hooks (mkdocs.yml: hooks): KaTeX's files go into the built site, so that the
formulas are typeset offline (scripts/katex.py fetches them once with npm); and a notebook's
page shows each cell's output under its code where the notebook's executed copy is current
(scripts/notebooks.py, which `make docs` runs first; without one, the page as committed)."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_pages  # noqa: E402
import katex  # noqa: E402
import notebooks  # noqa: E402

_PAGES = {f"tutorials/notebook-{nb.stem}.md": nb for nb in notebooks.NOTEBOOKS}


def on_page_markdown(markdown, page, config, files, **kwargs):
    notebook = _PAGES.get(page.file.src_uri)
    copy = notebook and notebooks.executed_copy(notebook)
    return docs_pages.notebook_page(notebook, copy) if copy else markdown


def on_post_build(config, **kwargs):
    try:
        katex.install(Path(config["site_dir"]) / "assets" / "katex")
    except katex.KatexError as exc:
        raise PluginError(str(exc)) from None
