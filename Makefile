# Quick start: `make demo` runs the main example locally; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := emulate,pulumi,ui,dev,lineage
# LocalStack (host mode) needs Python >= 3.12; its tests are skipped, saying why, when none is found.
LOCALSTACK_VENV := .venv-localstack
LOCALSTACK_PACKAGES := 'localstack-core[runtime]==2026.3.0' 'cbor2<6' 'pyOpenSSL<24.3' 'cryptography<44' service_identity
LOCALSTACK_PYTHON ?= $(shell for p in python3.13 python3.12 $$(ls -dr $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null); do $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)

.PHONY: demo test fuzz lint typecheck bench bench-coldstart bench-peers clean chromium

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

# The web UI's browser test drives Debian's chromium through chromium-driver. Installed when missing and
# this user can (root, or passwordless sudo); otherwise that test is skipped, saying why.
CHROMIUM_PACKAGES := chromium chromium-driver
CHROMIUM_BIN ?= /usr/bin/chromium
CHROMEDRIVER_BIN ?= /usr/bin/chromedriver
chromium:
	@if [ -x $(CHROMIUM_BIN) ] && [ -x $(CHROMEDRIVER_BIN) ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "no apt-get here: install chromium and its driver yourself, or the browser test will be skipped"; \
	elif [ "$$(id -u)" = 0 ]; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CHROMIUM_PACKAGES); } || \
		echo "chromium could not be installed: the browser test will be skipped"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		{ sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			$(CHROMIUM_PACKAGES); } || echo "chromium could not be installed: the browser test will be skipped"; \
	else \
		echo "not root and no passwordless sudo: run 'sudo apt-get install $(CHROMIUM_PACKAGES)', or the browser test will be skipped"; \
	fi

test: $(VENV)/.installed-all $(LOCALSTACK_VENV)/.installed node_modules/.bin/asl-validator chromium
	$(BIN)/ruff check .
	$(BIN)/python tools/typecheck.py
	$(BIN)/python -m pytest -q -n 2

# Differential testing: 1,000 random pipelines, each run locally and emulated on every cloud.
fuzz: $(VENV)/.installed-all
	STRATO_FUZZ_EXAMPLES=$${STRATO_FUZZ_EXAMPLES:-1000} $(BIN)/python -m pytest -q -x -W ignore tests/differential -k random

lint: $(VENV)/.installed-all
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-all
	$(BIN)/python tools/typecheck.py

bench: $(VENV)/.installed-core
	$(BIN)/python bench/run.py

# `strato --help` and a 1-task `strato run` in fresh processes of a regular (wheel) install of this checkout.
bench-coldstart: $(VENV)/.installed-core
	$(BIN)/python bench/coldstart.py $(ARGS)

# Strato beside Prefect 3 and Dagster on the same no-op workloads. The peers get a virtualenv of their own,
# with Strato installed into it as users install it (a wheel from this checkout, not editable).
PEERS_VENV := bench/peers/.venv
PEERS_PYTHON ?= $(LOCALSTACK_PYTHON)
$(PEERS_VENV)/.installed: bench/peers/requirements.txt pyproject.toml
	@if [ -z "$(PEERS_PYTHON)" ]; then echo "no Python >= 3.12 found: set PEERS_PYTHON=/path/to/python3"; exit 1; fi
	$(PEERS_PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -r bench/peers/requirements.txt
	$(PEERS_VENV)/bin/pip install --quiet --force-reinstall --no-deps . && $(PEERS_VENV)/bin/pip install --quiet .
	rm -rf build
	touch $@

bench-peers: $(PEERS_VENV)/.installed
	$(PEERS_VENV)/bin/python bench/peers/run.py $(ARGS)

clean:
	rm -rf $(VENV) $(LOCALSTACK_VENV) $(PEERS_VENV) bench/.coldstart-venv node_modules .strato build .pytest_cache
