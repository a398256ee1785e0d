# The two commands of the README: `make demo` (main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-all bench clean

# setup.sh touches the mark itself, only when every step worked (a failed one is retried)
$(VENV)/.installed: pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/fireflys demo

# one pytest worker per core (pytest-xdist): the suite is mostly simulation, CPU-bound
test: setup
	$(PY) -m pytest -q -n auto

test-all: setup
	$(PY) -m pytest -q -n auto -m "slow or not slow"

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build .pytest_cache
