# secmine — run `make` to list the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.secmine-installed

# Offline by default: no model or dataset download at run time, no DVC analytics.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv repro test verify explore lab status lock bench chaos clean-venv

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (secmine)" >/dev/null
	$(BIN)/dvc config --global core.analytics false >/dev/null 2>&1 || true
	touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies (torch CPU) and the Jupyter kernel

repro: $(STAMP) ## run the whole pipeline with DVC (dvc repro) on the default data
	$(BIN)/secmine external-link
	$(BIN)/dvc repro

test: $(STAMP) ## run the test suite (installs Debian's chromium for the browser test when missing)
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (Debian package) for the report's browser test"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }
	$(BIN)/python -m pytest

explore: $(STAMP) ## open the thread explorer (notebooks/explore.ipynb) in JupyterLab
	$(BIN)/secmine external-link
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR) notebooks/explore.ipynb

verify: $(STAMP) ## rerun the pipeline on a scratch clone of this commit, list what differs by stage (ARGS=--fast: stages needing no model)
	$(BIN)/python -m secmine.verify $(ARGS)

lab: $(STAMP) ## open JupyterLab on the project
	$(BIN)/secmine external-link
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR)

status: $(STAMP) ## show what DVC would rerun
	$(BIN)/dvc status

bench: $(STAMP) ## run the benchmarks in benchmarks/
	@failed=""; for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || failed="$$failed $$f"; done; \
	if [ -n "$$failed" ]; then echo "target missed:$$failed"; exit 1; fi

chaos: $(STAMP) ## kill -9 (20x) and random faults over a live crawl of the fake API: 0 threads lost, duplicated, differing
	$(BIN)/python benchmarks/chaos.py

lock: ## re-resolve and pin requirements.txt (needs network access to PyPI)
	rm -rf /tmp/secmine-lock && $(PYTHON) -m venv /tmp/secmine-lock
	/tmp/secmine-lock/bin/pip install --quiet torch==2.13.0 -e '.[test]'
	/tmp/secmine-lock/bin/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu/torch==2.13.0/' > requirements.txt
	$(PYTHON) tools/sync_environment.py

clean-venv: ## remove .venv
	rm -rf $(VENV)
