# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv and install the project first; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench soak lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ecc demo --speed 5

test: $(STAMP) lint
	$(BIN)/python -m pytest

# Every benchmark in turn, one table at the end, bench/results/latest.json (docs/bench.md).
bench: $(STAMP)
	$(BIN)/python -m bench.run

# The fault suite's kill -9 test with 200 kills instead of 20 (about 15 minutes).
soak: $(STAMP)
	ECC_SOAK_KILLS=200 $(BIN)/python -m pytest tests/faults/test_kill_service.py -s

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
