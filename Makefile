# ironwall.iptables developer entry points. Needs root (apt, network namespaces) on Debian 12.
#
#   make demo     set everything up, then show a demo firewall applied to a sandbox host
#   make test     set everything up, then run every test stage below, stopping at the
#                 first failure, and print a summary
#
# Single stages: setup sanity lint units integration molecule build changelog-lint bench
# They set the machine up first only when requirements.txt or scripts/ changed since
# the last `make setup`.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
SETUP_STAMP := $(ROOT)/.cache/setup.stamp

# The pinned tools first; the checkout is the collection ironwall.iptables through the
# link scripts/setup.sh makes (the ansible package's bundled collections stay visible
# too, e.g. containers.podman for Molecule).
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.cache/collections
export ANSIBLE_NOCOLOR := 1
export NO_COLOR := 1
export PYTHONDONTWRITEBYTECODE := 1
export DEBIAN_FRONTEND := noninteractive

# Extra pytest arguments, e.g. make units PYTEST_ARGS='-k parse -x'
PYTEST_ARGS ?=

# Order of `make test`: quick static checks first, the slow real-netfilter stages last.
TEST_STAGES := changelog-lint lint sanity units build integration molecule

.PHONY: help setup demo test $(TEST_STAGES) bench clean

help:
	@sed -n '1,/^$$/p' $(firstword $(MAKEFILE_LIST)) | sed 's/^# \{0,1\}//'

setup:
	@bash scripts/setup.sh

$(SETUP_STAMP): requirements.txt scripts/setup.sh scripts/get_pip_standin.py
	@bash scripts/setup.sh

demo: setup
	python3 tools/demo.py

test: setup
	@bash scripts/test-all.sh $(TEST_STAGES)

# ansible-test sanity on a staged copy (scripts/sanity.sh says why); the controller is
# .venv's Python 3.11, compile/import also run on every other installed Python 3.8-3.13.
sanity: $(SETUP_STAMP)
	@if [ -s tests/sanity/ignore-2.19.txt ]; then
		echo "sanity: tests/sanity/ignore-2.19.txt must stay empty (fix, don't ignore):" >&2
		cat tests/sanity/ignore-2.19.txt >&2
		exit 1
	fi
	bash scripts/sanity.sh

lint: $(SETUP_STAMP)
	ansible-lint --version
	ansible-lint

# Pure tests; finding no test at all is a failure (pytest exit 5), not a pass.
units: $(SETUP_STAMP)
	rc=0; python3 -m pytest tests/unit $(PYTEST_ARGS) || rc=$$?
	if [ "$$rc" -eq 5 ]; then echo "units: pytest collected no tests under tests/unit" >&2; fi
	exit "$$rc"

# Real iptables in throwaway network namespaces: root only, never the machine's own firewall.
integration: $(SETUP_STAMP)
	@if [ "$$(id -u)" -ne 0 ]; then echo "integration: needs root (network namespaces)" >&2; exit 1; fi
	rc=0; python3 -m pytest tests/integration -p no:cacheprovider $(PYTEST_ARGS) || rc=$$?
	if [ "$$rc" -eq 5 ]; then echo "integration: pytest collected no tests under tests/integration" >&2; fi
	exit "$$rc"

# Molecule scenarios live in extensions/molecule: default (podman driver, runc, no bridge
# network) and fleet (namespace hosts over real SSH, root only; FLEET_SIZE=30 for more hosts).
molecule: $(SETUP_STAMP)
	@if [ -d extensions/molecule ] && ls -d extensions/molecule/*/molecule.yml >/dev/null 2>&1; then
		export CONTAINERS_CONF="$(ROOT)/scripts/containers.conf"
		cd extensions && molecule test --all
	else
		echo "molecule: no scenarios yet (extensions/molecule/*/molecule.yml); nothing to run"
	fi

# Build the release tarball, install it into a temporary collections path and render
# every module's documentation from that installed copy.
build: $(SETUP_STAMP)
	bash scripts/build-check.sh

changelog-lint: $(SETUP_STAMP)
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

bench: $(SETUP_STAMP)
	@if [ -f bench/run.py ]; then
		python3 bench/run.py
	else
		echo "bench: bench/run.py does not exist yet; nothing to run"
	fi

# Remove what setup and the tests made inside the checkout (not the apt packages).
clean:
	rm -rf .venv .cache tests/output .pytest_cache .hypothesis .ansible
