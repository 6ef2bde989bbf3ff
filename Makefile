# Every target creates .venv from pyproject.toml (pinned by constraints.txt) when needed:
# the kit and a local AWS for running it (RUN_STAMP), plus the toolchain for testing it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-dev
PIP_INSTALL := $(BIN)/python -m pip install --progress-bar on -c constraints.txt
STACK ?= dev
# Pinned Python 3.12 wheels the code bundle carries into network-isolated SageMaker jobs
# (manylinux_2_28 too: the image is Amazon Linux 2023, glibc 2.34; numba ships only that).
WHEELHOUSE := build/wheelhouse
WHEELS := $(WHEELHOUSE)/.complete
# SageMaker's scikit-learn 1.9-0 image as a virtualenv: its Python (3.12) and its exact
# packages, so tests run the handler and the jobs inside the image's own toolkits. Separate
# from .venv because the image pins conflict with pulumi's (protobuf 3.20 against 5.x).
CONTAINER_VENV := .venv-container
CONTAINER_STAMP := $(CONTAINER_VENV)/.installed
CONTAINER_REQUIREMENTS := containers/sklearn/requirements.txt

.PHONY: demo plan train serve bench bench-overload bench-drift bench-quality bench-attribution bench-false-alarms bench-tuning bench-batch bench-sharding bench-quality-shards bench-network wheelhouse container-env test lint typecheck unit lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	@echo "installing the kit and a local AWS into $(VENV) (pip lists each package)"
	$(PIP_INSTALL) -e '.[local]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	@echo "installing the test toolchain into $(VENV)"
	$(PIP_INSTALL) -e '.[local,dev]'
	touch $(STAMP)

$(WHEELS): training/container-requirements.txt | $(RUN_STAMP)
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: \
	  --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 \
	  --platform manylinux_2_28_x86_64 \
	  --requirement training/container-requirements.txt --dest $(WHEELHOUSE)
	touch $(WHEELS)

$(CONTAINER_STAMP): $(CONTAINER_REQUIREMENTS) containers/python3.12
	rm -rf $(CONTAINER_VENV)
	"$$(containers/python3.12)" -m venv $(CONTAINER_VENV)
	$(CONTAINER_VENV)/bin/python -m pip install --quiet --no-deps --requirement $(CONTAINER_REQUIREMENTS)
	# As the image's Dockerfile does: sagemaker-containers 2.8.6 still names collections.Mapping.
	sed -i 's/collections\.Mapping/collections.abc.Mapping/g' \
	  $(CONTAINER_VENV)/lib/python3.12/site-packages/sagemaker_containers/_mapping.py
	touch $(CONTAINER_STAMP)

## demo: set up, then run the whole lifecycle locally with moto as AWS (runs/demo/<run>/report.html)
demo: $(RUN_STAMP) $(WHEELS)
	$(BIN)/mlops demo

## train: ingest, validate, split, train and evaluate on this machine (runs/local)
train: $(RUN_STAMP)
	$(BIN)/mlops train

## serve: serve runs/local/model with SageMaker's contract on :8080 (train first)
serve: $(RUN_STAMP)
	$(BIN)/mlops serve --model-dir runs/local/model --port 8080 --capture-dir runs/local/capture

## bench: serving benchmark (handler vs predict floor, toolkit codec, server load); ~1 minute
bench: $(STAMP)
	$(BIN)/python -m benchmarks.serving --json build/bench/serving.json

## bench-network: offline plan of staging and prod with and without their VPC (resources, plan time, idle endpoint cost); ~6 minutes
bench-network: $(STAMP)
	$(BIN)/python -m benchmarks.network_plan --json build/bench/network.json

## bench-overload: local server at concurrency 8 and 64, load shedding on and off; ~7 minutes
bench-overload: $(STAMP)
	$(BIN)/python -m benchmarks.overload --json build/bench/overload.json

## bench-drift: drift job on 1,000,000 capture records (fast and plain-json parsing), against evidently's drift preset; ~12 minutes
bench-drift: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python -m benchmarks.drift --json build/bench/drift.json

## bench-quality: quality job on 1,000,000 predictions joined with 1,000,000 labels, against evidently's classification preset; ~10 minutes
bench-quality: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python -m benchmarks.quality --json build/bench/quality.json

## bench-attribution: SHAP for 5,000 rows against predict_proba, and NDCG on unchanged and shifted windows; ~25 minutes
bench-attribution: $(STAMP)
	$(BIN)/python -m benchmarks.attribution --shifted --json build/bench/attribution.json

## bench-false-alarms: each monitor on 30 unchanged windows of 200, 1,000 and 5,000 records, and injected shifts; ~2 minutes
bench-false-alarms: $(STAMP)
	$(BIN)/python -m benchmarks.false_alarms --json build/bench/false_alarms.json

## bench-tuning: local Bayesian search, 30 trials x 3 seeds, validation and test AUC against the defaults; ~5 minutes
bench-tuning: $(STAMP)
	$(BIN)/python -m benchmarks.tuning --json build/bench/tuning.json

## bench-batch: local batch transform of 1,000,000 rows, against the model's predict_proba floor; ~5 minutes
bench-batch: $(STAMP)
	$(BIN)/python -m benchmarks.batch --json build/bench/batch.json

## bench-sharding: drift job on 4,000,000 capture records in 1, 2 and 4 shards, against one pass; ~20 minutes
bench-sharding: $(STAMP)
	$(BIN)/python -m benchmarks.sharding --json build/bench/sharding.json

## bench-quality-shards: quality job on 1,000,000 predictions in 1 and 2 shards, against one pass; ~10 minutes
bench-quality-shards: $(STAMP)
	$(BIN)/python -m benchmarks.quality --skip-evidently --shards 1,2 --json build/bench/quality-shards.json

## wheelhouse: wheels that network-isolated SageMaker jobs install pandera from (Python 3.12)
wheelhouse: $(WHEELS)

## container-env: the scikit-learn image's Python and packages in .venv-container (tests use it)
container-env: $(CONTAINER_STAMP)

## plan: offline plan of STACK (default dev) plus its JSON under build/
plan: $(RUN_STAMP) $(WHEELS)
	$(BIN)/mlops plan --stack $(STACK) --policy --json build/plan-$(STACK).json

## test: set up, then lint, type-check and run the test suite
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects no tests; make treats that as a failure, as it should.
unit: $(STAMP) $(WHEELS) $(CONTAINER_STAMP)
	$(BIN)/pytest --numprocesses auto

## lock: re-pin constraints.txt from a fresh resolve of pyproject.toml
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -e '.[local,dev]'
	(echo "# Pinned versions for reproducible installs: make lock regenerates this from pyproject.toml."; \
	 .venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e') > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) $(CONTAINER_VENV) build .pytest_cache .mypy_cache .ruff_cache
