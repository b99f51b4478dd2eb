# The README's commands. Everything runs from .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-console airflow bench clean-data

$(STAMP): requirements.txt constraints.txt pyproject.toml evm/package-lock.json evm/compile.js evm/contracts/StableToken.sol
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	# The local EVM node (anvil) and the token contracts, pinned in evm/package-lock.json.
	npm ci --prefix evm --ignore-scripts --no-audit --no-fund --silent
	node evm/compile.js
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/payouts run --recipients $${RECIPIENTS:-10000} --summary out/summary.json --out out

test: $(STAMP)
	$(BIN)/python -m pytest

# Only the console's end-to-end tests in a real Airflow (HITL approval, the dashboard in
# Chromium); `make test` runs them too.
test-console: $(STAMP)
	$(BIN)/python -m pytest -m console tests/console

airflow: $(STAMP)
	$(BIN)/python -m payouts_tooling.airflow_standalone

bench: $(STAMP)
	$(BIN)/python -m bench

clean-data:
	rm -rf .data out
