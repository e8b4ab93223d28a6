"""A small OTLP/HTTP exporter: batches of spans, encoded by otlpencode.py, posted as protobuf.

The exporter sends one POST per batch over a kept-alive connection (poster.py), with a short
timeout and no retry: a batch a collector cannot take is dropped and counted, never queued
twice, so a dead or slow collector costs the application nothing beyond the processor's
bounded queue. (A kept-alive connection the collector closed while idle is not a collector
that cannot take the batch: the batch goes once more, on a new connection.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bastion.tracing.otlpencode import encode
from bastion.tracing.poster import Poster

logger = logging.getLogger("bastion")


class OTLPHTTPExporter(SpanExporter):
    """Posts batches to `<endpoint>/v1/traces` as `application/x-protobuf`."""

    def __init__(self, url: str, timeout_s: float = 5.0,
                 headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._poster = Poster(
            parts.hostname, parts.port, path, tls=parts.scheme == "https", timeout_s=timeout_s,
            headers={"Content-Type": "application/x-protobuf", **(headers or {})})
        self._lock = threading.Lock()
        self._closed = False
        self.dropped_batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        try:
            body = encode(spans)
        except Exception as exc:  # a span we cannot write is dropped, said once per cause
            logger.warning("bastion: spans not exported (encoding failed): %r", exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS if self.send(body) else SpanExportResult.FAILURE

    def send(self, body: bytes) -> bool:
        """Post one encoded ExportTraceServiceRequest; False (counted, said now and then)
        when the collector did not take it."""
        if self._closed:
            return False
        with self._lock:
            try:
                ok = 200 <= self._poster.post(body) < 300
            except OSError:
                ok = False
        if not ok:
            self.dropped_batches += 1
            if self.dropped_batches == 1 or self.dropped_batches % 100 == 0:
                logger.warning("bastion: the collector did not take %d batch(es) of spans; "
                               "they were dropped", self.dropped_batches)
        return ok

    def shutdown(self) -> None:
        self._closed = True
        with self._lock:
            self._poster.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
