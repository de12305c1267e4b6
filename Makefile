# The two commands in the README: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint synth bench clean

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required, the Glue 5.0 runtime)"; exit 1; }
	@java -version >/dev/null 2>&1 || { echo "error: java not found (Spark 3.5 needs Java 17)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lake demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

synth: $(STAMP)
	$(BIN)/python app.py

bench: $(STAMP)
	$(BIN)/python bench/etl_throughput.py
	$(BIN)/python bench/burst.py

clean:
	rm -rf $(VENV) cdk.out build .lake
