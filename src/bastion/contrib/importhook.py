"""Run a function right after a module is imported, without importing it ourselves.

`protect()` must not import Flask, Django or Starlette (slow, and maybe not installed): it asks
to be called when the application imports them, and patches them then.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType

logger = logging.getLogger("bastion")

Callback = Callable[[ModuleType], None]
_pending: dict[str, list[Callback]] = {}
_lock = threading.Lock()


def when_imported(name: str, callback: Callback) -> None:
    """Call `callback(module)` now if `name` is imported, else right after it is."""
    module = sys.modules.get(name)
    if module is not None:
        _call(name, callback, module)
        return
    with _lock:
        _pending.setdefault(name, []).append(callback)
        if not any(isinstance(f, _Finder) for f in sys.meta_path):
            sys.meta_path.insert(0, _Finder())


def _call(name: str, callback: Callback, module: ModuleType) -> None:
    try:
        callback(module)
    except Exception as exc:  # a failed patch leaves that framework unprotected, said once
        logger.error("bastion: could not instrument %s (%r); it runs unprotected", name, exc)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        with _lock:
            callbacks = _pending.pop(fullname, [])
        if callbacks:
            spec.loader = _Loader(loader, fullname, callbacks)
        return spec


class _Loader(importlib.abc.Loader):
    """The module's own loader, then the callbacks; the module keeps its own loader."""

    def __init__(self, loader: importlib.abc.Loader, name: str, callbacks: list[Callback]):
        self._loader = loader
        self._name = name
        self._callbacks = callbacks

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Resource readers and reloads look at the spec's loader: give it back first.
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        for callback in self._callbacks:
            _call(self._name, callback, module)
