# Bastion developer tasks.
#   make venv      create .venv and install bastion (editable) with all extras
#   make test      run the test suite
#   make lint      ruff + mypy --strict
#   make demo      run the demo
#   make services  install/start PostgreSQL, MariaDB and Redis for tests
#                  (make services-stop to stop them)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Touched after a successful install; rebuilt whenever pyproject.toml changes.
STAMP  := $(VENV)/.installed
EXTRAS := dev,flask,django,fastapi,demo

# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k waf -x"
PYTEST_ARGS ?=

.PHONY: venv test lint demo services services-stop clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	touch $@

test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

# Runs both checkers even if the first fails; fails if either failed.
lint: venv
	@rc=0; \
	echo "$(BIN)/ruff check src tests"; $(BIN)/ruff check src tests || rc=1; \
	echo "$(BIN)/mypy --strict src"; $(BIN)/mypy --strict src || rc=1; \
	exit $$rc

demo: venv
	$(BIN)/bastion demo

services:
	scripts/services.sh

services-stop:
	scripts/services.sh stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
