# Entry points for people and CI. `make setup` is idempotent and cheap when nothing changed,
# so every target that needs the virtualenv depends on it.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
# INSECURE=1: the local stack and the demo in plaintext (infra/insecure/topology.yaml), for
# debugging only; the default is the secure stack of infra/topology.yaml.
INSECURE ?=
INSECURE_FLAG := $(if $(INSECURE),--insecure)

.DEFAULT_GOAL := help
.PHONY: help setup lock demo test fuzz bench chaos stack-up stack-down stack-status lint clean

help:
	@echo "make setup         install redis-server, Java, Maven if missing; create $(VENV)"
	@echo "make lock          re-pin infra/local/requirements.lock to the newest versions pyproject allows"
	@echo "make demo          run the replication demo (ARGS=... passes options; INSECURE=1: plaintext, debugging only)"
	@echo "make test          unit + integration tests (starts the local stack if needed)"
	@echo "make fuzz          the differential harness against Feast, 2,000 examples (ARGS=...)"
	@echo "make bench         benchmarks"
	@echo "make chaos         the fault matrix on its own stack -> docs/fault-table.md (~30 min)"
	@echo "make stack-up      start Kafka, S3Proxy and one Redis per region (docs/local-stack.md)"
	@echo "make stack-down    stop every process the stack started"
	@echo "make stack-status  health, pids and ports of the stack"
	@echo "make lint          ruff check, ruff format --check, mypy"
	@echo "make clean         stop the stack, delete its state (.stack) and caches; keeps $(VENV)"

setup:
	@infra/local/setup.sh

lock: setup
	$(VENV)/bin/uv pip compile --quiet --upgrade --extra dev pyproject.toml \
		-o infra/local/requirements.lock

demo: setup
	$(VENV)/bin/replicator demo $(INSECURE_FLAG) $(ARGS)

test: setup
	$(PY) -m pytest tests/unit tests/integration tests/chaos $(ARGS)

# The differential harness with many generated examples (docs/replication.md); `make test`
# runs it with the bounded `ci` profile. ARGS='-k worker': the worker path only, no stack.
fuzz: setup
	$(PY) -m pytest tests/integration/test_differential.py --hypothesis-profile=fuzz \
		--hypothesis-show-statistics $(ARGS)

bench: setup
	$(PY) -m benchmarks $(ARGS)

chaos: setup
	$(PY) -m chaos $(ARGS)

stack-up: setup
	$(VENV)/bin/replicator stack up $(INSECURE_FLAG)

stack-down:
	@if [ -x $(VENV)/bin/replicator ]; then $(VENV)/bin/replicator stack down $(INSECURE_FLAG); \
	else echo "no $(VENV): nothing to stop"; fi

stack-status:
	$(VENV)/bin/replicator stack status $(INSECURE_FLAG)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean: stack-down
	rm -rf .stack .stack-insecure .stack-chaos .pytest_cache .mypy_cache .ruff_cache build
