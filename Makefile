# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv demo test check lint bench-env bench clean

$(STAMP): pyproject.toml setup.py src/dataward/core/_leafhash.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m dataward.demo

# Two lanes over one suite: every test is in exactly one of them (`-m slow` + `-m "not slow"` = all).
# - `make test`: everything, the tests marked slow included (what .ci/run runs), on two workers.
# - `make check`: the quick lane for development, about a minute on two idle cores: ruff and every test not
#   marked slow. Slow are the CLI-in-a-subprocess and multi-process tests, the README tour, browser and API
#   fuzzing, the PostgreSQL case of each catalog test (the SQLite case stays), crash injection, big fuzzers,
#   model training and mypy; each test package keeps fast tests in the quick lane. A test that takes more
#   than about half a CPU-second belongs in the slow lane (`@pytest.mark.slow`, or `pytestmark` for a module).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 -q -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache

# Benchmark environments: peers (some AGPL, some heavy) live here only, never in the runtime deps.
# One venv per benchmark family, so that peers' pins cannot fight each other.
.venv-bench-%/.stamp: benchmarks/requirements-%.txt pyproject.toml
	test -x .venv-bench-$*/bin/python || $(PYTHON) -m venv .venv-bench-$*
	.venv-bench-$*/bin/python -m pip install -q --upgrade pip
	.venv-bench-$*/bin/python -m pip install -q -e . -r benchmarks/requirements-$*.txt
	touch $@

bench-env: $(patsubst benchmarks/requirements-%.txt,.venv-bench-%/.stamp,$(wildcard benchmarks/requirements-*.txt))
