# Everything runs inside .venv in the repository root, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/folder.py
	$(BIN)/python bench/volume.py
	$(BIN)/python bench/edit.py
	$(BIN)/python bench/anonymize.py
	$(BIN)/python bench/index.py
	$(BIN)/python bench/viewer.py
	$(BIN)/python bench/codecs.py

clean:
	rm -rf $(VENV) demo_data bench/_work .pytest_cache .mypy_cache .ruff_cache
