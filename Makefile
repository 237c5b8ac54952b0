# rsb-connector — every set-up step lives here so a fresh machine needs only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest docs bench soak clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

## make demo: install, then walk through what the SDK does
demo: $(STAMP)
	$(BIN)/python examples/demo.py

## make test: ruff, mypy --strict on src/, the whole pytest suite, and the docs build (broken links fail)
test: lint typecheck pytest docs

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP)
	$(BIN)/pytest -q

## make docs: build the documentation site into site/ (strict: any warning fails)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

## benchmarks are not part of make test: they take longer and their numbers are for people
bench: $(STAMP)
	$(BIN)/python -m bench

## make soak: a long run of the stateful consent test (10 000 random steps against the real hub, ~40 s)
soak: $(STAMP)
	RSB_STATEFUL_STEPS=10000 $(BIN)/pytest -q tests/hub/test_policy_stateful.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist
