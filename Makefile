# The two commands of the README. Both build their own virtual environment first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

# Exactly the versions of requirements.lock (so a new release upstream cannot turn a fresh
# clone red), then the project itself without resolving anything again.
$(STAMP): pyproject.toml requirements.lock setup.py models/_records.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/churnbot demo --slack

test: $(STAMP)
	scripts/ensure-redis
	scripts/ensure-postgres
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest
	PY=$(BIN)/python scripts/test-clock

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
