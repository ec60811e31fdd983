# Two entry points for a fresh machine: `make demo` (the embedded training demo) and
# `make test` (the whole test suite). Both create/refresh .venv first (idempotent).
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: setup test demo benchmark

setup:
	VENV=$(VENV) tools/setup_env.sh

test: setup
	$(PYTHON) -m pytest

demo: setup
	$(PYTHON) -c "import swin_mm; print('swin_mm', swin_mm.__version__, 'ready')"
