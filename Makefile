# Async sync/ETL pipeline. `make help` lists the targets.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test unit compat lint typecheck format bench clean sandbox status wheel-check dagster-test

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=python3 …'"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with dev extras

demo: $(STAMP) ## embedded Postgres + sandbox APIs + a full sync + summary and example queries
	$(BIN)/pipeline demo

test: lint typecheck unit ## lint + typecheck + the whole test suite

unit: $(STAMP) ## the test suite only (pytest)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

compat: $(STAMP) ## the connector against CGWire's real zou + gazu (pinned; own venv, database, Redis; ~5 min)
	DATABASE_URL=$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} timeout 1200 \
		$(BIN)/python -m pytest -m compat tests/compat -p no:cacheprovider -rs -s $(PYTEST_ARGS)

lint: $(STAMP) ## ruff format check + ruff lint
	$(BIN)/ruff format --check pipeline tests bench
	$(BIN)/ruff check pipeline tests bench

format: $(STAMP) ## apply ruff formatting and safe fixes
	$(BIN)/ruff format pipeline tests bench
	$(BIN)/ruff check --fix pipeline tests bench

typecheck: $(STAMP) ## mypy --strict on pipeline/
	$(BIN)/mypy

wheel-check: ## build the wheel, install it in a fresh venv outside the repo, migrate + sandbox + sync
	PYTHON=$(PYTHON) .ci/wheel-check

bench: $(STAMP) ## benchmarks; results in bench/results/
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

dagster-test: $(STAMP) ## install the [dagster] extra, type-check against it, run the Dagster tests
	$(BIN)/python -m pip install --quiet -e '.[dev,dagster]'
	$(BIN)/mypy
	PIPELINE_REQUIRE_DAGSTER=1 $(BIN)/python -m pytest -m dagster $(PYTEST_ARGS)

status: $(STAMP) ## pipeline status (streams, checkpoints, last runs)
	$(BIN)/pipeline status

clean: ## stop the embedded database, remove the venv, caches and the data folder
	-@test -x $(BIN)/pipeline && $(BIN)/pipeline db stop
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache *.egg-info
