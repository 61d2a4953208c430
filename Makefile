# Two commands for a new machine with Python 3.11+: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test bench lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Each stamp file records that one set of extras is installed for the current pyproject.toml.
$(VENV)/.serve-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[train,test,dev]'
	touch $@

$(VENV)/.bench-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[load]'
	touch $@

serve: $(VENV)/.serve-deps  ## run the service on the committed models at 127.0.0.1:8000
	$(BIN)/python -m service

test: $(VENV)/.test-deps  ## run the test suite
	$(BIN)/python -m pytest

lint: $(VENV)/.test-deps
	$(BIN)/ruff check service training tests
	$(BIN)/mypy service

bench: $(VENV)/.bench-deps  ## batching on vs off vs in-process ceiling, on the committed models
	$(BIN)/python -m loadtests.bench
