# Two commands from a fresh clone: `make run` (the main job) and `make test` (lint, types, tests).
# Both create .venv on first use. The Jakarta data is read from $TWIN_DATA_DIR, else data/jakarta,
# else ../shared/data/jakarta (this repository's development and CI layout).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TWIN_DATA_DIR ?= $(if $(wildcard data/jakarta),data/jakarta,../shared/data/jakarta)
# absolute, so the notebook (run from notebooks/) and the API's workers find it too
override TWIN_DATA_DIR := $(abspath $(TWIN_DATA_DIR))
export TWIN_DATA_DIR

.PHONY: run test bench lint clean

$(BIN)/twin: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/twin
	$(BIN)/twin city map --out reports_out/city.png
	$(BIN)/twin run scenarios/jakarta-2016.toml

lint: $(BIN)/twin
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest
	$(BIN)/pytest -q --nbmake notebooks/reproduce_kpis.ipynb

bench: $(BIN)/twin
	$(BIN)/twin bench city
	$(BIN)/twin bench sim

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
