"""An attack is never sampled out: a sampled-out request's spans are recorded, dropped when it
was benign and exported, marked sampled, when it was attacked."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision
from opentelemetry.trace import SpanKind

from bastion import tracing
from bastion.tracing.provider import resolve
from bastion.tracing.sampling import AttackKeeper, KeepAttacksSampler
from tests.tracing.apps import flask_app, get, protection
from tests.tracing.conftest import AppTracing

ATTACK = "/call?q=1%27%20OR%201=1--"
UNSAMPLED_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


def view() -> str:
    """The application's own work inside the request: a span, and one inside it."""
    with trace.get_tracer("shop").start_as_current_span("load basket"), \
            trace.get_tracer("shop").start_as_current_span("price items"):
        return "ok"


def bastion_provider_exporting_to_memory(tmp_path: Path) -> tuple[InMemorySpanExporter, object]:
    """Bastion's own provider (no application provider), made the global one so that the
    application's spans are recorded, whose export lands in memory."""
    guard = protection(tmp_path, tracing_global=True)
    exported = InMemorySpanExporter()
    tracing.configure(guard.settings, resolve(guard.settings, SimpleSpanProcessor(exported)))
    return exported, flask_app(guard, view)


def by_name(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def test_a_sampler_that_drops_everything_still_keeps_the_whole_trace_of_an_attack(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exported, app = bastion_provider_exporting_to_memory(tmp_path)

    get(app, "/call")  # benign: sampled out, as the sampler said
    assert exported.get_finished_spans() == ()

    get(app, ATTACK)
    spans = by_name(exported.get_finished_spans())
    assert set(spans) == {"GET /call", "load basket", "price items"}
    server = spans["GET /call"]
    assert all(s.context.trace_flags.sampled for s in spans.values())
    assert all(s.attributes is not None and s.attributes["bastion.kept"] is True
               for s in spans.values())
    assert server.attributes is not None and server.attributes["bastion.event"] is True
    assert spans["load basket"].parent is not None
    assert spans["load basket"].parent.span_id == server.context.span_id
    assert {s.context.trace_id for s in spans.values()} == {server.context.trace_id}

    exported.clear()
    get(app, "/call")  # the next benign request is sampled out again
    assert exported.get_finished_spans() == ()


def test_an_upstream_decision_to_sample_out_does_not_hide_an_attack(
        tmp_path: Path) -> None:
    exported, app = bastion_provider_exporting_to_memory(tmp_path)  # parent-based sampler

    get(app, "/call", headers={"traceparent": UNSAMPLED_PARENT})
    assert exported.get_finished_spans() == ()

    get(app, ATTACK, headers={"traceparent": UNSAMPLED_PARENT})
    server = by_name(exported.get_finished_spans())["GET /call"]
    assert f"{server.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server.parent is not None and f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert server.kind is SpanKind.SERVER and server.context.trace_flags.sampled


def test_sampled_requests_are_exported_once_and_not_marked_kept(tmp_path: Path) -> None:
    exported, app = bastion_provider_exporting_to_memory(tmp_path)  # always on by default
    get(app, ATTACK)
    spans = exported.get_finished_spans()
    assert sorted(s.name for s in spans) == ["GET /call", "load basket", "price items"]
    assert all("bastion.kept" not in (s.attributes or {}) for s in spans)


def test_in_the_applications_provider_only_bastions_tracer_changes_sampler(
        tmp_path: Path) -> None:
    app_tracing = AppTracing(TracerProvider(sampler=ALWAYS_OFF))
    trace.set_tracer_provider(app_tracing.provider)
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    app = flask_app(guard, view)

    get(app, "/call")
    assert app_tracing.spans() == []
    get(app, ATTACK)

    server, = app_tracing.spans()  # the application's spans follow its own sampler
    assert server.name == "GET /call" and server.context.trace_flags.sampled
    assert server.attributes is not None and server.attributes["bastion.kept"] is True
    assert app_tracing.provider.sampler is ALWAYS_OFF
    with app_tracing.provider.get_tracer("shop").start_as_current_span("outside") as span:
        assert not span.is_recording()


def test_the_spans_held_for_one_request_are_bounded() -> None:
    keeper = AttackKeeper(max_spans=2)
    provider = TracerProvider(sampler=KeepAttacksSampler(ALWAYS_OFF, keeper))
    exported = InMemorySpanExporter()
    provider.add_span_processor(keeper)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("bastion")
    tracer.sampler = KeepAttacksSampler(tracer.sampler, keeper, every_span=True)  # type: ignore[attr-defined]
    keeper.forward_to(tracer.span_processor)  # type: ignore[attr-defined]
    app_tracer = provider.get_tracer("shop")

    server = tracer.start_span("GET /", kind=SpanKind.SERVER)
    keeper.hold(server)
    with trace.use_span(server):
        for index in range(5):
            app_tracer.start_span(f"work {index}").end()
    server.set_attribute("bastion.event", True)
    server.end()

    assert sorted(s.name for s in exported.get_finished_spans()) == ["GET /", "work 0", "work 1"]
    assert keeper.dropped == 3
    assert not keeper.holds(server.get_span_context().trace_id)


def test_spans_outside_a_held_request_keep_the_samplers_decision() -> None:
    keeper = AttackKeeper()
    sampler = KeepAttacksSampler(ALWAYS_OFF, keeper)
    assert sampler.should_sample(None, 0x1234, "job").decision is Decision.DROP
    assert KeepAttacksSampler(sampler, keeper).base is ALWAYS_OFF  # never wrapped twice
    every = KeepAttacksSampler(ALWAYS_OFF, keeper, every_span=True)
    result = every.should_sample(None, 0x1234, "GET", attributes={"url.path": "/"})
    assert result.decision is Decision.RECORD_ONLY
    assert dict(result.attributes) == {"url.path": "/"}  # the span keeps its attributes
