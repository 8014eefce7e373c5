# The two commands of the README: `make run` and `make test`. Each creates .venv when
# missing and installs the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean notebooks notebooks-html

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The C kernel is compiled by the install, so a change to it reinstalls.
$(STAMP): pyproject.toml setup.py src/mnist_logreg/_kernels.c src/mnist_logreg/_kernel_body.h | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mnist-logreg train

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/mnist-logreg bench

# The notebooks in Jupyter Lab (installed on first use: the tests run the notebooks
# without it).
notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet jupyterlab
	$(BIN)/jupyter lab notebooks

# The notebooks executed, figures included, as HTML in build/notebooks/ (they are
# committed without outputs: see README, Notebooks).
notebooks-html: $(STAMP)
	$(BIN)/jupyter nbconvert --to html --execute --output-dir build/notebooks notebooks/*.ipynb

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf runs .pytest_cache build dist src/*.egg-info
