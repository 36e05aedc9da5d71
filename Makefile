# The two quick-start commands: `make tour` (the main job) and `make test` (the tests).
# Each creates .venv on first use: the pinned torch first, then the project with the extras
# that command needs (the tour: report + sklearn; the tests: dev).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export NO_MKDOCS_2_WARNING := 1

.PHONY: venv tour test typecheck mutate docs docs-serve lint format bench wheel browser-check clean

# the core: the pinned torch, then the project (editable) with its core dependencies only;
# stamp files, not bin/smithing (each editable install rewrites that script)
venv: $(VENV)/.core

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e .
	@rm -f $(VENV)/.extra-*
	@touch $@

# one stamp per extra installed into the venv (reinstalled when pyproject.toml changes)
$(VENV)/.extra-%: $(VENV)/.core
	$(BIN)/pip install -q -e ".[$*]"
	@touch $@

tour: $(VENV)/.extra-tour
	$(BIN)/smithing tour --out smithing-out

test: $(VENV)/.extra-dev
	$(BIN)/ruff check src tests benchmarks
	$(MAKE) typecheck
	$(BIN)/pytest

# mypy on the core (pyproject's [tool.mypy] files); fails on an error not in mypy-baseline.txt
typecheck: $(VENV)/.extra-dev
	$(BIN)/mypy | $(BIN)/mypy-baseline filter

# the documentation site (docs/ -> site/, mkdocs.yml); strict: a broken reference or warning fails
docs: $(VENV)/.extra-docs
	$(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.extra-docs
	$(BIN)/mkdocs serve

lint: $(VENV)/.extra-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# mutation testing of core modules against their tests (scripts/mutate.py; bar: 90 % killed)
mutate: $(VENV)/.extra-dev
	$(BIN)/python scripts/mutate.py

format: $(VENV)/.extra-dev
	$(BIN)/ruff format src tests benchmarks

bench: $(VENV)/.extra-dev
	$(BIN)/python benchmarks/bench_fit.py

# the wheel, installed into a fresh venv with the pinned torch, imported and run
wheel: venv
	scripts/check-wheel.sh "$(PYTHON)" "$(TORCH)"

# the tour's report and a doctor page in headless Chromium, with screenshots
# (needs Debian's chromium: apt-get install chromium; Playwright drives it, no browser download)
browser-check: $(VENV)/.extra-tour
	$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install -q playwright
	$(BIN)/python scripts/browser-check.py --out browser-check

clean:
	rm -rf $(VENV) smithing-out site dist build browser-check .pytest_cache .ruff_cache
