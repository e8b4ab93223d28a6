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
DEMO_STAMP := $(VENV)/.installed-demo
EXTRAS := dev,flask,django,fastapi,demo

# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k waf -x"
PYTEST_ARGS ?=

.PHONY: venv test lint demo services services-stop clean

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	@if pkg-config --exists mysqlclient 2>/dev/null; then \
		$(BIN)/python -m pip install 'mysqlclient>=2.1'; \
	else \
		echo "mysqlclient not installed (no libmysqlclient: run make services as root);" \
		     "its tests skip, or fail under CI=true"; \
	fi
	touch $@

# Only what the demo needs: no test tools, no database drivers.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[demo]'
	touch $@

# The services are best effort here (they need root); under CI=true a test that needs a
# missing service fails.
test: venv
	-@scripts/services.sh >/dev/null 2>&1 || echo "services not started: tests that need them skip"
	$(BIN)/pytest $(PYTEST_ARGS)

# Runs both checkers even if the first fails; fails if either failed.
lint: venv
	@rc=0; \
	echo "$(BIN)/ruff check src tests"; $(BIN)/ruff check src tests || rc=1; \
	echo "$(BIN)/mypy --strict src"; $(BIN)/mypy --strict src || rc=1; \
	exit $$rc

demo: $(DEMO_STAMP)
	$(BIN)/bastion demo

services:
	scripts/services.sh

services-stop:
	scripts/services.sh stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
