"""CPU time the garbage collector takes inside a rules run: not the rules' cost.

A full collection in a large process takes tens or hundreds of milliseconds of the thread
that happens to trigger it. Counted against a run's CPU budget it would end the run, and the
rest of the request would go through unexamined. A `GcClock` sits in `gc.callbacks` for the
length of one run only, and adds up what the collections in the run's own thread took.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any


class GcClock:
    """Seconds of this thread's CPU time spent collecting since `start()`."""

    __slots__ = ("_owner", "_started", "spent")

    def __init__(self) -> None:
        self._owner = threading.get_ident()
        self._started = 0.0
        self.spent = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if threading.get_ident() != self._owner:
            return  # another thread's collection: its time is not this thread's
        if phase == "start":
            self._started = time.thread_time()
        elif self._started:
            self.spent += time.thread_time() - self._started
            self._started = 0.0


def start() -> GcClock:
    clock = GcClock()
    gc.callbacks.append(clock)
    return clock


def stop(clock: GcClock) -> None:
    # (not contextlib.suppress: a context manager per run costs more than the removal)
    try:  # noqa: SIM105
        gc.callbacks.remove(clock)
    except ValueError:  # someone cleared gc.callbacks: nothing to undo
        pass
