"""MkDocs hooks (mkdocs.yml: hooks): KaTeX's files go into the built site, so that the
formulas are typeset offline (scripts/katex.py fetches them once with npm)."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import katex  # noqa: E402


def on_post_build(config, **kwargs):
    try:
        katex.install(Path(config["site_dir"]) / "assets" / "katex")
    except katex.KatexError as exc:
        raise PluginError(str(exc)) from None
