# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test test-fast lint docs bench clean image card-quality card-pictures

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

test: $(VENV)/.installed-test $(FHIR_SERVER)/node_modules/.package-lock.json
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Cards per chart opening, repeated orders, summary and detail lengths, forbidden strings over the corpus
# (docs/card-quality.md); tests/test_card_quality.py fails `make test` when a limit is broken.
card-quality: $(VENV)/.installed-test
	$(BIN)/python -m tests.card_quality

# The cards of three typical patients as HTML and headless-Chromium PNGs in docs/cards/ (needs chromium).
card-pictures: $(VENV)/.installed-test
	$(BIN)/python -m tests.card_pictures

bench: $(VENV)/.installed-test $(FHIR_SERVER)/node_modules/.package-lock.json
	$(BIN)/python -m benchmarks

image:  # optional: build and check the container with podman (see README "Operations")
	docker/verify-image.sh

clean:
	rm -rf $(VENV) .pytest_cache $(FHIR_SERVER)/node_modules
