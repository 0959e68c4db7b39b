# Quick start: `make demo` runs the main example locally; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := aws,gcp,azure,pulumi,dev

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $@ $(VENV)/.installed-core

demo: $(VENV)/.installed-core
	STRATO_HOME=$${STRATO_HOME:-$(CURDIR)/.strato} $(BIN)/strato run examples/daily_sales.py:daily_sales --input '{"day": "2024-03-01"}'

test: $(VENV)/.installed-all
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2

lint: $(VENV)/.installed-all
	$(BIN)/ruff check .

bench: $(VENV)/.installed-core
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .strato build .pytest_cache
