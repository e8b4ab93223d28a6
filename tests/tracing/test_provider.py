"""Providers: the application's is kept and joined; otherwise Bastion sets one up, which
exports only where BASTION_OTLP_ENDPOINT says; without OpenTelemetry, Bastion still protects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bastion import runtime, tracing
from bastion.config import Settings
from tests.tracing.apps import flask_app, get, protection
from tests.tracing.conftest import AppTracing
from tests.tracing.otlp import OTLPReceiver

REPO = Path(__file__).resolve().parents[2]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_the_applications_provider_is_kept_and_bastions_spans_join_it(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    sampler = app_tracing.provider.sampler
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    app_tracer = app_tracing.provider.get_tracer("shop")

    def view() -> str:
        with app_tracer.start_as_current_span("load basket"):
            return "ok"

    get(flask_app(guard, view), "/call")

    assert trace.get_tracer_provider() is app_tracing.provider
    assert app_tracing.provider.sampler is sampler  # nothing of it replaced
    server, = [s for s in app_tracing.spans() if s.kind is SpanKind.SERVER]
    child, = [s for s in app_tracing.spans() if s.name == "load basket"]
    assert server.instrumentation_scope is not None
    assert server.instrumentation_scope.name == "bastion"
    assert child.parent is not None and child.parent.span_id == server.context.span_id
    assert child.context.trace_id == server.context.trace_id


def test_a_provider_the_application_sets_after_protect_still_wins(tmp_path: Path) -> None:
    # bastion-run calls protect() before the application's code sets up OpenTelemetry.
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    app = AppTracing(TracerProvider())
    trace.set_tracer_provider(app.provider)

    get(flask_app(guard), "/item/1")

    assert trace.get_tracer_provider() is app.provider
    assert [s.name for s in app.spans()] == ["GET /item/<item_id>"]


def test_without_a_provider_bastion_sets_up_its_own_and_leaves_the_global_one_unset(
        tmp_path: Path, receiver: OTLPReceiver) -> None:
    # A global provider would switch on every instrumentation waiting for one (FastAPI's own
    # telemetry among them): Bastion's stays its own, and the trace context still flows.
    guard = protection(tmp_path, service_name="shop-api", otlp_endpoint=receiver.url)
    tracing.configure(guard.settings)
    seen: dict[str, object] = {}

    def view() -> str:
        with trace.get_tracer("shop").start_as_current_span("load basket") as span:
            seen["recording"] = span.is_recording()
            seen["trace_id"] = span.get_span_context().trace_id
            return "ok"

    get(flask_app(guard, view), "/call", headers={"traceparent": TRACEPARENT})
    assert tracing.flush()

    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert seen == {"recording": False, "trace_id": int(TRACEPARENT.split("-")[1], 16)}
    span, = receiver.spans()
    assert span.span.name == "GET /call" and span.resource["service.name"] == "shop-api"


def test_bastions_provider_is_the_global_one_when_asked_and_the_application_joins_it(
        tmp_path: Path) -> None:
    guard = protection(tmp_path, service_name="shop-api", tracing_global=True)
    tracing.configure(guard.settings)
    get(flask_app(guard), "/item/1")  # the first request finds no provider: Bastion's is set

    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "shop-api"
    seen = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(seen))

    def view() -> str:
        with trace.get_tracer("shop").start_as_current_span("load basket"):
            return "ok"

    get(flask_app(guard, view), "/call")
    spans = {s.name: s for s in seen.get_finished_spans()}
    assert set(spans) == {"GET /call", "load basket"}
    assert spans["load basket"].parent is not None
    assert spans["load basket"].parent.span_id == spans["GET /call"].context.span_id


def test_bastion_exports_nothing_unless_an_endpoint_is_configured(
        tmp_path: Path, receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenTelemetry's own variables point at a live receiver: Bastion must not pick them up.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url + "/v1/traces")
    guard = protection(tmp_path)  # tracing on, no BASTION_OTLP_ENDPOINT
    tracing.configure(guard.settings)
    for _ in range(3):
        get(flask_app(guard), "/item/1?q=1%27%20OR%201=1--")

    assert tracing.flush()
    tracing.shutdown()  # a provider's shutdown exports whatever is left
    assert receiver.requests == []


def test_settings_turn_tracing_on_in_install(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_installed", None)
    runtime.install(Settings(event_log="off", tracing=False))
    assert not tracing.enabled()
    monkeypatch.setattr(runtime, "_installed", None)
    runtime.install(Settings(event_log="off", otlp_endpoint="http://127.0.0.1:9/"))
    assert tracing.enabled()


def test_without_opentelemetry_bastion_protects_and_says_once_why_it_does_not_trace(
        tmp_path: Path) -> None:
    program = textwrap.dedent("""
        import importlib.abc, json, logging, sys

        class NoOpenTelemetry(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, NoOpenTelemetry())
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        import flask
        from bastion import runtime, tracing
        from bastion.config import Settings
        from bastion.contrib.flask import protect_app

        protection = runtime.install(Settings(event_log="off", mode="block", tracing=True))
        runtime.install()
        tracing.configure(protection.settings)
        app = flask.Flask("shop")
        app.get("/item/<i>")(lambda i: "item " + i)
        protect_app(app, protection)
        client = app.test_client()
        ok = client.get("/item/1")
        blocked = client.get("/item/1?q=<script>alert(1)</script>")
        print(json.dumps([ok.status_code, ok.get_data(as_text=True), blocked.status_code,
                          tracing.enabled(), "opentelemetry" in sys.modules]))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "OTEL_"))}
    env["PYTHONPATH"] = str(REPO / "src")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [200, "item 1", 403, False, False]
    said = [line for line in done.stderr.splitlines() if "OpenTelemetry is not installed" in line]
    assert len(said) == 1, done.stderr


class OddProvider(trace.TracerProvider):
    """A provider that is no SDK provider, and fails when asked for a tracer."""

    def __init__(self) -> None:
        self.asked: list[object] = []  # by whom (the HTTP client instrumentations ask too)

    def get_tracer(self, name: object, *args: object, **kwargs: object) -> trace.Tracer:
        self.asked.append(name)
        raise RuntimeError("no tracer for you")


def test_a_provider_that_cannot_be_used_leaves_requests_untraced_and_is_tried_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    odd = OddProvider()
    trace.set_tracer_provider(odd)
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    app = flask_app(guard)
    replies = [get(app, "/search?q=shoes") for _ in range(3)]

    assert [json.loads(r.body) for r in replies] == [{"query": "shoes"}] * 3
    assert odd.asked.count("bastion") == 1
    assert [r.message for r in caplog.records].count(
        "bastion: tracing could not be set up, requests are not traced: "
        "RuntimeError('no tracer for you')") == 1


def test_an_endpoint_adds_an_exporter_to_the_applications_provider(
        tmp_path: Path, app_tracing: AppTracing, receiver: OTLPReceiver) -> None:
    guard = protection(tmp_path, otlp_endpoint=receiver.url)
    tracing.configure(guard.settings)

    def view() -> str:
        with app_tracing.provider.get_tracer("shop").start_as_current_span("load basket"):
            return "ok"

    get(flask_app(guard, view), "/call")
    app_tracing.provider.force_flush()

    received = receiver.wait_for(lambda spans: len(spans) == 2)
    assert sorted(s.span.name for s in received) == ["GET /call", "load basket"]
    assert sorted(s.name for s in app_tracing.spans()) == ["GET /call", "load basket"]
