"""A small OTLP/HTTP exporter: batches of spans, encoded by otlpencode.py, posted as protobuf.

The exporter sends one POST per batch over a kept-alive connection, with a short timeout and no
retry: a batch a collector cannot take is dropped and counted, never queued twice, so a dead or
slow collector costs the application nothing beyond the processor's bounded queue.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bastion.tracing.otlpencode import encode

logger = logging.getLogger("bastion")


class OTLPHTTPExporter(SpanExporter):
    """Posts batches to `<endpoint>/v1/traces` as `application/x-protobuf`."""

    def __init__(self, url: str, timeout_s: float = 5.0,
                 headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout_s = timeout_s
        self._headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.dropped_batches = 0

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout_s)
        return self._connection

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
                connection = self._connect()
                connection.request("POST", self._path, body=body, headers=self._headers)
                response = connection.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                ok = False
                self._reset()
        if not ok:
            self.dropped_batches += 1
            if self.dropped_batches == 1 or self.dropped_batches % 100 == 0:
                logger.warning("bastion: the collector did not take %d batch(es) of spans; "
                               "they were dropped", self.dropped_batches)
        return ok

    def _reset(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def shutdown(self) -> None:
        self._closed = True
        with self._lock:
            self._reset()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
