# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test test-fast test-spark lint docs bench bench-screen clean image chromium wrk card-quality card-pictures

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/cytopenia-cds serve --dev --host $(HOST) --port $(PORT)

# The real FHIR engine the integration tests run against (Medplum, pinned by its package-lock.json).
FHIR_SERVER := tests/fhir_server
$(FHIR_SERVER)/node_modules/.package-lock.json: $(FHIR_SERVER)/package-lock.json
	npm ci --prefix $(FHIR_SERVER) --no-audit --no-fund --loglevel=error

# The SMART app's end-to-end test drives Debian's chromium with playwright-core (pinned by its package-lock.json).
BROWSER_TEST := tests/browser
$(BROWSER_TEST)/node_modules/.package-lock.json: $(BROWSER_TEST)/package-lock.json
	npm ci --prefix $(BROWSER_TEST) --no-audit --no-fund --loglevel=error

# Installs chromium where it is missing and we are root (CI); elsewhere the browser test skips and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium) || \
	      echo "chromium could not be installed: the SMART app browser test will skip"; \
	    else echo "chromium is not installed (needs root to install): the SMART app browser test will skip"; fi; }

test: $(VENV)/.installed-test $(FHIR_SERVER)/node_modules/.package-lock.json $(BROWSER_TEST)/node_modules/.package-lock.json chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Unit and in-process tests only: the quick loop while editing (about a minute).
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow and not spark" $(PYTEST_ARGS)

# Population screening on Apache Spark (PySpark is an optional extra: a large download with its JARs; needs Java 17).
$(VENV)/.installed-spark: pyproject.toml $(VENV)/.installed-test
	$(BIN)/pip install -q -e '.[test,spark]'
	touch $@

test-spark: $(VENV)/.installed-spark
	$(BIN)/python -m pytest -m spark tests/test_screening_spark.py $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Cards per chart opening, repeated orders, summary and detail lengths, forbidden strings over the corpus
# (docs/card-quality.md); tests/test_card_quality.py fails `make test` when a limit is broken.
card-quality: $(VENV)/.installed-test
	$(BIN)/python -m tests.card_quality

# The cards of three typical patients as HTML and headless-Chromium PNGs in docs/cards/ (needs chromium).
card-pictures: $(VENV)/.installed-test
	$(BIN)/python -m tests.card_pictures

# The served benchmark drives the servers with wrk (Debian package); installed like chromium where we are root.
wrk:
	@command -v wrk >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk) || \
	      echo "wrk could not be installed: the served benchmark will skip"; \
	    else echo "wrk is not installed (needs root to install): the served benchmark will skip"; fi; }

bench: $(VENV)/.installed-test $(FHIR_SERVER)/node_modules/.package-lock.json wrk
	$(BIN)/python -m benchmarks

# The population screen on ~1M generated Observations (made on demand, never committed; see benchmarks/screen.py).
bench-screen: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.screen

image:  # optional: build and check the container with podman (see README "Operations")
	docker/verify-image.sh

clean:
	rm -rf $(VENV) .pytest_cache $(FHIR_SERVER)/node_modules $(BROWSER_TEST)/node_modules
