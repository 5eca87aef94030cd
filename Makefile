# Two commands for a fresh machine: `make test` and `make serve`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q -c constraints.txt
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed

.PHONY: install test lint serve bench gpu-check redis browser build-deps clean example

# What the optional JPEG region decoder (augsvc/codec/_jpeg_region.c) builds with: a C
# compiler, Python's headers and libjpeg-turbo's. Without them the install goes on and
# JPEGs decode whole.
build-deps:
	@{ command -v cc && [ -f /usr/include/jpeglib.h ] && \
	   $(PYTHON) -c "import os, sysconfig; assert os.path.isfile(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))"; \
	 } >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq gcc libc6-dev libjpeg-dev python3-dev; }

$(STAMP): pyproject.toml constraints.txt clients/python/pyproject.toml augsvc/codec/_jpeg_region.c | build-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PIP) -e '.[dev,bench,example,s3]' -e 'clients/python[torch]'
	touch $@

install: $(STAMP)

redis:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }

# Debian's chromium and its driver, for the playground's browser tests (no browser download).
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/vulture

test: $(STAMP) redis browser lint
	$(PY) -m pytest -q

# `make serve PORT=8080 HOST=0.0.0.0` for another address (PORT=0 picks a free port; the
# start-up line names it).
HOST ?= 127.0.0.1
PORT ?= 8000
serve: $(STAMP)
	$(VENV)/bin/augsvc serve --host $(HOST) --port $(PORT)

bench: $(STAMP)
	$(VENV)/bin/augsvc bench engine

# On a CUDA machine: pytest -m gpu, the benchmarks on cuda and the first-run probes, one
# report; without CUDA it says so and exits 0. `make gpu-check GPU=cuda:1` for another GPU.
GPU ?= cuda
GPU_REPORT ?= gpu-check.json
gpu-check: $(STAMP)
	$(PY) -m augsvc.bench.gpu_check --device $(GPU) --out $(GPU_REPORT)

example: $(STAMP)
	$(PY) examples/train_cnn.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
