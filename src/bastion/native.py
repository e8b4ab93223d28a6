"""Whether Bastion runs compiled: setup.py compiles its hot modules with mypyc when it can.

A build without a C compiler installs pure Python, which works the same, about half as fast;
`bastion rules lint` says which one runs. In a source checkout (an editable install) the
compiled files sit beside the sources, and a source edited after the build would silently not
run: `stale()` names those, and the test suite refuses to start with any.
"""

from __future__ import annotations

import importlib
import os
from importlib.machinery import EXTENSION_SUFFIXES

# The modules setup.py compiles: the rule engine, the detectors' tokenizers, and the request
# path's adapters (WSGI, ASGI, addresses, client IP). context.py stays interpreted: the sink
# hooks and the tests wrap a request's `run`, which compiled callers would call directly.
COMPILED_MODULES = (
    "bastion.waf.engine",
    "bastion.waf.patterns",
    "bastion.waf.plan",
    "bastion.waf.verdicts",
    "bastion.waf.limits",
    "bastion.waf.transformers",
    "bastion.waf.operators",
    "bastion.waf.exploits",
    "bastion.waf.gcclock",
    "bastion.detect.sql",
    "bastion.detect.html",
    "bastion.detect.shell",
    "bastion.detect.sqlinject",
    "bastion.detect.shellinject",
    "bastion.detect.pathinject",
    "bastion.detect.urlinject",
    "bastion.detect.sqlsanitize",
    "bastion.contrib.wsgi",
    "bastion.contrib.asgi",
    "bastion.addresses",
    "bastion.clientip",
    "bastion.activity",
    "bastion.tracing.otlpencode",
    "bastion.tracing.attributes",
    "bastion.tracing.server",
    "bastion.tracing.datastore",
    "bastion.report.obfuscation",
)


def _file_of(module: str) -> str:
    return str(getattr(importlib.import_module(module), "__file__", "") or "")


def compiled() -> list[str]:
    """The modules of COMPILED_MODULES loaded from compiled extension files."""
    return [name for name in COMPILED_MODULES
            if _file_of(name).endswith(tuple(EXTENSION_SUFFIXES))]


def stale() -> list[str]:
    """In a source checkout, the compiled modules whose source beside them changed
    after the build: the build runs, not the source (rebuild with `make native`). An
    installed package is never stale: its files' dates are those of its unpacking."""
    found = []
    for name in compiled():
        binary = _file_of(name)
        if _INSTALLED.intersection(binary.split(os.sep)):
            continue
        source = os.path.join(os.path.dirname(binary), name.rsplit(".", 1)[1] + ".py")
        try:
            if os.stat(source).st_mtime > os.stat(binary).st_mtime:
                found.append(name)
        except OSError:
            continue  # no source beside it
    return found


# Directories that hold installed packages rather than a checkout.
_INSTALLED = frozenset(("site-packages", "dist-packages"))


def summary() -> str:
    """One line: how the engine runs."""
    done = compiled()
    if len(done) == len(COMPILED_MODULES):
        return "engine: compiled (mypyc)"
    if not done:
        return "engine: pure Python (no C compiler at install, or BASTION_PURE_PYTHON=1)"
    return f"engine: partly compiled ({len(done)} of {len(COMPILED_MODULES)} modules)"
