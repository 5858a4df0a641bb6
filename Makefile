# sealcheck: every target bootstraps from nothing but python3 and the package registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench eval clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/python -m tests.helpers.demo

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_pipeline.py

eval: install
	$(BIN)/python benchmarks/eval_registration.py
	$(BIN)/python benchmarks/eval_verdicts.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
