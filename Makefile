# immich-remote: developer and demo tasks. Run as root on Debian 12 for the targets that need Docker.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= .demo
DEMO_HOSTS ?= 2
DEMO_IMMICH ?= 2.7.5
PYTEST_ARGS ?=
BENCH_ARGS ?= --hosts 1 4 8 --runs 3

.PHONY: help install-system install test test-unit lint demo demo-down bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install-system:  ## Debian packages (docker.io, sshd, mmdebstrap, ...), the Compose v2 plugin; start dockerd (root)
	scripts/install-system.sh

$(BIN)/immich-remote: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/immich-remote  ## the virtualenv with immich-remote (editable) and the test tools

test: install-system install  ## the whole suite: unit tests, the Immich fake, and the real test bed
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install  ## only what needs no Docker engine
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

lint: install  ## ruff
	$(BIN)/ruff check immich_remote tests

bench: install-system install  ## immich-remote vs Ansible, compose-farm and a bare SSH loop on test hosts (not in CI; ~1 h)
	$(BIN)/python -m bench.compare $(BENCH_ARGS)
	$(BIN)/python -m bench.pool

demo: install-system install  ## a sandbox (2 ML hosts, Immich fake, local ML), then deploy and status
	@if [ ! -f $(DEMO)/bed.json ]; then \
	  $(BIN)/python -m tests.testbed up --hosts $(DEMO_HOSTS) --dir $(DEMO) --fake-immich $(DEMO_IMMICH); fi
	$(BIN)/immich-remote -i $(DEMO)/inventory.yml deploy
	$(BIN)/immich-remote -i $(DEMO)/inventory.yml status

demo-down:  ## remove the sandbox
	$(BIN)/python -m tests.testbed down --dir $(DEMO)
	rm -rf $(DEMO)

clean:  ## remove the virtualenv and caches (not the test-bed image cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache dist build *.egg-info
