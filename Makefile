# The two quick-start commands: `make tour` (the main job) and `make test` (the tests).
# Each creates .venv on first use: the pinned torch first, then the project.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: venv tour test lint typecheck mutate format bench clean

venv: $(BIN)/smithing

$(BIN)/smithing: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	@touch $(BIN)/smithing

tour: venv
	$(BIN)/smithing tour --out smithing-out

test: venv
	$(BIN)/ruff check src tests benchmarks
	$(MAKE) typecheck
	$(BIN)/pytest

# mypy on the core (pyproject's [tool.mypy] files); fails on an error not in mypy-baseline.txt
typecheck: venv
	$(BIN)/mypy | $(BIN)/mypy-baseline filter

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# mutation testing of core modules against their tests (scripts/mutate.py; bar: 90 % killed)
mutate: venv
	$(BIN)/python scripts/mutate.py

format: venv
	$(BIN)/ruff format src tests benchmarks

bench: venv
	$(BIN)/python benchmarks/bench_fit.py

clean:
	rm -rf $(VENV) smithing-out .pytest_cache .ruff_cache
