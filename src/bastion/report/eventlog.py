"""The security event log: one JSON object per line, written off the request path.

`submit` runs on the request's hot path, so it only takes a token from a bucket and puts the
event on a bounded queue; everything slow (obfuscation, JSON, I/O) happens on a daemon thread.
When the log cannot keep up, events are dropped and counted rather than slowing the app; when
it cannot write, the error is counted and logged once rather than raised.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import sys
import threading
import weakref
from time import monotonic
from typing import Any

from bastion.report.obfuscation import Obfuscator

logger = logging.getLogger("bastion.report")

_BATCH_MAX = 256  # events written (and flushed) together
_ATEXIT_TIMEOUT = 2.0  # seconds the interpreter may wait at exit for pending events
_FILE_MODE = 0o640  # group-readable for log shippers, never world-readable
_STOP = object()  # queue sentinel that ends the writer thread

# Every live EventLog, for the two process-wide moments that concern them all: interpreter
# exit (flush) and fork (the child gets fresh locks, a fresh queue and no thread).
_LOGS: weakref.WeakSet[EventLog] = weakref.WeakSet()


class EventLog:
    """Writes security events as JSON Lines to stdout, stderr, a file, or nowhere ("off").

    A file is opened for appending and reopened when it is moved or removed, so log rotation
    works; its parent directory must exist. Thread-safe and fork-safe.
    """

    def __init__(
        self,
        destination: str,
        obfuscator: Obfuscator,
        *,
        queue_size: int = 1000,
        rate_per_s: float = 100.0,
        burst: int = 100,
    ) -> None:
        if destination not in ("stdout", "stderr", "off"):
            parent = os.path.dirname(os.path.abspath(destination))
            if not os.path.isdir(parent):
                raise ValueError(f"event log {destination!r}: directory {parent!r} does not exist")
            if os.path.isdir(destination):
                raise ValueError(f"event log {destination!r} is a directory, not a file")
        if queue_size < 1:
            raise ValueError(f"event log queue_size must be at least 1, not {queue_size}")
        if not rate_per_s > 0:
            raise ValueError(f"event log rate_per_s must be positive, not {rate_per_s}")
        if burst < 1:
            raise ValueError(f"event log burst must be at least 1, not {burst}")
        self._destination = destination
        self._obfuscator = obfuscator
        self._queue_size = queue_size
        self._rate = float(rate_per_s)
        self._burst = float(burst)
        self._closed = False
        self._reset()
        _LOGS.add(self)

    def _reset(self) -> None:
        """Fresh per-process state: at construction and in a forked child."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._done = threading.Condition(threading.Lock())
        self._queue: queue.Queue[Any] = queue.Queue(self._queue_size)
        self._thread: threading.Thread | None = None
        self._tokens = self._burst
        self._refilled = monotonic()
        self._fd: int | None = None
        self._file_id: tuple[int, int] | None = None
        self._torn = False  # a failed write left half a line in the file
        # Counters of the hot path, under _lock; `accepted` are the events put on the queue.
        self._submitted = self._accepted = self._rate_limited = self._queue_full = 0
        # Counters of the writer thread, under _done; `finished` = written + failed.
        self._written = self._write_errors = self._finished = 0
        self._logged: set[str] = set()  # writer-side problems already logged

    def _after_fork(self) -> None:
        """In a forked child: the parent's thread, queue and locks are not ours to use."""
        fd = self._fd
        self._reset()
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def stats(self) -> dict[str, int]:
        """Counters of this process: submitted, written, dropped_*, write_errors."""
        with self._lock, self._done:
            return {
                "submitted": self._submitted,
                "written": self._written,
                "dropped_queue_full": self._queue_full,
                "dropped_rate_limited": self._rate_limited,
                "write_errors": self._write_errors,
            }

    def submit(self, event: dict[str, Any]) -> bool:
        """Queue `event` for writing; False when it was dropped. Never blocks, never raises."""
        try:
            if self._pid != os.getpid():
                self._after_fork()
            with self._lock:
                self._submitted += 1
                if self._closed:
                    return False
                now = monotonic()
                self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
                self._refilled = now
                if self._tokens < 1.0:
                    self._rate_limited += 1
                    first, reason = self._rate_limited == 1, "rate limit reached"
                elif self._destination == "off":
                    self._tokens -= 1.0
                    return True
                else:
                    if self._thread is None:
                        self._start()
                    try:
                        self._queue.put_nowait(event)
                    except queue.Full:
                        self._queue_full += 1
                        first, reason = self._queue_full == 1, "queue full"
                    else:
                        self._tokens -= 1.0
                        self._accepted += 1
                        return True
            if first:
                logger.warning(
                    "security event dropped (%s); further drops are counted only", reason
                )
            return False
        except Exception:  # fail open: reporting must never break the request
            return False

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event accepted so far is written (or failed); False on timeout."""
        if self._pid != os.getpid():
            return True  # nothing of this process is pending yet
        with self._lock:
            target = self._accepted
        with self._done:
            return self._done.wait_for(lambda: self._finished >= target, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush, then stop the writer thread and close the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self.flush(timeout)
        if thread is not None:
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                return  # the writer is stuck on I/O; it is a daemon and dies with the process
            thread.join(timeout)
        if self._fd is not None and (thread is None or not thread.is_alive()):
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _start(self) -> None:
        thread = threading.Thread(
            target=self._run, args=(self._queue,), name="bastion-event-log", daemon=True
        )
        thread.start()
        self._thread = thread

    def _run(self, events: queue.Queue[Any]) -> None:
        while True:
            batch = [events.get()]
            while len(batch) < _BATCH_MAX:
                try:
                    batch.append(events.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            pending = [item for item in batch if item is not _STOP]
            if pending:
                try:
                    self._write_batch(pending)
                except Exception:  # a bug here must not kill the thread and hang flush()
                    self._finish(pending, written=0, failed=len(pending))
                    self._log_once("internal", "event log failed to write a batch", exc=True)
            if stop:
                return

    def _write_batch(self, events: list[Any]) -> None:
        lines = []
        failed = 0
        for event in events:
            try:
                redacted = self._obfuscator.redact_event(event)
                lines.append(
                    json.dumps(redacted, ensure_ascii=False, separators=(",", ":"), default=str)
                )
            except Exception:
                failed += 1
                self._log_once("encode", "security event could not be encoded", exc=True)
        if not lines:
            self._finish(events, written=0, failed=failed)
            return
        data = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        try:
            self._write(data)
        except Exception as exc:  # OSError, a closed stream (ValueError), a missing stdout ...
            self._finish(events, written=0, failed=len(events))
            self._log_once("write", f"cannot write security events to {self._destination}: {exc}")
        else:
            self._finish(events, written=len(lines), failed=failed)

    def _write(self, data: bytes) -> None:
        if self._destination in ("stdout", "stderr"):
            stream = sys.stdout if self._destination == "stdout" else sys.stderr
            stream.write(data.decode("utf-8"))
            stream.flush()
            return
        fd = self._open_file()
        view = memoryview(b"\n" + data if self._torn else data)
        try:
            while view:
                sent = os.write(fd, view)
                if not sent:
                    raise OSError("no progress writing the event log")
                self._torn = True
                view = view[sent:]
        finally:
            self._torn = bool(view) and self._torn

    def _open_file(self) -> int:
        """The file's descriptor, reopened when the path now names another file or none."""
        if self._fd is not None:
            try:
                st = os.stat(self._destination)
                current: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except OSError:
                current = None
            if current != self._file_id:
                os.close(self._fd)
                self._fd = None
        if self._fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self._destination, flags, _FILE_MODE)
            st = os.fstat(fd)
            self._fd, self._file_id, self._torn = fd, (st.st_dev, st.st_ino), False
        return self._fd

    def _finish(self, events: list[Any], *, written: int, failed: int) -> None:
        with self._done:
            self._written += written
            self._write_errors += failed
            self._finished += len(events)
            self._done.notify_all()

    def _log_once(self, kind: str, message: str, *, exc: bool = False) -> None:
        """Log a writer-side problem the first time it happens (only the writer calls this)."""
        if kind not in self._logged:
            self._logged.add(kind)
            logger.warning("%s", message, exc_info=exc)


def _flush_all() -> None:
    for log in list(_LOGS):
        log.flush(_ATEXIT_TIMEOUT)


def _after_fork_in_child() -> None:
    for log in list(_LOGS):
        log._after_fork()


atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
