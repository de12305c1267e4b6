# The two commands in the README: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test synth bench clean

$(STAMP): requirements.lock pyproject.toml package.json package-lock.json
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required, the Glue 5.0 runtime)"; exit 1; }
	@java -version >/dev/null 2>&1 || { echo "error: java not found (Spark 3.5 needs Java 17)"; exit 1; }
	@node -e 'const [major, minor] = process.versions.node.split(".").map(Number); process.exit(major > 20 || (major === 20 && minor >= 16) ? 0 : 1)' 2>/dev/null \
		|| { echo "error: node >= 20.16 not found (the CDK runs on Node.js; asl-validator checks the state machine)"; exit 1; }
	@command -v npm >/dev/null || { echo "error: npm not found (it installs asl-validator from package-lock.json)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	npm ci --no-audit --no-fund --silent
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
	rm -rf $(VENV) node_modules cdk.out build .lake
