"""Whether this process is handling a request right now, for hooks that only cost while one is.

A hook on a call that takes a microsecond (a SQLite query) costs a noticeable share of it
even when it only finds that no request is current. Such hooks can stand aside while no
request is being handled anywhere in the process (a worker, a script, a server between
requests) and be put back when one starts: `ACTIVITY` counts the requests being handled
(from `RequestContext.__enter__` to its `release()`, which a streamed body holds off until
it is produced) and tells its listeners when the count leaves or reaches zero, before the
request's code runs and after it ended.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

Listener = Callable[[], None]

logger = logging.getLogger("bastion")


class Activity:
    """A count of the requests being handled, with listeners told of each change between
    none and some. Thread-safe: entering, leaving and listening share one lock, so a
    listener sees every change in order and none is missed."""

    __slots__ = ("_count", "_listeners", "lock")

    def __init__(self) -> None:
        self.lock = threading.RLock()  # listeners may read `busy` or re-enter while told
        self._count = 0
        self._listeners: list[Listener] = []

    @property
    def busy(self) -> bool:
        """Whether some request is being handled now."""
        return self._count > 0

    def listen(self, listener: Listener) -> None:
        """Call `listener` (with the lock held) whenever `busy` changes, and once now."""
        with self.lock:
            self._listeners.append(listener)
            _call(listener)

    def enter(self) -> None:
        """A request's context became current: its code may run from now on."""
        with self.lock:
            self._count += 1
            if self._count == 1:
                self._tell()

    def leave(self) -> None:
        """A request's context stopped being current (each `enter` has one `leave`)."""
        with self.lock:
            if self._count == 0:
                return  # unpaired: never let the count go below zero
            self._count -= 1
            if self._count == 0:
                self._tell()

    def _tell(self) -> None:
        for listener in self._listeners:
            _call(listener)


_failed: set[str] = set()


def _call(listener: Listener) -> None:
    try:
        listener()
    except Exception as exc:  # a listener's fault must not stop a request
        name = getattr(listener, "__qualname__", repr(listener))
        if name not in _failed:
            _failed.add(name)
            logger.error("bastion: internal error in %s while switching hooks; the request "
                         "goes on (logged once): %r", name, exc)


ACTIVITY: Final = Activity()
