# Quick start: `make demo` runs the main example locally; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := emulate,pulumi,dev
# LocalStack (host mode) needs Python >= 3.12; its tests are skipped, saying why, when none is found.
LOCALSTACK_VENV := .venv-localstack
LOCALSTACK_PACKAGES := 'localstack-core[runtime]==2026.3.0' 'cbor2<6' 'pyOpenSSL<24.3' 'cryptography<44' service_identity
LOCALSTACK_PYTHON ?= $(shell for p in python3.13 python3.12 $$(ls -dr $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null); do $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)

.PHONY: demo test lint typecheck bench clean

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

$(LOCALSTACK_VENV)/.installed:
	@if [ -z "$(LOCALSTACK_PYTHON)" ]; then \
		echo "no Python >= 3.12 found: the LocalStack tests will be skipped"; \
	else \
		$(LOCALSTACK_PYTHON) -m venv $(LOCALSTACK_VENV) && \
		$(LOCALSTACK_VENV)/bin/python -m pip install --quiet --upgrade pip && \
		$(LOCALSTACK_VENV)/bin/pip install --quiet $(LOCALSTACK_PACKAGES) && touch $@ || \
		{ rm -rf $(LOCALSTACK_VENV); echo "LocalStack could not be installed: its tests will be skipped"; }; \
	fi

# asl-validator (npm) checks compiled state machines beside statelint.
node_modules/.bin/asl-validator: package.json
	npm install --silent --no-audit --no-fund

test: $(VENV)/.installed-all $(LOCALSTACK_VENV)/.installed node_modules/.bin/asl-validator
	$(BIN)/ruff check .
	$(BIN)/python tools/typecheck.py
	$(BIN)/python -m pytest -q -n 2

lint: $(VENV)/.installed-all
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-all
	$(BIN)/python tools/typecheck.py

bench: $(VENV)/.installed-core
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(LOCALSTACK_VENV) node_modules .strato build .pytest_cache
