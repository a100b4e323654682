# Two commands from a fresh clone: `make run` (the main job) and `make test` (lint, types, tests).
# Both create .venv on first use. The Jakarta data ships in data/jakarta (TWIN_DATA_DIR overrides).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ifdef TWIN_DATA_DIR
# absolute, so the notebook (run from notebooks/) and the API's workers find it too
override TWIN_DATA_DIR := $(abspath $(TWIN_DATA_DIR))
export TWIN_DATA_DIR
endif

.PHONY: run test bench lint clean

$(BIN)/twin: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# the calibrated December 2016 scenario; the same scenario and seed give the same results, so
# replacing the previous `make run` output is safe
run: $(BIN)/twin
	$(BIN)/twin city map --out reports_out/city.png
	$(BIN)/twin run scenarios/jakarta-2016-calibrated.toml --overwrite

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
	$(BIN)/twin bench run

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
