"""The notebooks run top to bottom in a kernel of this venv, offline: a failing cell (the
notebooks assert the numbers their prose states) fails the test."""

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


# Together the three take a minute or more (they train a dozen recipes on all of MNIST):
# make test leaves them to make test-minutes, which .ci/run runs too.
@pytest.mark.minutes
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), \
        f"{path.name}: commit notebooks without outputs (make notebooks-html writes them with)"
    # A first cell, added here only, says which Python the kernel runs: the project's venv.
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    t0 = time.perf_counter()
    # The per-cell timeout catches a hung kernel, not a slow one: the longest cell (three
    # augmented trainings) takes about a minute alone and over two on a shared, busy machine.
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"{path.name}: {time.perf_counter() - t0:.1f} s")
    assert nb.cells[0].outputs[0]["text"].strip() == sys.prefix
    # Its page on the site, from this run (as scripts/notebooks.py saves it): every figure
    # and every printed line under its code.
    sys.path.insert(0, str(path.parents[1] / "scripts"))
    import docs_pages

    nb.cells.pop(0)
    page = docs_pages.notebook_page(path, json.loads(nbformat.writes(nb)))
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    figures = sum("image/png" in out.get("data", {}) for out in outputs)
    assert page.count("](data:image/png;base64,") == figures > 0
    printed = [line for out in outputs if out.get("name") == "stdout" for line in out["text"].splitlines()]
    assert all(line.strip() in page for line in printed)
