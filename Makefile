# Worklane: `make run` runs the whole system, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint format install clean help

help:
	@echo "make run     web + worker + scheduler on SQLite and a private Redis"
	@echo "make test    ruff, then pytest on PostgreSQL and on SQLite (starts its own servers)"
	@echo "make bench   the performance harness (not part of make test); see docs/performance.md"
	@echo "make lint    ruff only"
	@echo "make clean   remove the virtual environment and caches (keeps instance/)"

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(STAMP)
	$(BIN)/python scripts/run.py

test: $(STAMP)
	bash scripts/test.sh $(ARGS)

bench: $(STAMP)
	bench/run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
