# Two entry points on a fresh machine: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXAMPLE ?= workbook/examples/court-metrage.xlsx

.PHONY: demo test lint bench factors template addin clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@mkdir -p out
	$(PY) -m carbonclap_xl.cli process $(EXAMPLE) -o out/court-metrage-traite.xlsx --force

test: $(STAMP)
	$(PY) -m ruff check carbonclap_xl tests bench tools
	$(PY) -m pytest -m "" -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check carbonclap_xl tests bench tools

bench: $(STAMP)
	$(PY) bench/engine.py
	$(PY) bench/process.py
	$(PY) bench/validate.py

factors: $(STAMP)
	$(PY) -m tools.factorbuild

template: $(STAMP)
	$(PY) -m tools.build_template

addin: $(STAMP)
	$(PY) -m carbonclap_xl.cli addin build -o workbook/CarbonClap.xlam --force

clean:
	rm -rf $(VENV) out dist build
