# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv and install the project first; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench soak lint typecheck clean chromium vendor

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) vendor
	$(BIN)/ecc demo --speed 5

test: $(STAMP) vendor lint chromium
	$(BIN)/python -m pytest

# The web console's map library (Leaflet), pinned and integrity-checked, vendored into
# consoles/static/vendor/ (committed; fetched with npm only when missing or altered).
vendor:
	./tools/vendor-leaflet.sh

# The web console's browser tests run in Debian's headless Chromium (no browser is
# downloaded from anywhere else): installed here when it is missing.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
		elif command -v sudo >/dev/null 2>&1; then \
			sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
		else \
			echo "make test needs Debian's chromium for the browser tests: run 'apt-get install chromium' as root"; exit 2; \
		fi; \
	fi

# Every benchmark in turn, one table at the end, bench/results/latest.json (docs/bench.md).
bench: $(STAMP)
	$(BIN)/python -m bench.run

# The fault suite's kill -9 test with 200 kills instead of 10 (about 15 minutes), the
# reconnect storm with 1,000 consoles instead of 400, and the outcome tests with the
# half-hour morning.
soak: $(STAMP)
	ECC_SOAK_KILLS=200 $(BIN)/python -m pytest tests/faults/test_kill_service.py -s
	ECC_STORM_CONSOLES=1000 $(BIN)/python -m pytest tests/consoles/test_commands.py -s \
		-k reconnect_storm
	ECC_SOAK_OUTCOMES=1 $(BIN)/python -m pytest tests/sim/test_outcomes.py -s

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
