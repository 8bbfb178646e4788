# make run   — start the platform: web, worker, beat (embedded PostgreSQL/Redis unless
#              DATABASE_URL/REDIS_URL are set); Ctrl-C stops everything
# make test  — create the virtualenv, install, run the whole suite (the machine's
#              PostgreSQL/Redis when they answer on the default ports, embedded otherwise)
# make bench — the provisioning benchmark (bench/provision.py)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint format typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m saas.run

PYTEST_ARGS ?= -n 2

test: $(STAMP)
	$(PY) -m saas.embedded --mode test -- $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m saas.embedded --mode test -- $(PY) -m bench.provision $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) .data staticfiles
