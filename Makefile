# The two commands of the README: `make run` and `make test`. Each creates .venv when
# missing and installs the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-minutes docs docs-serve bench lint clean notebooks notebooks-html default-model piece-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The C kernel is compiled by the install, so a change to it reinstalls.
$(STAMP): pyproject.toml setup.py src/mnist_logreg/training/_kernels.c src/mnist_logreg/training/_kernel_body.h | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mnist-logreg train

# make test leaves out the tests that take minutes (pytest's "minutes" marker: the
# fresh-venv wheel install, the canvas drawing sets (digits and numbers), the notebooks, the
# docs' train/tune/bench/serve examples on a small MNIST, the default recipe on all of MNIST
# and Fashion-MNIST, a tuning worker killed mid-trial); make test-minutes runs just those, and
# .ci/run runs both. make test runs its tests in one process per core (pytest-xdist), each
# test file in one of them (its fixtures made once): most tests use one core, or wait on a
# subprocess that does. Each worker, and what it starts, runs PyTorch and BLAS on one thread
# (tests/conftest.py): about 190 s of tests here on 2 cores. make test-minutes alike: 450 s,
# against 670-750 s in one process of two threads.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not minutes" -n auto --dist loadfile
	@echo "(tests marked 'minutes' were left out: make test-minutes runs them)"

test-minutes: $(STAMP)
	$(BIN)/python -m pytest -q -m minutes -n auto --dist loadfile

# The documentation site (MkDocs, mkdocs.yml), built strictly: a broken link fails.
# scripts/docs_pages.py writes the pages made from the code (the CLI and Python API
# references), the README (the home page) and the notebooks first. scripts/notebooks.py
# executes the notebooks whose executed copy (build/notebooks/executed/) is missing or older
# than the notebook (about a minute, the first time): their pages show each cell's output.
# KaTeX, which typesets the formulas offline, is fetched once with npm (scripts/katex.py).
docs: $(STAMP)
	$(BIN)/python scripts/docs_pages.py
	$(BIN)/python scripts/notebooks.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	$(BIN)/python scripts/docs_pages.py
	$(BIN)/python scripts/notebooks.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: $(STAMP)
	$(BIN)/mnist-logreg bench

# The notebooks in Jupyter Lab (installed on first use: the tests run the notebooks
# without it).
notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet jupyterlab
	$(BIN)/jupyter lab notebooks

# The notebooks executed, figures included, as HTML in build/notebooks/ (they are
# committed without outputs: see README, Notebooks), from the executed copies that make docs
# uses too (scripts/notebooks.py), their formulas typeset offline by KaTeX copied beside
# them (notebooks/templates/katex, scripts/katex.py).
notebooks-html: $(STAMP)
	$(BIN)/python scripts/notebooks.py
	$(BIN)/jupyter nbconvert --to html --TemplateExporter.extra_template_basedirs=notebooks/templates \
		--template katex --output-dir build/notebooks build/notebooks/executed/*.ipynb
	$(BIN)/python scripts/katex.py build/notebooks/katex

# The model shipped in the package (predict, serve and export without --run): the default
# recipe trained again. tests/test_model_card.py holds it to what the recipe trains and to
# docs/model-card.md, whose hash and figures must then be updated with it.
SHIPPED := src/mnist_logreg/data/default-run
default-model: $(STAMP)
	rm -rf build/default-run
	$(BIN)/mnist-logreg train --out build/default-run
	mkdir -p $(SHIPPED)
	install -m 644 build/default-run/model.safetensors build/default-run/config.json build/default-run/metrics.json \
		build/default-run/history.csv $(SHIPPED)/
	sha256sum $(SHIPPED)/model.safetensors

# The piece checks shipped with the reader of numbers (reading/numbers.py): trained again on
# pieces of MNIST training digits (src/mnist_logreg/pieces.py).
piece-check: $(STAMP)
	$(BIN)/python scripts/piece_check.py --view moments
	$(BIN)/python scripts/piece_check.py --view plain
	sha256sum src/mnist_logreg/data/piece-check/model.safetensors src/mnist_logreg/data/piece-check-plain/model.safetensors

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf runs .pytest_cache build dist src/*.egg-info
