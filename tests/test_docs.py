"""The documentation: a short README, a site that builds strictly with every page in its
navigation, and pages generated from the code that match it."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

DOCS = ROOT / "docs"


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_generated_pages_match_the_code():
    """docs/reference/cli.md is every parser's --help; docs/index.md is the README."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "docs_pages.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_cli_reference_is_what_help_prints(monkeypatch):
    from conftest import run_main

    page = (DOCS / "reference" / "cli.md").read_text()
    monkeypatch.setenv("COLUMNS", "100")
    for command in ("train", "predict", "serve", "tune"):
        assert run_main(command, "--help").stdout.rstrip() in page, command


def test_every_page_is_in_the_navigation():
    yaml = pytest.importorskip("yaml")

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from pages(value) if isinstance(value, list) else [value]

    listed = set(pages(nav))
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert on_disk == listed, (on_disk - listed, listed - on_disk)


def test_the_site_builds_strictly(tmp_path):
    """No broken link or reference: mkdocs --strict turns its warnings into a failure."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
