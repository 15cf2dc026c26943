# Ticket Triage: `make run` starts the whole service, `make test` runs the suite.
# Both create the virtual environment (.venv, Python 3.13) and install the project first.

SHELL := /bin/bash
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Find a Python 3.13: $PYTHON if given, python3.13 on PATH, then pyenv's 3.13.x.
PYTHON ?= $(shell \
  if command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys; assert sys.version_info[:2]==(3,13)' >/dev/null 2>&1; then command -v python3.13; \
  elif command -v pyenv >/dev/null 2>&1; then \
    v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$$' | sort -V | tail -n1); \
    [ -n "$$v" ] && PYENV_VERSION=$$v pyenv which python3.13 2>/dev/null; \
  fi)

.PHONY: help venv test test-all lint typecheck check run db-up db-down clean

help:
	@echo "make run    - start the service (embedded Postgres, API, Dagster)"
	@echo "make test   - install everything and run the test suite"
	@echo "make check  - ruff + mypy"

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: Python 3.13 not found. Install python3.13 on PATH, or pyenv with a 3.13.x version," >&2; \
	  echo "       or pass PYTHON=/path/to/python3.13 to make." >&2; exit 1; fi
	@echo "Using $(PYTHON)"
	@[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(VPY) -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/pytest -q

test-all: $(STAMP)
	RUN_SLOW=1 $(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck

# Without LLM_BASE_URL (in the environment or .env) the offline demo LLM is installed first.
run: $(STAMP)
	@if [ -z "$$LLM_BASE_URL" ] && ! grep -qsE '^LLM_BASE_URL=.+' .env; then $(MAKE) --no-print-directory offline-llm; fi
	$(VENV)/bin/triage run

db-up: $(STAMP)
	$(VENV)/bin/triage db up

db-down: $(STAMP)
	$(VENV)/bin/triage db down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Offline demo LLM: a tiny GGUF model served over Ollama's API (used when LLM_BASE_URL is unset).
# The first `make offline-llm` compiles llama-cpp-python (4-8 minutes on 2 cores, wheel cached
# in .cache/wheels); later runs take seconds.
.PHONY: offline-llm offline-llm-serve bench-offline-llm

offline-llm: $(STAMP)
	@scripts/build-llama-wheel.sh

offline-llm-serve: offline-llm
	$(VPY) -m offline_llm $(OFFLINE_LLM_ARGS)

bench-offline-llm: offline-llm
	$(VPY) bench/compare_offline_models.py $(BENCH_ARGS)

# Benchmarks: every figure next to its limit measured in the same run, one table (README "Performance").
# Minutes on 2 cores; `bench-quick` is the short version. BENCH_OPTS e.g. "--only 1 5 --output bench.md".
.PHONY: bench bench-quick

bench: $(STAMP)
	$(VPY) bench/run_all.py $(BENCH_OPTS)

bench-quick: $(STAMP)
	$(VPY) bench/run_all.py --quick $(BENCH_OPTS)
