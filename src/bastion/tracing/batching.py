"""Spans encoded to OTLP a few dozen at a time as they end, posted in batches by a thread.

The SDK's `BatchSpanProcessor` keeps each ended span as an object until its batch is encoded,
hundreds of requests later, in its thread, which then takes the GIL for a whole batch in the
middle of some request. Encoding each span as it ends, on the request's thread, was cheaper
(about 25 us a request less), yet a span took 7.5 us to encode there against 3 us in a hot
loop: between two spans the rest of the request evicts the encoder's code and its caches. So
ended spans are held, and the request that ends the 32nd encodes them all, about 5 us a span
(Flask in one process, a new query string each request): 4-12 us a request less than one at
a time (medians of runs side by side), for about 160 us more on one request in 32. The thread
only frames and posts bytes. What waits in the queue is bytes, smaller than span objects.

Bounded: at most `queue_size` spans and `queue_bytes` of them wait (beside the 32 held);
when full, the oldest go (the newest say more about now), counted and said once a minute. A
dead or slow collector blocks only this thread, on its socket, for the exporter's timeout:
the queue fills and drops, requests never wait. A quiet worker's held spans are encoded by
the thread when the schedule delay passes.

Batches are large (see provider.BATCH_SIZE) and bounded in bytes too, so that a collector's
request limit is never reached: in a busy worker the thread waits for the GIL at each step
of a post, and each post cost the requests about 7 ms whatever its size (FastAPI in one
process: 190-196 us a request with 512 spans a post, 166-168 with 2048, 162 without export).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from bastion.tracing.otlpencode import queued, request_body
from bastion.tracing.otlpwire import OTLPHTTPExporter

logger = logging.getLogger("bastion")

_SAY_DROPS_EVERY_S = 60.0

ENCODE_EVERY = 32
"""Ended spans held, then encoded together by the request that ends the last of them."""

Queued = tuple[Any, tuple[str, str], bytes]  # resource, scope key, encoded span


class EncodingBatchProcessor(SpanProcessor):
    """Encodes sampled spans `encode_every` at a time as they end; a daemon thread posts them
    `batch_size` at a time through `exporter`, and what is there every `schedule_delay_s`."""

    def __init__(self, exporter: OTLPHTTPExporter, *, queue_size: int, queue_bytes: int,
                 batch_size: int, batch_bytes: int, schedule_delay_s: float,
                 encode_every: int = ENCODE_EVERY) -> None:
        if min(queue_size, batch_size, batch_bytes, queue_bytes, encode_every) < 1:
            raise ValueError("queue and batch sizes must be at least 1")
        self._exporter = exporter
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._batch_size = min(batch_size, queue_size)
        self._batch_bytes = batch_bytes  # a batch's spans, encoded; a larger span goes alone
        self._delay_s = schedule_delay_s
        self._encode_every = min(encode_every, self._batch_size)
        self._closed = False
        self.dropped = 0  # spans a full queue pushed out
        self._next_drop_said = 0.0
        self._encoding_said = False
        self._start()
        after_fork = weakref.WeakMethod(self._start)  # registrations outlive processors
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())

    def _start(self) -> None:
        """A fresh queue and thread (also in a forked child, where the thread is gone and
        the parent's queued spans are the parent's to send)."""
        self._queue: deque[Queued] = deque()
        self._queued_bytes = 0  # of the spans in the queue, encoded
        self._held: list[ReadableSpan] = []  # ended, not yet encoded
        self._counting = threading.Lock()  # the held spans, the queue and its bytes
        self._wake = threading.Event()
        self._sending = threading.Lock()  # one batch at a time: the thread, or a flush
        self._thread = threading.Thread(target=self._work, name="bastion-otlp-export",
                                        daemon=True)
        self._thread.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if self._closed or context is None or not context.trace_flags.sampled:
            return
        with self._counting:
            held = self._held
            held.append(span)
            if len(held) < self._encode_every:
                return
            self._held = []
        self._enqueue(held)

    def _encode_held(self) -> None:
        """The held spans go to the queue now (a quiet worker's, a flush)."""
        with self._counting:
            held, self._held = self._held, []
        if held:
            self._enqueue(held)

    def _enqueue(self, spans: list[ReadableSpan]) -> None:
        """Encode `spans` into the queue, the oldest queued going when it is full."""
        items = []
        for span in spans:
            try:
                items.append(queued(span))
            except Exception as exc:  # a span we cannot write is lost, the request goes on
                if not self._encoding_said:
                    self._encoding_said = True
                    logger.warning("bastion: a span could not be encoded and was dropped "
                                   "(said once): %r", exc)
        queue = self._queue
        dropped = 0
        with self._counting:
            for item in items:
                queue.append(item)
                self._queued_bytes += len(item[2])
            while len(queue) > 1 and (len(queue) > self._queue_size
                                      or self._queued_bytes > self._queue_bytes):
                self._queued_bytes -= len(queue.popleft()[2])  # the oldest go
                dropped += 1
            wake = self._batch_is_full()
        if dropped:
            self._say_dropped(dropped)
        if wake and not self._wake.is_set():
            self._wake.set()

    def _say_dropped(self, count: int) -> None:
        self.dropped += count
        now = time.monotonic()
        if now >= self._next_drop_said:
            self._next_drop_said = now + _SAY_DROPS_EVERY_S
            logger.warning("bastion: the span export queue is full (the collector is slow or "
                           "down); %d span(s) dropped so far", self.dropped)

    def _work(self) -> None:
        while not self._closed:
            woken = self._wake.wait(self._delay_s)  # by a full batch, else the delay passed
            self._wake.clear()
            if not woken:
                self._encode_held()
            while self._send_batch(full_only=woken):
                pass

    def _send_batch(self, *, full_only: bool, wait_s: float = -1) -> bool:
        """Post the oldest batch; False when there was none to post (or, with `full_only`,
        no full one), or when another post still held the line after `wait_s`."""
        if not self._sending.acquire(timeout=wait_s):
            return False
        try:
            queue = self._queue
            if not queue or (full_only and not self._batch_is_full()):
                return False
            batch = self._take_batch()
            try:
                self._exporter.send(request_body(batch))
            except Exception as exc:  # never let the thread die: later batches still go
                logger.warning("bastion: a batch of spans could not be sent: %r", exc)
            return True
        finally:
            self._sending.release()

    def _batch_is_full(self) -> bool:
        """Whether a whole batch waits, by count or by bytes (read without the lock by the
        thread: a span more or less changes nothing)."""
        return len(self._queue) >= self._batch_size or self._queued_bytes >= self._batch_bytes

    def _take_batch(self) -> list[Queued]:
        """The oldest spans, up to the batch's count and bytes (at least one)."""
        queue = self._queue
        batch: list[Queued] = []
        size = 0
        with self._counting:
            while queue and len(batch) < self._batch_size:
                length = len(queue[0][2])
                if batch and size + length > self._batch_bytes:
                    break
                batch.append(queue.popleft())
                size += length
            self._queued_bytes -= size
        return batch

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Send everything held or queued now; False when the deadline came first (a post
        in flight to a slow collector is waited for until then, not longer)."""
        deadline = time.monotonic() + timeout_millis / 1000
        self._encode_held()
        while self._queue:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._send_batch(full_only=False, wait_s=remaining)
        return True

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True  # no new span from now on; what is queued still goes
        self.force_flush()
        self._wake.set()
        self._thread.join(timeout=self._delay_s)
        self._exporter.shutdown()
