# The two entry points of the README, and the benchmark.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench install lint

$(BIN)/queuectl: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/queuectl

install: $(BIN)/queuectl

demo: install
	$(BIN)/queuectl demo

# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: the tests start the CLI
# hundreds of times, and compiling queuectl each time would double their run time.
test: install
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -q -p no:cacheprovider -n 2

bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
