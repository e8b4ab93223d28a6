"""Exploit prevention at the sinks: SQL statements, files, outgoing URLs, processes.

While a request is handled, the application's calls to dangerous functions are seen by
Bastion first: the statement, path, URL or command joins the request's addresses, the exploit
rules compare it with the request's input, and in block mode a call that user input reshaped
is refused with `BlockedRequest` before it runs. Outside a request a hook costs one contextvar
lookup.

`install()` hooks each library when the application imports it (or at once if it already
has), so unused drivers are never imported. One module per family: `sql`, `files`,
`network`, `shell`; `check` is the step they share.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType

from bastion.contrib.importhook import when_imported
from bastion.sinks import files, network, shell, sql
from bastion.sinks.check import CHECKING
from bastion.sinks.patching import restore_all

__all__ = ["install", "installed", "uninstall"]

_FAMILIES = (files, network, shell, sql)
_active = False
_lock = threading.Lock()


def install(checks: bool = True) -> None:
    """Hook every sink family, each when its module is imported. Idempotent; `checks` False
    leaves the rules out of the hooks (they then only serve an observer, such as tracing)."""
    global _active
    CHECKING.on = checks
    with _lock:
        if _active:
            return
        _active = True
    for family in _FAMILIES:
        for module, patch in family.PATCHES.items():
            when_imported(module, _while_active(patch))


def uninstall() -> None:
    """Put every original function back (tests, benchmarks). Connections and cursors made
    while installed keep checking their statements."""
    global _active
    with _lock:
        _active = False
        restore_all()


def installed() -> bool:
    return _active


def _while_active(patch: Callable[[ModuleType], None]) -> Callable[[ModuleType], None]:
    """A module imported after `uninstall()` stays as it is."""

    def apply(module: ModuleType) -> None:
        if _active:
            patch(module)

    return apply
