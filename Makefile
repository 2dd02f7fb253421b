# podrec — two commands on a fresh machine: `make demo` and `make test`.
# Everything else here is what those two call, or a convenience for developers.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# PODREC_PROFILE=cluster: every part a distributed engine on this machine, state under data/cluster.
PODREC_PROFILE ?= local
PROFILE_DATA := $(if $(filter cluster,$(PODREC_PROFILE)),data/cluster,data)
export DAGSTER_HOME ?= $(CURDIR)/$(PROFILE_DATA)/dagster_home
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: setup python demo test unit faults bench lint docs dev dagster-home infra-up infra-down lock

## setup: idempotent, cached install of the virtualenv, Spark/Delta jars, Kafka and FerretDB
setup:
	@bash infra/setup.sh

## python: only the virtualenv (what `make unit` needs)
python:
	@bash infra/setup.sh --python-only

## demo: fresh clone → local services up → the main job materialized → a printed summary
demo: setup dagster-home
	$(BIN)/podrec infra up
	$(BIN)/podrec demo

## test: lint, the layering contracts, the docs (strict: a broken link fails), then pytest: unit +
## integration against the real services (the fault lane, which kills and races whole clusters, is `make faults`)
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest -m "not faults"

## faults: the fault lane — brokers, workers and stores killed, disks filled, writers raced, a bad day
## backfilled, each cluster-profile service asked for what a client may not have (about an hour, 2 cores)
faults: setup
	$(BIN)/pytest -m faults

## unit: the fast lane — unit tests only: no Spark jars, no Kafka, no FerretDB, no JVM
unit: python
	$(BIN)/pytest tests/unit -q

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports && $(BIN)/mkdocs build --strict --quiet

## docs: docs/ as a site on http://127.0.0.1:8008 while you write
docs: python
	$(BIN)/mkdocs serve -a 127.0.0.1:8008

## dev: the Dagster UI on http://127.0.0.1:3000
# The daemon `dagster dev` starts runs the graph by its automation conditions (podrec_assets/automation.py).
dev: setup dagster-home
	PODREC_AUTOMATION_RUNNING=true $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

dagster-home:
	@mkdir -p $(DAGSTER_HOME)
	@[ -f $(DAGSTER_HOME)/dagster.yaml ] || cp infra/dagster$(if $(filter cluster,$(PODREC_PROFILE)),-cluster).yaml $(DAGSTER_HOME)/dagster.yaml

infra-up: setup
	$(BIN)/podrec infra up

infra-down:
	$(BIN)/podrec infra down

## lock: re-pin requirements.lock from requirements.in (then commit both)
lock:
	python3 -m venv /tmp/podrec-lock && /tmp/podrec-lock/bin/pip install -q -r requirements.in
	( echo "# Full pinned dependency set (pip freeze of requirements.in). Regenerate: make lock"; \
	  /tmp/podrec-lock/bin/pip freeze --exclude-editable ) > requirements.lock
	rm -rf /tmp/podrec-lock

## bench: benchmarks beside their peers, in one run each (results in bench/results/)
bench: setup
	$(BIN)/python bench/fuzz_validators.py
	$(BIN)/python bench/kafka_to_bronze.py
	$(BIN)/python bench/content.py
	$(BIN)/python bench/als.py
	$(BIN)/python bench/publish.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/public_log.py
	$(BIN)/python bench/item_models.py
	$(BIN)/python bench/scale.py --size S --days 1
	$(BIN)/python bench/cluster.py
