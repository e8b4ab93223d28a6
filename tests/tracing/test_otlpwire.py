"""Our hand-written OTLP encoding against opentelemetry-proto, the protocol's own definition:
what we write must decode to the very message the SDK's encoder makes of the same spans."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bastion.tracing.otlpencode import encode
from bastion.tracing.otlpwire import OTLPHTTPExporter
from tests.e2e.servers import free_port


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: object) -> SpanExportResult:
        self.spans.extend(spans)  # type: ignore[call-overload]
        return SpanExportResult.SUCCESS


@pytest.fixture
def finished() -> list[ReadableSpan]:
    """Spans of every shape the server and datastore spans take, from two resources."""
    kept = _Keep()
    for service in ("web", "api"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(kept))
        tracer = provider.get_tracer("bastion", "0.1.0")
        parent = TraceContextTextMapPropagator().extract(
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
             "tracestate": "vendor=a1"})
        with tracer.start_as_current_span(
                "GET /search", context=parent, kind=SpanKind.SERVER, attributes={
                    "http.request.method": "GET", "http.response.status_code": 403,
                    "bastion.blocked": True, "ratio": 0.25, "negative": -7,
                    "bastion.rule.ids": ["bst-sqli-001", "bst-xss-002"], "empty": "",
                    "unicode": "café ☕", "flags": [True, False], "counts": [1, 2],
                    "shares": [0.5], "no items": []}) as span:
            span.add_event("bastion.attack", {"parameters": '[{"address": "q"}]', "n": 2})
            with tracer.start_as_current_span("SELECT shop", kind=SpanKind.CLIENT) as child:
                child.set_status(Status(StatusCode.ERROR, "relation does not exist"))
            with tracer.start_as_current_span("linked", links=[Link(span.get_span_context(),
                                                                    {"why": "retry"})]):
                pass
        with tracer.start_as_current_span("plain") as plain:
            plain.set_status(Status(StatusCode.OK))
    return kept.spans


def test_our_encoding_decodes_to_what_the_sdk_encoder_makes(
        finished: list[ReadableSpan]) -> None:
    ours = ExportTraceServiceRequest.FromString(encode(finished))
    theirs = encode_spans(finished)
    assert ours == theirs


class _Collector(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []  # noqa: RUF012 (one test at a time reads it)
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        _Collector.bodies.append(self.rfile.read(length))
        self.send_response(_Collector.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.bodies, _Collector.status = [], 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces"
    server.shutdown()
    server.server_close()


def test_the_exporter_posts_each_batch_and_reports_what_the_collector_said(
        finished: list[ReadableSpan], collector: str) -> None:
    exporter = OTLPHTTPExporter(collector, timeout_s=2.0)
    assert exporter.export(finished[:2]) is SpanExportResult.SUCCESS
    assert exporter.export(finished[2:]) is SpanExportResult.SUCCESS
    decoded = [ExportTraceServiceRequest.FromString(body) for body in _Collector.bodies]
    names = [span.name for request in decoded for resource in request.resource_spans
             for scope in resource.scope_spans for span in scope.spans]
    assert names == [span.name for span in finished]
    _Collector.status = 503
    assert exporter.export(finished[:1]) is SpanExportResult.FAILURE
    assert exporter.dropped_batches == 1


def test_a_dead_collector_fails_the_batch_without_retrying() -> None:
    exporter = OTLPHTTPExporter(f"http://127.0.0.1:{free_port()}/v1/traces", timeout_s=1.0)
    assert exporter.export([]) is SpanExportResult.FAILURE
    assert exporter.dropped_batches == 1
