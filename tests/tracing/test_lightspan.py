"""Bastion's own spans in its own provider are LightSpans: they must behave as SDK spans do for
everything that reads them (processors, exporters, the application's child spans)."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from bastion import tracing
from bastion.tracing.lightspan import MAX_ATTRIBUTES, LightSpan, LightTracer
from bastion.tracing.otlpencode import encode
from bastion.tracing.provider import Pipeline, resolve
from bastion.tracing.sampling import KeepAttacksSampler
from tests.tracing.apps import flask_app, get, protection
from tests.tracing.conftest import AppTracing


def own_pipeline(tmp_path: Path) -> tuple[Pipeline, InMemorySpanExporter]:
    """Bastion's own provider (the application set none), made the global one, exporting to
    memory."""
    guard = protection(tmp_path, tracing_global=True)
    exported = InMemorySpanExporter()
    return resolve(guard.settings, SimpleSpanProcessor(exported)), exported


def only(exported: InMemorySpanExporter) -> ReadableSpan:
    spans = exported.get_finished_spans()
    assert len(spans) == 1, spans
    return spans[0]


def test_bastions_own_provider_makes_light_spans_for_bastion_and_the_application(
        tmp_path: Path) -> None:
    pipeline, exported = own_pipeline(tmp_path)
    assert isinstance(pipeline.tracer, LightTracer)
    server = pipeline.tracer.start_span("GET /cart", kind=SpanKind.SERVER,
                                        attributes={"http.request.method": "GET"})
    with trace.use_span(server, end_on_exit=True), \
            trace.get_tracer("shop").start_as_current_span("load cart") as child:
        assert isinstance(child, LightSpan)
    spans = {span.name: span for span in exported.get_finished_spans()}
    assert set(spans) == {"GET /cart", "load cart"}
    assert isinstance(spans["GET /cart"], LightSpan)
    assert spans["load cart"].instrumentation_scope.name == "shop"  # type: ignore[union-attr]
    parent = spans["load cart"].parent
    assert parent is not None and parent.span_id == server.get_span_context().span_id
    assert spans["load cart"].context.trace_id == server.get_span_context().trace_id
    assert spans["GET /cart"].resource is spans["load cart"].resource
    assert spans["GET /cart"].context.trace_flags.sampled


def test_in_an_application_provider_bastion_uses_the_sdk_tracer(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    pipeline = resolve(guard.settings)
    assert not isinstance(pipeline.tracer, LightTracer)
    pipeline.tracer.start_span("x").end()
    assert isinstance(app_tracing.spans()[0], ReadableSpan)
    assert not isinstance(app_tracing.spans()[0], LightSpan)


def test_a_light_span_ends_once_and_changes_no_more(tmp_path: Path) -> None:
    pipeline, exported = own_pipeline(tmp_path)
    span = pipeline.tracer.start_span("first", attributes={"a": 1})
    span.set_attribute("b", "two")
    span.add_event("seen", {"n": 3})
    span.end()
    span.end()
    span.set_attribute("c", 3)
    span.add_event("late")
    span.update_name("second")
    span.set_status(Status(StatusCode.ERROR))
    ended = only(exported)
    assert ended.name == "first" and not span.is_recording()
    assert dict(ended.attributes or {}) == {"a": 1, "b": "two"}
    assert [(event.name, dict(event.attributes or {})) for event in ended.events] == [
        ("seen", {"n": 3})]
    assert ended.status.status_code is StatusCode.UNSET
    assert ended.end_time is not None and ended.start_time is not None
    assert ended.end_time >= ended.start_time


def test_attribute_values_are_checked_as_opentelemetry_checks_them(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pipeline, exported = own_pipeline(tmp_path)
    span = pipeline.tracer.start_span("values")
    span.set_attribute("list", ["a", "b"])
    span.set_attribute("with_none", [1, None, 3])
    span.set_attribute("mixed", [1, "a"])  # type: ignore[list-item]
    span.set_attribute("mapping", {"a": 1})  # type: ignore[arg-type]
    span.set_attributes({f"n{i}": i for i in range(MAX_ATTRIBUTES + 10)})
    span.end()
    attributes = dict(only(exported).attributes or {})
    assert attributes["list"] == ("a", "b")
    assert attributes["with_none"] == (1, None, 3)
    assert "mixed" not in attributes and "mapping" not in attributes
    assert len(attributes) == MAX_ATTRIBUTES
    assert only(exported).dropped_attributes > 0


def test_an_exception_leaving_the_span_is_recorded_and_sets_error(tmp_path: Path) -> None:
    pipeline, exported = own_pipeline(tmp_path)
    with pytest.raises(ValueError), pipeline.tracer.start_as_current_span("failing") as span:
        assert trace.get_current_span() is span
        raise ValueError("no stock")
    ended = only(exported)
    assert ended.status.status_code is StatusCode.ERROR
    assert ended.status.description == "ValueError: no stock"
    (event,) = ended.events
    assert event.name == "exception"
    attributes = dict(event.attributes or {})
    assert attributes["exception.type"] == "ValueError"
    assert attributes["exception.message"] == "no stock"
    assert "raise ValueError" in str(attributes["exception.stacktrace"])


def test_ok_is_final_and_unset_changes_nothing(tmp_path: Path) -> None:
    pipeline, exported = own_pipeline(tmp_path)
    span = pipeline.tracer.start_span("status")
    span.set_status(StatusCode.UNSET)
    span.set_status(StatusCode.OK)
    span.set_status(Status(StatusCode.ERROR, "late"))
    span.end()
    assert only(exported).status.status_code is StatusCode.OK


def test_links_are_kept_when_valid(tmp_path: Path) -> None:
    pipeline, exported = own_pipeline(tmp_path)
    other = pipeline.tracer.start_span("other")
    span = pipeline.tracer.start_span("linked", links=[trace.Link(other.get_span_context(),
                                                                  {"why": "retry"})])
    span.add_link(trace.INVALID_SPAN_CONTEXT)
    span.end()
    other.end()
    linked = next(s for s in exported.get_finished_spans() if s.name == "linked")
    assert [(link.context.span_id, dict(link.attributes or {})) for link in linked.links] == [
        (other.get_span_context().span_id, {"why": "retry"})]


def test_a_light_span_encodes_to_otlp_as_an_sdk_span_does(tmp_path: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    pipeline, exported = own_pipeline(tmp_path)
    span = pipeline.tracer.start_span("GET /x", kind=SpanKind.SERVER,
                                      attributes={"http.response.status_code": 200})
    span.add_event("bastion.attack", {"bastion.rule.id": "bst-sqli-001"})
    span.end()
    decoded = ExportTraceServiceRequest.FromString(encode([only(exported)]))
    (wire,) = decoded.resource_spans[0].scope_spans[0].spans
    assert wire.name == "GET /x"
    assert wire.kind == wire.SPAN_KIND_SERVER
    assert wire.span_id == span.get_span_context().span_id.to_bytes(8, "big")
    assert [(a.key, a.value.int_value) for a in wire.attributes] == [
        ("http.response.status_code", 200)]
    assert wire.events[0].attributes[0].value.string_value == "bst-sqli-001"
    assert decoded.resource_spans[0].scope_spans[0].scope.name == "bastion"


def test_a_request_through_bastions_provider_gets_a_light_server_span(tmp_path: Path) -> None:
    guard = protection(tmp_path)
    exported = InMemorySpanExporter()
    tracing.configure(guard.settings, resolve(guard.settings, SimpleSpanProcessor(exported)))
    get(flask_app(guard, lambda: "ok"), "/call?q=shoes")
    server = only(exported)
    assert isinstance(server, LightSpan)
    assert server.name == "GET /call" and server.kind is SpanKind.SERVER
    attributes = dict(server.attributes or {})
    assert attributes["url.query"] == "q=shoes"
    assert attributes["http.response.status_code"] == 200


def test_events_past_the_limit_are_counted_as_events(tmp_path: Path) -> None:
    from bastion.tracing.lightspan import MAX_EVENTS

    pipeline, exported = own_pipeline(tmp_path)
    span = pipeline.tracer.start_span("busy")
    for number in range(MAX_EVENTS + 2):
        span.add_event(f"step {number}")
    span.end()
    ended = only(exported)
    assert len(ended.events) == MAX_EVENTS
    assert (ended.dropped_events, ended.dropped_attributes) == (2, 0)


PARENTS = [
    None,
    *(SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=remote,
                  trace_flags=TraceFlags(flags), trace_state=TraceState([("vendor", "a1")]))
      for remote in (True, False) for flags in (0, TraceFlags.SAMPLED)),
]


@pytest.mark.parametrize("every_span", [True, False])
@pytest.mark.parametrize("held", [True, False])
@pytest.mark.parametrize("parent", PARENTS)
def test_the_default_samplers_shortcut_decides_as_the_sampler_does(
        tmp_path: Path, parent: SpanContext | None, held: bool, every_span: bool) -> None:
    pipeline, _ = own_pipeline(tmp_path)
    tracer = pipeline.tracer
    assert isinstance(tracer, LightTracer) and isinstance(tracer.sampler, KeepAttacksSampler)
    sampler = KeepAttacksSampler(tracer.sampler.base, tracer.sampler.keeper,
                                 every_span=every_span)
    tracer.sampler = sampler
    assert tracer._fast_keeper is sampler  # OTEL_TRACES_SAMPLER unset: the shortcut is taken
    context = None if parent is None else trace.set_span_in_context(
        trace.NonRecordingSpan(parent))
    span_context = trace.get_current_span(context).get_span_context()
    trace_id = parent.trace_id if parent is not None else 0x1234
    if held:
        sampler.keeper.hold(trace.NonRecordingSpan(SpanContext(trace_id, 0x99, False)))
    attributes = {"http.request.method": "GET"}

    shortcut = tracer._decide(context, span_context, trace_id, "GET", SpanKind.SERVER,
                              attributes, ())
    full = sampler.should_sample(context, trace_id, "GET", SpanKind.SERVER, attributes, ())
    assert shortcut[0] is full.decision
    assert dict(shortcut[1] or {}) == dict(full.attributes)
    assert shortcut[2] == full.trace_state


def test_another_sampler_is_asked_for_every_span(tmp_path: Path) -> None:
    pipeline, exported = own_pipeline(tmp_path)
    tracer = pipeline.tracer
    assert isinstance(tracer, LightTracer) and isinstance(tracer.sampler, KeepAttacksSampler)
    tracer.sampler = KeepAttacksSampler(ParentBased(ALWAYS_OFF), tracer.sampler.keeper)
    assert tracer._fast_keeper is None
    tracer.sampler = ALWAYS_OFF
    tracer.start_span("dropped").end()
    assert exported.get_finished_spans() == ()
