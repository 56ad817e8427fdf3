# Accord — `make demo` runs the engine with simulated traffic; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
PGCTL := pg_ctlcluster --skip-systemctl-redirect

.PHONY: demo test lint self-contained bench soak venv services browser dcmtk screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The benchmarks' peers (python-hl7, hl7apy, recordlinkage, splink) are only needed by `make bench`.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/accord demo

# Start what the tests need: PostgreSQL (trust auth on 127.0.0.1:5432, database `test`).
services:
	@bash scripts/ensure-services.sh

# Debian's chromium for the browser tests (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# DCMTK's wlmscpfs is the peer of the worklist benchmark.
dcmtk:
	@command -v wlmscpfs >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk >/dev/null; }

test: lint services browser
	$(BIN)/pytest -q

# ruff, mypy --strict, and the import contracts of pyproject.toml ([tool.importlinter]:
# the pure core does no I/O, the layers, no import cycle); --no-cache: nothing written here.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo
	@bash scripts/check-self-contained.sh

# No path outside the repository, no citation of a document that is not in it.
self-contained:
	@bash scripts/check-self-contained.sh

bench: $(BENCH_STAMP) services dcmtk
	@for b in parse ingest mwl identity console scale aging; do \
	  if [ -f bench/$$b.py ]; then echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; fi; \
	done

# Refresh the README's screenshots: the browser test run with docs/img as their folder
# (a plain `make test` writes them to a temporary folder and leaves the tree clean).
screenshots: $(STAMP) browser
	$(BIN)/pytest -q tests/web/browser/test_browser.py -k integration_engineers_day \
	  --readme-images docs/img

soak: $(STAMP) services
	ACCORD_SOAK=1 $(BIN)/pytest -q -m slow

clean:
	rm -rf $(VENV) accord-data .pytest_cache .mypy_cache .ruff_cache
