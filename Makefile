# The two entry points of the README, and the benchmark.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow bench install lint mutate mutate-core

$(BIN)/queuectl: pyproject.toml setup.py src/queuectl/runner/_spawn.c
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/queuectl

install: $(BIN)/queuectl

# The demo needs queuectl alone, not the tools of its tests: a development environment is
# used when there is one, else a small one is made for the demo.
DEMO_VENV := .venv-demo

$(DEMO_VENV)/bin/queuectl: pyproject.toml
	$(PY) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q .
	touch $(DEMO_VENV)/bin/queuectl

demo:
	@if [ -x $(BIN)/queuectl ]; then $(BIN)/queuectl demo; \
	else $(MAKE) --no-print-directory $(DEMO_VENV)/bin/queuectl && $(DEMO_VENV)/bin/queuectl demo; fi

# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: the tests start the CLI
# hundreds of times, and compiling queuectl each time would double their run time.
# Three workers on two cores: most tests wait on runner processes and the store, not the CPU.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -q -p no:cacheprovider -n 3

# Every guarantee, the chaos included at its short length (tests/README.md says what is slow).
test: install
	$(PYTEST) -m "not slow"

# What `test` leaves out: the tests marked slow, then the chaos again for CHAOS_SECONDS a store
# (0: not again).
CHAOS_SECONDS ?= 60
test-slow: install
	$(PYTEST) -m slow
	@if [ "$(CHAOS_SECONDS)" != 0 ]; then \
		echo "QUEUECTL_CHAOS_SECONDS=$(CHAOS_SECONDS) pytest tests/reliability/test_chaos.py"; \
		QUEUECTL_CHAOS_SECONDS=$(CHAOS_SECONDS) $(PYTEST) tests/reliability/test_chaos.py; \
	fi

bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Mutation testing of the pure modules (lifecycle, retry, durations, models, config, schedule)
# against tests/unit, with mutmut 3 (settings in pyproject.toml). A few minutes on one core:
# not part of `test` or CI. Lists the mutants that survived, then the score.
mutate: install
	$(BIN)/pip install -q -e '.[mutate]'
	rm -rf mutants
	$(BIN)/mutmut run --max-children 1
	$(BIN)/mutmut results
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python -c "import json; s = json.load(open('mutants/mutmut-cicd-stats.json')); \
		print(f\"mutation score: {s['killed']}/{s['total']} killed ({100 * s['killed'] / s['total']:.1f}%)\")"

# Planted bugs in what mutmut cannot reach: the store's SQL (both dialects), the store core and
# the runner, each run against the tests that should catch it (tests/mutation/mutants.py).
# Needs PostgreSQL, as the tests do. About seven minutes: not part of `test` or CI (CI checks
# only that each entry still applies). `make mutate-core K=sqlite` runs the matching ones.
mutate-core: install
	QUEUECTL_REQUIRE_PG=1 $(BIN)/python -m tests.mutation $(if $(K),-k $(K))
