# Two commands do everything on a fresh machine with Python 3.11+ and make:
#   make run    start the service on http://127.0.0.1:8080 (embedded SQLite, auth off for local use);
#               make run PORT=9000 HOST=0.0.0.0 to choose where it listens
#   make test   lint, type-check, check the import layers (lint-imports), then the fast tier, then
#               the slow tiers
#   make test-fast  the fast tier only (no browser, PostgreSQL, fuzz, slow, chaos, real or hostile
#               FHIR server tests): about 10 s on two cores
#   make fuzz   the long fuzz run (docs/security.md), beyond the fuzzing inside `make test`
#   make screenshots  refresh docs/images/ (the demo page in Chromium: five cases and the loading state)
#   make bench  the benchmark (bench/README.md): about 11 minutes; writes bench/results/ and README.md
# Each creates .venv/ and installs the project into it first (again whenever pyproject.toml changes);
# make test also installs tests/fhir_server's npm packages from their lock file (npm ci).

VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.deps-stamp
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8080
# The test tiers behind markers (pyproject.toml); the fast tier is everything else.
SLOW_TIERS := browser or postgres or fuzz or slow or chaos or fhirserver or hostile
# The fast tier runs on pytest-xdist workers, one a core up to four (worksteal: an idle worker takes
# tests from a busy one). It names its pytest plugins instead of loading every installed one: pytest
# rewrites the asserts of an autoloaded plugin's whole package (Hypothesis, anyio...) in every
# worker, about 0.5 s each, and Schemathesis serves only the fuzz modules, which the fast tier does
# not import (tests/support/tiers.py). A plugin the fast tier needs is added here. The slow tiers
# run as before.
FAST_TIER_PLUGINS := -p xdist.plugin -p xdist.looponfail -p anyio.pytest_plugin -p respx.plugin \
	-p _hypothesis_pytestplugin
FAST_TIER := PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(BIN)/pytest $(FAST_TIER_PLUGINS) \
	-n auto --maxprocesses 4 --dist worksteal -m "not ($(SLOW_TIERS))"

BENCH_STAMP := $(VENV)/.bench-stamp
# The real FHIR server of the tests (Medplum's engine on Node.js), from its committed lock file.
FHIR_SERVER := tests/fhir_server
FHIR_STAMP := $(FHIR_SERVER)/node_modules/.installed

.PHONY: run test test-fast fuzz bench screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	CDS_AUTH_REQUIRED=false $(BIN)/uvicorn cds_service.asgi:app --host $(HOST) --port $(PORT)

$(FHIR_STAMP): $(FHIR_SERVER)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm not found: the real FHIR server tests (tests/test_fhir_server_real.py) will skip"; \
	elif ! npm ci --no-audit --no-fund --prefix $(FHIR_SERVER); then \
	  echo "npm ci failed: the real FHIR server tests (tests/test_fhir_server_real.py) will skip"; \
	else \
	  touch $@; \
	fi

test: $(STAMP) $(FHIR_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy cds_service
	$(BIN)/lint-imports
	$(FAST_TIER)
	$(BIN)/pytest -m "$(SLOW_TIERS)"

test-fast: $(STAMP)
	$(FAST_TIER)

# The demo page in Chromium (Debian's): refreshes docs/images/ from the screenshot test.
screenshots: $(STAMP)
	$(BIN)/pytest -q tests/test_demo_browser.py -k "screenshots or loading_state"
	mkdir -p docs/images && cp test-artifacts/demo-*-1280.png docs/images/

fuzz: $(STAMP)
	$(BIN)/python tools/fuzz.py --examples $(or $(FUZZ_EXAMPLES),1000)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --update-readme $(BENCH_ARGS)
