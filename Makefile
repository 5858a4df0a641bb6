# sealcheck: every target bootstraps from nothing but python3 and the package registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo serve test lint bench eval clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	touch $(STAMP)

demo: install
	$(BIN)/python -m tests.helpers.demo

# The HTTP API on 127.0.0.1:8000 (docs at /docs); SQLite and photos under ./data/ unless
# SEALCHECK_DATABASE_URL / SEALCHECK_DATA_DIR say otherwise.
serve: install
	$(BIN)/sealcheck serve --host 127.0.0.1 --port 8000

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_service.py

eval: install
	$(BIN)/python benchmarks/eval_registration.py
	$(BIN)/python benchmarks/eval_verdicts.py
	$(BIN)/python benchmarks/eval_calibration.py
	$(BIN)/python benchmarks/eval_defect_model.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
