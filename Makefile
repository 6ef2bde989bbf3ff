# Every target creates .venv from pyproject.toml (pinned by constraints.txt) when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK ?= dev
# Pinned Python 3.12 wheels the code bundle carries into network-isolated SageMaker jobs.
WHEELHOUSE := build/wheelhouse
WHEELS := $(WHEELHOUSE)/.complete

.PHONY: demo plan train serve bench bench-drift wheelhouse test lint typecheck unit lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(WHEELS): training/container-requirements.txt | $(STAMP)
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: \
	  --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 \
	  --requirement training/container-requirements.txt --dest $(WHEELHOUSE)
	touch $(WHEELS)

## demo: set up, then run the whole lifecycle locally with moto as AWS (runs/demo/<run>/report.html)
demo: $(STAMP) $(WHEELS)
	$(BIN)/mlops demo

## train: ingest, validate, split, train and evaluate on this machine (runs/local)
train: $(STAMP)
	$(BIN)/mlops train --local

## serve: serve runs/local/model with SageMaker's contract on :8080 (train first)
serve: $(STAMP)
	$(BIN)/mlops serve --model-dir runs/local/model --port 8080 --capture-dir runs/local/capture

## bench: serving benchmark (handler vs predict floor, toolkit codec, server load); ~1 minute
bench: $(STAMP)
	$(BIN)/python -m benchmarks.serving --json build/bench/serving.json

## bench-drift: drift job on 1,000,000 capture records, against evidently's drift preset; ~4 minutes
bench-drift: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python -m benchmarks.drift --json build/bench/drift.json

## wheelhouse: wheels that network-isolated SageMaker jobs install pandera from (Python 3.12)
wheelhouse: $(WHEELS)

## plan: offline plan of STACK (default dev) plus its JSON under build/
plan: $(STAMP) $(WHEELS)
	$(BIN)/mlops plan --stack $(STACK) --policy --json build/plan-$(STACK).json

## test: set up, then lint, type-check and run the test suite
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects no tests; make treats that as a failure, as it should.
unit: $(STAMP) $(WHEELS)
	$(BIN)/pytest

## lock: re-pin constraints.txt from a fresh resolve of pyproject.toml
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	(echo "# Pinned versions for reproducible installs: make lock regenerates this from pyproject.toml."; \
	 .venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e') > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
