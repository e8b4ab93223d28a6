"""Putting a hook in place of a library's function, once, and the original back.

Hooks replace attributes of modules and classes (`os.system`, `psycopg.Cursor.execute`). A
replaced attribute carries its original, so replacing twice is a no-op and `restore_all()`
(tests, benchmarks, `bastion.sinks.uninstall`) can undo exactly what was done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bastion.sinks.check import ORIGINAL

_done: list[tuple[Any, str, Any]] = []
_lock = threading.Lock()


def replace(owner: Any, name: str, make_hook: Callable[[Any], Any]) -> None:
    """`owner.name = make_hook(owner.name)` unless it is already a hook.

    Only an attribute defined on `owner` itself is replaced: hooking a class method must not
    shadow what a subclass inherits from further up."""
    with _lock:
        original = vars(owner)[name]
        if hasattr(original, ORIGINAL):
            return
        setattr(owner, name, make_hook(original))
        _done.append((owner, name, original))


def restore_all() -> None:
    """Every replaced attribute gets its original back, newest first."""
    with _lock:
        while _done:
            owner, name, original = _done.pop()
            setattr(owner, name, original)


def is_hooked(function: object) -> bool:
    return hasattr(function, ORIGINAL)
