# Bastion developer tasks.
#   make venv      create .venv and install bastion (editable) with all extras
#   make test      run the test suite (compiled), then the compiled modules' tests on pure Python
#   make native    recompile the hot modules in place after editing them (setup.py)
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
# Touched after the hot modules were compiled in place (setup.py, bastion/native.py).
NATIVE_STAMP := $(VENV)/.native
# (A superset of what is compiled, kept simple: see COMPILED_MODULES in bastion/native.py.)
NATIVE_SOURCES := $(wildcard src/bastion/waf/*.py src/bastion/detect/*.py src/bastion/contrib/*.py) \
	$(wildcard src/bastion/tracing/*.py src/bastion/*.py)
# The tests of the compiled modules, run again on pure Python (a copy of src without the
# compiled files): what installs without a C compiler must work too.
PURE_TESTS := tests/waf tests/detect tests/contrib tests/test_addresses.py tests/test_clientip.py \
	tests/tracing/test_lightspan.py tests/tracing/test_otlpwire.py tests/tracing/test_server.py \
	tests/tracing/test_sampling.py tests/tracing/test_datastore.py tests/tracing/test_batching.py \
	tests/report/test_obfuscation.py
EXTRAS := dev,flask,django,fastapi,demo

# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k waf -x"
PYTEST_ARGS ?=

.PHONY: venv native test test-pure lint demo services services-stop clean

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
	touch $@ $(NATIVE_STAMP)

native: $(NATIVE_STAMP)

# The editable install compiled the hot modules once; an edit since then needs a rebuild, or the
# tests would run the old build (tests/conftest.py refuses to start with stale modules).
# --force: a module whose own stub did not change would keep its old date otherwise.
$(NATIVE_STAMP): $(NATIVE_SOURCES) setup.py | $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace --force
	touch $@

# Only what the demo needs: no test tools, no database drivers.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[demo]'
	touch $@

# The services are best effort here (they need root); under CI=true a test that needs a
# missing service fails.
test: venv native
	-@scripts/services.sh >/dev/null 2>&1 || echo "services not started: tests that need them skip"
	$(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-pure

test-pure: venv
	@rm -rf $(VENV)/pure && mkdir -p $(VENV)/pure
	cp -r src $(VENV)/pure/ && find $(VENV)/pure -name '*.so' -delete
	BASTION_EXPECT_PURE=1 PYTHONPATH=$(VENV)/pure/src $(BIN)/pytest -p no:cacheprovider $(PURE_TESTS)

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build
	find src -name "*.so" -delete
