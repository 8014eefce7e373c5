"""The documentation: a short README, a site that builds strictly with every page in its
navigation, and pages generated from the code that match it."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

DOCS = ROOT / "docs"


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_generated_pages_match_the_code():
    """docs/reference/cli.md is every parser's --help, docs/reference/api.md the package's
    public names, docs/index.md the README, docs/tutorials/notebook-*.md the notebooks."""
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


NOTEBOOK = ROOT / "notebooks" / "1-logistic-regression.ipynb"


def _executed_copy(folder):
    """An executed copy of notebook 1 as scripts/notebooks.py saves one, with outputs of
    every kind made up (executing it takes seconds): printed lines, a warning, a figure and
    a value, on its first two code cells."""
    import base64
    import io

    nbformat = pytest.importorskip("nbformat")
    from PIL import Image

    sys.path.insert(0, str(ROOT / "scripts"))
    import notebooks

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    png = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(png, format="PNG")
    out = nbformat.v4.new_output
    code[0].outputs = [out("stream", name="stdout", text="epoch 1\n"), out("stream", name="stdout", text="epoch 2\n"),
                       out("stream", name="stderr", text="SomeWarning: ignore me\n"),
                       out("display_data", data={"image/png": base64.b64encode(png.getvalue()).decode(),
                                                 "text/plain": "<Figure size 640x480>"})]
    code[1].outputs = [out("execute_result", data={"text/plain": "0.926"}, execution_count=2)]
    nb.metadata[notebooks.KEY] = notebooks.fingerprint(NOTEBOOK)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / NOTEBOOK.name)
    return code


def test_a_notebook_page_shows_its_executed_copys_outputs(tmp_path, monkeypatch):
    """Each output under the code that printed or drew it, stderr left out; a copy run from
    another version of the notebook is not used (the page as committed is)."""
    from types import SimpleNamespace

    code = _executed_copy(tmp_path)
    import docs_pages
    import mkdocs_hooks
    import notebooks

    monkeypatch.setattr(notebooks, "EXECUTED", tmp_path)
    page = SimpleNamespace(file=SimpleNamespace(src_uri=f"tutorials/notebook-{NOTEBOOK.stem}.md"))
    shown = mkdocs_hooks.on_page_markdown("as committed", page=page, config=None, files=None)
    first, second = (f"```python\n{docs_pages._text(cell)}\n```" for cell in code[:2])
    after = shown.split(first, 1)[1]
    assert after.startswith("\n\n```text\nepoch 1\nepoch 2\n```\n\n![A figure the cell draws](data:image/png;base64,")
    assert shown.split(second, 1)[1].startswith("\n\n```text\n0.926\n```")
    assert "ignore me" not in shown and "<Figure" not in shown
    # Without the copy, the page is the committed one: the same text, no outputs.
    assert docs_pages.notebook_page(NOTEBOOK) == (DOCS / "tutorials" / f"notebook-{NOTEBOOK.stem}.md").read_text()
    monkeypatch.setattr(notebooks, "fingerprint", lambda path: "0" * 64)  # the notebook changed since
    assert mkdocs_hooks.on_page_markdown("as committed", page=page, config=None, files=None) == "as committed"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built strictly: no broken link or reference (mkdocs --strict turns its
    warnings into a failure). Notebook 1's page from an executed copy (``_executed_copy``)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings")
    if shutil.which("npm") is None and not (ROOT / "build" / "katex" / "VERSION").is_file():
        pytest.skip("npm is needed once to fetch KaTeX, the site's math renderer (apt-get install -y npm)")
    out, executed = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("executed")
    _executed_copy(executed)
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1",
                               "MNIST_LOGREG_EXECUTED_NOTEBOOKS": str(executed)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_the_site_builds_strictly(site):
    assert (site / "index.html").is_file()
    assert (site / "reference" / "cli" / "index.html").is_file()
    assert "train_run" in (site / "reference" / "api" / "index.html").read_text()  # mkdocstrings ran
    assert (site / "assets" / "katex" / "katex.min.js").is_file()  # shipped with it


@pytest.mark.browser
def test_formulas_are_typeset_offline(site, tmp_path):
    """In Chromium with the network cut, the softmax of notebook 1 is typeset by KaTeX on
    the site's page and on the notebook's HTML (make notebooks-html's template): no raw
    $$ left, nothing fetched from a CDN. The site's page shows its executed copy's outputs,
    the figure drawn."""
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium is not installed (scripts/install-debian.sh chromium /usr/bin/chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    notebook = ROOT / "notebooks" / "1-logistic-regression.ipynb"
    proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
                           "--TemplateExporter.extra_template_basedirs=" + str(ROOT / "notebooks" / "templates"),
                           "--template", "katex", "--output-dir", str(tmp_path), str(notebook)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    sys.path.insert(0, str(ROOT / "scripts"))
    import katex

    katex.install(tmp_path / "katex")
    pages = [site / "tutorials" / "notebook-1-logistic-regression" / "index.html", tmp_path / f"{notebook.stem}.html"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page()
            fetched = []
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                       else (fetched.append(route.request.url), route.abort()))
            for path in pages:
                page.goto(path.as_uri())
                page.wait_for_function("document.querySelectorAll('.katex-display').length > 0", timeout=10000)
                text = page.inner_text("body")
                assert "$$" not in text and "\\frac" not in text, path
                assert page.locator(".katex").count() >= 10, path
                if path.is_relative_to(site):
                    assert "epoch 1\nepoch 2" in text and "ignore me" not in text
                    figure = page.locator("img[alt='A figure the cell draws']")
                    assert figure.count() == 1 and figure.evaluate("(img) => img.naturalWidth") == 40
        finally:
            browser.close()
    assert fetched == []


def _blocks(*languages: str):
    """(file, code) of every fenced block in those languages in the README and the docs."""
    import re

    for path in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        if path.name.startswith("notebook-"):  # a notebook's page: tests/test_notebooks.py runs the notebook
            continue
        for lang, code in re.findall(r"```(\w*)\n(.*?)```", path.read_text(), re.S):
            if lang in languages:
                yield path, code


def test_every_command_example_is_one_the_cli_takes(monkeypatch):
    """Each `mnist-logreg ...` line of a shell example parses: a renamed flag or command
    fails here (and each runs in one of the two tests below)."""
    import shlex

    from mnist_logreg.cli import build_parser

    lines = [(path, line) for path, code in _blocks("sh", "bash", "") for line in code.splitlines()
             if line.strip().startswith("mnist-logreg ")]
    assert len(lines) >= 30
    for path, line in lines:
        argv = shlex.split(line, comments=True)[1:]
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:  # argparse's error (2), or --help's clean exit (0)
            assert exc.code == 0, f"{path.name}: {line}"


# The subcommands whose examples run as written, on files made here, in seconds; train,
# tune and bench take minutes on all of MNIST and serve runs until stopped: theirs run on
# a small MNIST in test_slow_command_examples_run_on_small_data (make test-minutes).
QUICK = ("predict", "export", "evaluate", "compare", "info")


def test_quick_command_examples_run_as_written(tmp_path, monkeypatch, default_run, mnist):
    """Every `mnist-logreg predict|export|evaluate|compare|info ...` line of the README
    and the docs, run as written in a folder holding the files it names (photo.jpg,
    scans/, test.csv, runs/mine, ...): exit code 0 and output, or the test fails."""
    import shlex
    from shutil import copytree

    import numpy as np

    from conftest import run_main
    from digits import photo, png_bytes

    monkeypatch.chdir(tmp_path)
    digits = [mnist.test_images[i].numpy() for i in range(3)]
    (tmp_path / "photo.jpg").write_bytes(photo(digits[0], np.random.default_rng(0)))
    (tmp_path / "scan.png").write_bytes(png_bytes(255 - digits[1]))
    (tmp_path / "year.png").write_bytes(png_bytes(255 - np.pad(np.hstack(digits), 8)))  # a number
    for folder in ("scans", "digits"):
        (tmp_path / folder).mkdir()
        for i, d in enumerate(digits):
            (tmp_path / folder / f"{i}.png").write_bytes(png_bytes(d))
    pixels = ",".join(f"pixel{i}" for i in range(784))
    rows = "\n".join(",".join(map(str, d.ravel())) for d in digits)
    (tmp_path / "test.csv").write_text(f"{pixels}\n{rows}\n")
    for name in ("mine", "kaggle", "a", "b"):
        copytree(default_run, tmp_path / "runs" / name)
    lines = {line.split("#")[0].strip() for _, code in _blocks("sh", "bash", "") for line in code.splitlines()
             if line.strip().startswith("mnist-logreg ")}
    quick = sorted(line for line in lines if shlex.split(line)[1] in QUICK)
    assert len(quick) >= 8, quick
    for line in quick:
        proc = run_main(*shlex.split(line)[1:])
        assert proc.returncode == 0, f"{line}: {proc.stderr}"
        assert proc.stdout.strip(), line
    assert (tmp_path / "digits.html").is_file() and (tmp_path / "submission.csv").is_file()


# The examples that train, tune, benchmark or serve, run as written but on a small MNIST
# (the data they name, or the bundled MNIST they default to, swapped for 2,000 training
# digits): about two minutes in all, so make test-minutes runs them (.ci/run too).
SLOW = ("train", "tune", "bench", "serve")


@pytest.mark.minutes
def test_slow_command_examples_run_on_small_data(tmp_path, monkeypatch, small_dir, mnist):
    """Every `mnist-logreg train|tune|bench|serve ...` line of the README and the docs,
    in a folder holding the files it names (train.csv, corrections in mine/ and DIR/):
    train, tune and bench on a small MNIST (--data mnist or DIR, or no --data at all,
    becomes the small one; train.csv is a small Kaggle CSV), each to exit code 0; serve
    until its /healthz answers and it reads a digit, then stopped."""
    import shlex

    import numpy as np

    from conftest import run_cli
    from digits import png_bytes

    monkeypatch.chdir(tmp_path)
    labels = mnist.train_labels[:600].tolist()
    rows = "\n".join(f"{y}," + ",".join(map(str, d.ravel())) for y, d in zip(labels, mnist.train_images[:600].numpy()))
    (tmp_path / "train.csv").write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + rows + "\n")
    for folder in ("mine", "DIR"):  # corrections, as serve --collect saves them
        for i in range(100):
            label = int(mnist.test_labels[i])
            (tmp_path / folder / str(label)).mkdir(parents=True, exist_ok=True)
            (tmp_path / folder / str(label) / f"{i}.png").write_bytes(png_bytes(mnist.test_images[i].numpy()))
    lines = {line.split("#")[0].strip() for _, code in _blocks("sh", "bash", "") for line in code.splitlines()
             if line.strip().startswith("mnist-logreg ")}
    # The runs first, then the servers that serve them.
    slow = sorted((shlex.split(line)[1:] for line in lines if shlex.split(line)[1] in SLOW),
                  key=lambda args: (args[0] == "serve", args))
    assert len(slow) >= 15, slow
    digit = png_bytes(255 - np.kron(mnist.test_images[0].numpy(), np.ones((10, 10), np.uint8)))
    for args in slow:
        if args[0] == "serve":
            _serve_example(args, digit)
            continue
        flag = "--data" if args[0] == "train" else "--data-dir"
        if flag in args:
            at = args.index(flag) + 1
            args = args[:at] + [str(small_dir) if args[at] in ("mnist", "DIR") else args[at]] + args[at + 1:]
        elif "--help" not in args:
            args = [*args, flag, str(small_dir)]
        proc = run_cli(*args, timeout=600)
        assert proc.returncode == 0, f"{args}: {proc.stderr[-2000:]}"
    assert (tmp_path / "runs" / "mine" / "model.safetensors").is_file()


def _serve_example(args: list[str], digit: bytes) -> None:
    """``mnist-logreg serve ...`` as written, until /healthz answers and /api/predict reads
    ``digit``; then stopped."""
    import base64
    import json
    import time
    import urllib.request

    port = int(args[args.index("--port") + 1]) if "--port" in args else 8000
    server = subprocess.Popen([sys.executable, "-m", "mnist_logreg", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"{args}: {server.stderr.read()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert json.loads(resp.read())["status"] == "ok"
                break
            except OSError:
                assert time.monotonic() < deadline, f"{args}: no answer on port {port}"
                time.sleep(0.2)
        body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(digit).decode()})
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/predict", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read())["label"] is not None, args
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = list(_blocks("python"))
    assert blocks
    for path, code in blocks:
        exec(compile(code, str(path), "exec"), {"__name__": "__example__"})
