# Accord — `make demo` runs the engine with simulated traffic; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PGCTL := pg_ctlcluster --skip-systemctl-redirect

.PHONY: demo test lint bench soak venv services clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/accord demo

# Start what the tests need: PostgreSQL (trust auth on 127.0.0.1:5432, database `test`).
services:
	@bash scripts/ensure-services.sh

test: $(STAMP) services
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP) services
	$(BIN)/python bench/parse.py

soak: $(STAMP) services
	$(BIN)/pytest -q -m slow

clean:
	rm -rf $(VENV) accord-data .pytest_cache .mypy_cache .ruff_cache
