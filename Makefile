# The README's two commands: `make sync` (set up, migrate, run the main job on the sample → SQLite) and `make test`.
# Every target does its own set-up, so each works on a fresh machine with Python 3.11+.
SHELL := /bin/bash
.DEFAULT_GOAL := sync
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: setup sync test lint ui postgres bench

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	@$(UV) sync --frozen --quiet --compile-bytecode  # PYTHONDONTWRITEBYTECODE is common in images: compile once here, not in every process
	@mkdir -p "$(DAGSTER_HOME)" && cp -f dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"

sync: setup
	@$(UV) run --frozen sync-pipeline db upgrade
	@$(UV) run --frozen sync-pipeline sync

postgres:
	@bash .ci/postgres

test: setup postgres
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen mypy
	@$(UV) run --frozen dg check defs >/dev/null  # Dagster 1.13: dg check defs (definitions validate is deprecated)
	@$(UV) run --frozen pytest

ui: setup
	@$(UV) run --frozen dagster dev -w workspace.yaml

bench: setup postgres
	@for script in benchmarks/*.py; do $(UV) run --frozen python "$$script"; done
