"""The drawing page, shared by ``serve`` and ``export --format web``.

``page.html`` is the page (markup and style) with a ``<!--SCRIPTS-->`` slot; ``page.js``
draws, uploads and shows the answer; ``recognizer.js`` is the whole recogniser in
JavaScript (the image preprocessing of ``images.py``, the run's preprocessing, the linear
layer), which the exported page runs in the browser and ``serve`` does not need.
"""

from __future__ import annotations

from importlib import resources


def script(name: str) -> str:
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


def page_html(scripts: str, title: str | None = None) -> str:
    page = script("page.html").replace("<!--SCRIPTS-->", scripts)
    return page if title is None else page.replace("<title>mnist-logreg: draw a digit</title>",
                                                   f"<title>{title}</title>")
