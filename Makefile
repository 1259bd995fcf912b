# Sparkify churn lakehouse. Quick start: `make run`, then `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The Delta Lake jars, fetched with Maven at set-up (python -m sparkify.delta_jars); see README.
JARS := .cache/delta-jars/manifest.json
# The .pth file that runs sparkify/venv_hook.py at every start of the venv's Python: it prepares a
# plain `dbt` command as `make build` does, and stops deltalake reads aborting at exit (see that module).
HOOK := $(VENV)/.venv-hook-stamp
# The JVM's class-data-sharing archive of the classes a short pipeline loads (python -m sparkify.jvm_archive):
# every embedded Spark starts from it, seconds faster. Rebuilt when the venv or the jars change.
ARCHIVE := .cache/jvm-archive/manifest.json
# The Delta jars, unless the table format is Parquet or the caller brings its own jars.
DELTA_SETUP := $(if $(filter parquet,$(SPARKIFY_TABLE_FORMAT))$(SPARKIFY_DELTA_JARS),,$(JARS))
SETUP := $(STAMP) $(HOOK) $(DELTA_SETUP) $(ARCHIVE)

export SPARKIFY_HOME ?= $(CURDIR)/lakehouse
export PYTHONDONTWRITEBYTECODE := 1

# Without SPARKIFY_EVENTS, the build uses generated demo data (python -m sparkify.generate), at the
# path sparkify/settings.py (DEMO_EVENTS) falls back to, so a plain `dbt build` reads it too.
DEMO_EVENTS := $(SPARKIFY_HOME)/demo/events.json.gz
DOCS_PORT ?= 8080
DEMO_ARGS ?= --users 250 --start 2018-10-01 --end 2018-12-03 --seed 42
ifeq ($(strip $(SPARKIFY_EVENTS)),)
build pipeline: export SPARKIFY_EVENTS := $(DEMO_EVENTS)
build pipeline: $(DEMO_EVENTS)
endif

# With SPARKIFY_TARGET=cluster, dbt runs through the cluster's Thrift Server (the profile's `cluster` target)
# and the ML script runs on its master with spark-submit (python -m sparkify.cluster submit MODULE ...);
# otherwise both run on Spark embedded in the process. `make cluster-up` starts a cluster on this machine.
ifeq ($(SPARKIFY_TARGET),cluster)
ML := $(PY) -m sparkify.cluster submit
else
ML := $(PY) -m
endif

.PHONY: help venv run pipeline build train score backtest dashboard docs lint test test-fast bench bench-scale maintain clean cluster-up cluster-down cluster-status

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

# Its own target, so that an existing venv gets the file too.
$(HOOK): $(STAMP) sparkify/venv_hook.py
	$(PY) -c 'from sparkify.venv_hook import install; print("sparkify: start-up hook installed:", install())'
	@touch $@

$(JARS): $(STAMP) sparkify/settings.py sparkify/delta_jars.py
	$(PY) -m sparkify.delta_jars

# Without SPARKIFY_HOME or SPARKIFY_EVENTS from the caller: it records a run of its own on generated data.
$(ARCHIVE): $(STAMP) $(HOOK) $(DELTA_SETUP) sparkify/jvm_archive.py
	$(PY) -m sparkify.jvm_archive

venv: $(SETUP) ## create .venv, install the pinned dependencies, fetch the Delta jars, build the JVM class archive (idempotent)

$(DEMO_EVENTS): | $(STAMP)
	$(PY) -m sparkify.generate $(DEMO_ARGS) --out $@

run: pipeline ## build, score (training a model the first time) and serve the dashboard (demo data unless SPARKIFY_EVENTS is set)
	@echo "Lakehouse ready under $(SPARKIFY_HOME)/warehouse; starting the dashboard"
	$(PY) -m dashboard

# One process, one SparkSession (sparkify/pipeline.py); the cluster target has no such process to share, and trains.
# The daily job (README, "Daily runs"): it scores with models/latest and trains only without one or with --retrain.
ifeq ($(SPARKIFY_TARGET),cluster)
pipeline: build train
else
pipeline: $(SETUP) ## daily: build, score with the current model, refresh customers; trains the first time or with TRAIN_ARGS=--retrain
	$(PY) -m sparkify.pipeline $(TRAIN_ARGS)
endif

build: $(SETUP) ## dbt build: load new raw files, build and data-test every model; nothing when nothing changed (DBT_ARGS='--select ...')
	$(PY) -m sparkify.dbt build $(DBT_ARGS)

train: $(SETUP) ## train and evaluate the churn models, score the latest as_of, refresh the customers mart
	$(ML) models_ml.train --score $(TRAIN_ARGS)
	$(PY) -m sparkify.dbt build --select customers

score: $(SETUP) ## score the latest as_of with the selected model and refresh the customers mart
	$(ML) models_ml.score $(SCORE_ARGS)
	$(PY) -m sparkify.dbt build --select customers

backtest: $(SETUP) ## rolling-origin backtest of the latest model's configuration (BACKTEST_ARGS='--model PATH' for a fixed model)
	$(ML) models_ml.backtest $(BACKTEST_ARGS)

dashboard: $(SETUP) ## serve the dashboard on SPARKIFY_DASH_HOST:SPARKIFY_DASH_PORT (default 127.0.0.1:8050)
	$(PY) -m dashboard

docs: $(SETUP) ## dbt docs: generate the catalog and lineage, serve them on 127.0.0.1:DOCS_PORT (default 8080)
	$(VENV)/bin/dbt docs generate
	$(VENV)/bin/dbt docs serve --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

# sqlfluff renders the models with plain Jinja (.sqlfluff): no dbt, no JVM.
lint: $(STAMP) ## sqlfluff on the dbt models
	$(PY) -m sqlfluff lint dbt_project/models dbt_project/tests dbt_project/analyses

test: $(SETUP) lint ## every test: lint, pytest (unit, dbt build on fixtures, browser)
	$(PY) -m pytest

# The tests marked `spark` (a Spark JVM, dbt builds) and `cluster` are left out; CI runs `make test`, everything.
# The Delta jars are fetched all the same (Maven, no Spark): two settings tests resolve the Delta format.
test-fast: $(STAMP) $(HOOK) $(DELTA_SETUP) lint ## the quick loop, no Spark: lint, unit tests, the dashboard on fixture tables
	$(PY) -m pytest -m "not spark and not cluster"

bench: $(SETUP) ## benchmarks on es_small (BENCH_ARGS='--events FILE'): cold start, pipeline, builds, dashboard; one table
	$(PY) -m sparkify.bench $(BENCH_ARGS)

SCALES ?= 1,4,16,64
bench-scale: $(SETUP) ## the growth curve: a cold pipeline on 250 x SCALES generated users over two months (64 = ~20 M events)
	$(PY) -m sparkify.bench --scale $(SCALES) $(BENCH_ARGS)

maintain: $(SETUP) ## Delta tables: OPTIMIZE (compact small files) and VACUUM (safe retention), file counts before/after
	$(PY) -m sparkify.maintain $(MAINTAIN_ARGS)

cluster-up: $(SETUP) ## start a Spark cluster here (PostgreSQL metastore, master, 2 workers, Thrift Server); for SPARKIFY_TARGET=cluster
	$(PY) -m sparkify.cluster up

cluster-down: | $(STAMP) ## stop the processes cluster-up started (by their pids); the data stays
	$(PY) -m sparkify.cluster down

cluster-status: | $(STAMP) ## what of the cluster runs, its workers and applications
	$(PY) -m sparkify.cluster status

clean: ## remove the lakehouse (warehouse, metastore, logs) under SPARKIFY_HOME
	rm -rf "$(SPARKIFY_HOME)"
