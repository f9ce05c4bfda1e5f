# Two commands from a fresh clone:  make grade  |  make test
# Both are idempotent: a second run only re-does what changed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
OUT    ?= reports
JOBS   ?= 1

.PHONY: grade test setup setup-dev system data clean bench

grade: setup data
	$(PY) -m grader grade submissions --out $(OUT) --jobs $(JOBS)

test: setup-dev data
	$(PY) -m ruff check grader tests bench scripts
	$(PY) -m pytest $(PYTEST_ARGS)

setup: system $(VENV)/.installed
setup-dev: system $(VENV)/.installed-dev

system:
	@bash scripts/setup-system.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,cluster]'
	touch $@

# Makes Fashion-MNIST available offline (Keras' cache is seeded from the best source found).
data: $(VENV)/.installed
	$(PY) -m grader data

bench: setup-dev data
	$(PY) bench/fingerprint.py
	$(PY) bench/retrain.py
	$(PY) bench/capture.py

clean:
	rm -rf $(VENV) reports .grader-cache
