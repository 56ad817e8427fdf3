# Accord — `make demo` runs the engine with simulated traffic; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
PGCTL := pg_ctlcluster --skip-systemctl-redirect

.PHONY: demo test lint self-contained bench soak soak-tests venv services browser dcmtk screenshots clean \
	audit lock fuzz dist

# The test environment is requirements.lock (pins used as constraints): what CI tests is
# what `make audit` audited.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
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

test: lint audit services browser
	$(BIN)/pytest -q

# Known vulnerabilities in the locked dependencies (pip-audit; scripts/audit.py says how
# it decides, and why it fails under CI when it cannot run).
audit: $(STAMP)
	$(BIN)/python scripts/audit.py requirements.lock

# Re-pin the test environment to the newest releases within pyproject.toml's ranges.
lock:
	rm -rf .venv-lock && $(PY) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[test]'
	{ grep '^#' requirements.lock; \
	  .venv-lock/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .venv-lock

# Each fuzz target for 10 minutes (a short run of each is part of make test); a crash
# leaves its input under fuzz/crashes/ (fuzz/run.py says what to do with it).
fuzz: $(STAMP)
	@for t in hl7 framing dicom config; do echo "== fuzz $$t"; \
	  $(BIN)/python fuzz/run.py $$t --seconds $${FUZZ_SECONDS:-600} || exit 1; done

# ruff, mypy --strict, and the import contracts of pyproject.toml ([tool.importlinter]:
# the pure core does no I/O, the layers, no import cycle); --no-cache: nothing written here.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz scripts
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo
	@bash scripts/check-self-contained.sh

# No path outside the repository, no citation of a document that is not in it.
self-contained:
	@bash scripts/check-self-contained.sh

bench: $(BENCH_STAMP) services dcmtk
	@for b in parse ingest mwl identity console scale aging floor; do \
	  if [ -f bench/$$b.py ]; then echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; fi; \
	done

# The wheel and the sdist in dist/ (what docs/operations.md installs from).
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# Refresh the README's screenshots: the browser test run with docs/img as their folder
# (a plain `make test` writes them to a temporary folder and leaves the tree clean).
screenshots: $(STAMP) browser
	$(BIN)/pytest -q tests/web/browser/test_browser.py -k integration_engineers_day \
	  --readme-images docs/img

# One hour of `accord serve` under a realistic mix (bench/soak.py says what runs and what
# it checks; SOAK_SECONDS shortens it); its figures go to bench/RESULTS.md.
soak: $(STAMP)
	$(BIN)/python bench/soak.py --seconds $${SOAK_SECONDS:-3600}

# The slow tests at their full size (crash and multi-node custody).
soak-tests: $(STAMP) services
	ACCORD_SOAK=1 $(BIN)/pytest -q -m slow

clean:
	rm -rf $(VENV) accord-data dist build .pytest_cache .mypy_cache .ruff_cache
