# Everything runs inside .venv in the repository root, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench bench-quick bench-report clean

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
	$(BIN)/python bench/volume4d.py
	$(BIN)/python bench/dicomweb.py
	$(BIN)/python bench/report.py

# Fewer runs, the same ratios (smaller inputs only where start-up would not then weigh more):
# about 2 minutes; fails when a ratio misses its target by > 10 %.
# Run it before you stop whenever a change touches reading, scanning, volumes or the catalog.
bench-quick: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	@status=0; for b in startup folder volume volume4d edit anonymize index viewer dicomweb; do \
		$(BIN)/python bench/$$b.py --quick || status=1; done; \
	$(BIN)/python bench/report.py; exit $$status

bench-report: $(STAMP)
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) demo_data bench/_work .pytest_cache .mypy_cache .ruff_cache
