# Sparkify churn lakehouse. Quick start: `make run`, then `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

export SPARKIFY_HOME ?= $(CURDIR)/lakehouse
export PYTHONDONTWRITEBYTECODE := 1

# Without SPARKIFY_EVENTS, the build uses generated demo data (python -m sparkify.generate).
DEMO_EVENTS := $(SPARKIFY_HOME)/demo/events.json.gz
DEMO_ARGS ?= --users 250 --start 2018-10-01 --end 2018-12-03 --seed 42
ifeq ($(strip $(SPARKIFY_EVENTS)),)
build: export SPARKIFY_EVENTS := $(DEMO_EVENTS)
build: $(DEMO_EVENTS)
endif

.PHONY: help venv run build train score backtest dashboard docs lint test bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

venv: $(STAMP) ## create .venv and install the pinned dependencies (idempotent)

$(DEMO_EVENTS): | $(STAMP)
	$(PY) -m sparkify.generate $(DEMO_ARGS) --out $@

run: build train ## build, train, score and serve the dashboard (demo data unless SPARKIFY_EVENTS is set)
	@echo "Lakehouse ready under $(SPARKIFY_HOME)/warehouse; starting the dashboard"
	$(PY) -m dashboard

build: $(STAMP) ## dbt build: load new raw files, build and test every model
	$(PY) -m sparkify.dbt build

train: $(STAMP) ## train and evaluate the churn models, score the latest as_of, refresh the customers mart
	$(PY) -m models_ml.train --score $(TRAIN_ARGS)
	$(PY) -m sparkify.dbt build --select customers

score: $(STAMP) ## score the latest as_of with the selected model and refresh the customers mart
	$(PY) -m models_ml.score
	$(PY) -m sparkify.dbt build --select customers

backtest: $(STAMP) ## rolling-origin backtest of the latest model's configuration (BACKTEST_ARGS='--model PATH' for a fixed model)
	$(PY) -m models_ml.backtest $(BACKTEST_ARGS)

dashboard: $(STAMP) ## serve the dashboard on SPARKIFY_DASH_HOST:SPARKIFY_DASH_PORT (default 127.0.0.1:8050)
	$(PY) -m dashboard

docs: $(STAMP) ## dbt docs generate (catalog under $SPARKIFY_HOME/dbt/target)
	$(PY) -m sparkify.dbt docs generate

lint: $(STAMP) ## sqlfluff on the dbt models
	$(PY) -m sqlfluff lint dbt_project/models dbt_project/tests dbt_project/analyses

test: $(STAMP) lint ## every test: lint, pytest (unit, dbt build on fixtures, browser)
	$(PY) -m pytest

bench: $(STAMP) ## benchmarks: lakehouse build on es_small, dashboard with 16,000 customers
	$(PY) -m sparkify.bench
	$(PY) -m dashboard.bench

clean: ## remove the lakehouse (warehouse, metastore, logs) under SPARKIFY_HOME
	rm -rf "$(SPARKIFY_HOME)"
