# The two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test geo lint vendor bench-edge bench-enrich bench-report bench-automation bench-cluster clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mailbeacon demo

# Three test processes on any machine: most of the suite waits on real servers, SMTP and
# Chromium rather than computing, so three share two cores well (24 min serial -> ~15).
# Each process gets its own PostgreSQL database (tests/conftest.py).
TEST_PROCESSES ?= 3

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(TEST_PROCESSES)

geo: $(STAMP)
	[ -e var/geo ] && ls var/geo/*.mmdb >/dev/null 2>&1 || $(BIN)/mailbeacon geo fetch

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench-edge: $(STAMP)
	$(BIN)/python bench/edge.py

bench-enrich: $(STAMP)
	$(BIN)/python bench/enrich.py

bench-report: $(STAMP)
	$(BIN)/python bench/report.py

bench-automation: $(STAMP)
	$(BIN)/python bench/automation.py

# The multi-machine mode on this machine: nats-server, PostgreSQL, 2 edges, 3 workers,
# workers and NATS killed under load, every invariant checked (docs/deploy.md).
bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster.py --replay

# Re-fetch htmx, swagger-ui-dist and axe-core (tests) from npm at their pinned versions.
vendor:
	tools/vendor.sh

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
