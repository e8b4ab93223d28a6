"""Server spans from the request path: HTTP conventions, incoming trace context and baggage,
security attributes and obfuscated attack events, and never a broken request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from bastion import tracing
from bastion.contrib.asgi import BastionASGIMiddleware
from bastion.tracing.provider import Pipeline
from tests.tracing.apps import (
    FASTAPI_TELEMETRY,
    asgi_get,
    fastapi_app,
    flask_app,
    get,
    protection,
)
from tests.tracing.conftest import AppTracing

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SQLI = "1' OR 1=1-- password=hunter2"


def only_server_span(app_tracing: AppTracing) -> ReadableSpan:
    spans = [s for s in app_tracing.spans() if s.kind is SpanKind.SERVER]
    assert len(spans) == 1, spans
    return spans[0]


def everything_said(span: ReadableSpan) -> str:
    """All the span tells a backend, as one text."""
    return json.dumps([dict(span.attributes or {}), span.name,
                       [[e.name, dict(e.attributes or {})] for e in span.events]], default=str)


def test_a_benign_request_gets_one_server_span_with_the_http_conventions(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    app = flask_app(guard)
    reply = get(app, "/item/42?color=red", headers={
        "Host": "shop.example:8443", "User-Agent": "probe/1.0",
        "X-Forwarded-For": "203.0.113.9"})  # the test client's peer is a trusted (local) proxy

    assert reply.status == 200
    span = only_server_span(app_tracing)
    assert span.name == "GET /item/<item_id>"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/item/<item_id>",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "url.path": "/item/42",
        "url.query": "color=red",
        "server.address": "shop.example",
        "server.port": 8443,
        "client.address": "203.0.113.9",
        "user_agent.original": "probe/1.0",
    }
    assert span.events == () and span.status.status_code is StatusCode.UNSET
    # The span was the current one while the view ran, and is not once the request is over.
    seen = json.loads(reply.body)
    assert (seen["trace_id"], seen["span_id"]) == (
        f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}")
    assert not trace.get_current_span().get_span_context().is_valid


def test_the_incoming_trace_context_and_baggage_are_continued(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    reply = get(flask_app(guard), "/item/1", headers={
        "traceparent": TRACEPARENT, "tracestate": "vendor=abc",
        "baggage": "tenant=acme,plan=gold"})

    span = only_server_span(app_tracing)
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and span.parent.is_remote
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.context.trace_state.get("vendor") == "abc"
    assert json.loads(reply.body)["baggage"] == {"tenant": "acme", "plan": "gold"}


def test_baggage_alone_is_continued(tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    reply = get(flask_app(guard), "/item/1", headers={"baggage": "tenant=acme"})
    assert json.loads(reply.body)["baggage"] == {"tenant": "acme"}
    assert only_server_span(app_tracing).parent is None


class HeaderPropagator(TextMapPropagator):
    """A propagator of the application's own: the trace id in `x-trace`; it declares that
    header, or no header, or fails to say."""

    def __init__(self, declared: bool | None) -> None:
        self.declared = declared

    def extract(self, carrier: Any, context: Context | None = None,
                getter: Getter[Any] = default_getter) -> Context:
        found = getter.get(carrier, "x-trace")
        if not found:
            return context if context is not None else Context()
        parent = SpanContext(int(found[0], 16), 0xB7AD6B7169203331, is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return trace.set_span_in_context(NonRecordingSpan(parent), context)

    def inject(self, carrier: Any, context: Context | None = None,
               setter: Setter[Any] = default_setter) -> None:
        pass

    @property
    def fields(self) -> set[str]:
        if self.declared is None:
            raise RuntimeError("this propagator cannot say which headers it reads")
        return {"x-trace"} if self.declared else set()


@pytest.mark.parametrize("declared", [True, False, None])
def test_the_applications_propagator_reads_its_own_headers(
        tmp_path: Path, app_tracing: AppTracing, declared: bool | None) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(HeaderPropagator(declared))
    try:
        get(flask_app(guard), "/item/1", headers={"X-Trace": "0af7651916cd43dd8448eb211c80319c"})
    finally:
        propagate.set_global_textmap(before)
    span = only_server_span(app_tracing)
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"


def test_an_attack_adds_security_attributes_and_one_obfuscated_event_per_attack(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    reply = get(flask_app(guard), "/item/1?token=s3cr3t-t0ken&q=" + SQLI.replace(" ", "%20"))

    assert reply.status == 200  # monitor mode
    span = only_server_span(app_tracing)
    attributes = dict(span.attributes or {})
    assert attributes["bastion.event"] is True
    assert attributes["bastion.blocked"] is False
    assert attributes["bastion.mode"] == "monitor"
    assert "sql_injection" in attributes["bastion.rule.types"]
    rule_ids = list(attributes["bastion.rule.ids"])
    assert rule_ids and len(set(rule_ids)) == len(rule_ids)
    # One span event per rule that fired, carrying what it matched.
    assert [e.name for e in span.events] == ["bastion.attack"] * len(rule_ids)
    assert [e.attributes["bastion.rule.id"] for e in span.events] == rule_ids  # type: ignore[index]
    for event in span.events:
        event_attributes = dict(event.attributes or {})
        assert event_attributes["bastion.rule.type"] and event_attributes["bastion.rule.name"]
        [match, *_] = json.loads(str(event_attributes["bastion.rule_matches"]))
        [parameter, *_] = match["parameters"]
        assert parameter["address"] == "server.request.query"
        assert parameter["key_path"] == ["q", 0]
        assert parameter["value"] == "1' OR 1=1-- password=<redacted>"
    # Secrets reach no attribute: not the query's token, not the matched value's password.
    said = everything_said(span)
    assert "hunter2" not in said and "s3cr3t-t0ken" not in said
    assert attributes["url.query"].startswith("token=<redacted>&q=")
    # The span names the event of the event log.
    guard.event_log.flush()
    [event] = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert attributes["bastion.event.id"] == event["id"]
    assert sorted(rule_ids) == sorted(t["rule"]["id"] for t in event["triggers"])


def test_a_blocked_request_says_so_with_the_block_status(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path, mode="block")
    tracing.configure(guard.settings)
    reply = get(flask_app(guard), "/item/1?q=<script>alert(document.cookie)</script>")

    assert reply.status == 403
    attributes = dict(only_server_span(app_tracing).attributes or {})
    assert attributes["http.response.status_code"] == 403
    assert attributes["bastion.blocked"] is True
    assert "xss" in attributes["bastion.rule.types"]


def test_a_server_error_marks_the_span(tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    assert get(flask_app(guard), "/fail").status == 503

    span = only_server_span(app_tracing)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "503"
    assert "bastion.event" not in span.attributes


def test_a_method_of_the_attackers_choosing_does_not_name_the_span(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    get(flask_app(guard), "/item/1", method="XYZZY")

    span = only_server_span(app_tracing)
    assert span.name == "HTTP"
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "XYZZY"


def test_a_server_span_made_by_another_instrumentation_is_enriched_not_duplicated(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    app = flask_app(guard)
    inner = app.wsgi_app
    app_tracer = app_tracing.provider.get_tracer("app-instrumentation")

    def instrumented(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        # What OpenTelemetry's WSGI middleware does around the app: a server span that ends
        # once the response is closed.
        with app_tracer.start_as_current_span("GET /item", kind=SpanKind.SERVER):
            result = inner(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                result.close()  # type: ignore[attr-defined]

    app.wsgi_app = instrumented  # type: ignore[method-assign]
    get(app, "/item/1?q=" + SQLI.replace(" ", "%20"), headers={"X-Forwarded-For": "203.0.113.5"})

    span = only_server_span(app_tracing)
    assert span.name == "GET /item"  # the instrumentation's span, not a second one
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "app-instrumentation"
    attributes = dict(span.attributes or {})
    assert attributes["bastion.event"] is True
    assert attributes["client.address"] == "203.0.113.5"
    assert {e.name for e in span.events} == {"bastion.attack"}


class _Broken:
    """A tracer, or a span, that fails at whatever is asked of it."""

    def __getattr__(self, name: str) -> Any:
        if name in ("is_recording",):
            return lambda: True
        if name == "get_span_context":
            return trace.INVALID_SPAN.get_span_context
        if name == "start_span" and self.__dict__.get("gives_spans"):
            return lambda *a, **k: _Broken()
        raise RuntimeError(f"tracing broke at {name}")


@pytest.mark.parametrize("where", ["start", "finish"])
def test_a_failure_of_tracing_never_changes_the_response(tmp_path: Path, where: str) -> None:
    guard = protection(tmp_path)
    plain = get(flask_app(protection(tmp_path, tracing=False)), "/item/7?q=" + "1%27%20OR%201=1--")

    tracer = _Broken()
    tracer.__dict__["gives_spans"] = where == "finish"
    tracing.configure(guard.settings, Pipeline(TracerProvider(), tracer, None, False))  # type: ignore[arg-type]
    traced = get(flask_app(guard), "/item/7?q=" + "1%27%20OR%201=1--")

    body, plain_body = json.loads(traced.body), json.loads(plain.body)
    assert body["item"] == plain_body["item"] == "7" and traced.status == plain.status
    assert guard.errors.get("tracing", 0) >= 1  # counted (and logged once)


def test_an_asgi_app_gets_its_server_span_current_in_async_code(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    api = fastapi_app()  # Bastion's span only (next test: both)

    @api.get("/ping")
    async def ping() -> dict[str, str]:
        return {"trace_id": f"{trace.get_current_span().get_span_context().trace_id:032x}"}

    reply = asgi_get(api, guard, "/ping?x=1", headers={"traceparent": TRACEPARENT,
                                                        "user-agent": "async-probe"})

    assert reply.status == 200
    assert json.loads(reply.body)["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    span = only_server_span(app_tracing)
    attributes = dict(span.attributes or {})
    assert attributes["client.address"] == "203.0.113.7"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.path"] == "/ping" and attributes["url.query"] == "x=1"
    assert attributes["server.address"] == "127.0.0.1" and attributes["server.port"] == 8000
    assert attributes["user_agent.original"] == "async-probe"


@pytest.mark.skipif(not FASTAPI_TELEMETRY, reason="this FastAPI makes no server span")
def test_fastapis_own_server_span_is_enriched_when_bastion_runs_inside_it(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    api = fastapi_app(native_tracing=True)

    @api.get("/search")
    async def search(q: str = "") -> dict[str, str]:
        return {"q": q}

    api.add_middleware(BastionASGIMiddleware, protection=guard)  # inside that span
    reply = asgi_get(api, None, "/search?q=" + SQLI.replace(" ", "%20"))

    assert reply.status == 200
    span = only_server_span(app_tracing)
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name != "bastion"
    attributes = dict(span.attributes or {})
    assert attributes["bastion.event"] is True
    assert "sql_injection" in attributes["bastion.rule.types"]
    assert attributes["client.address"] == "203.0.113.7"
    assert "hunter2" not in everything_said(span)


def test_a_query_is_redacted_even_when_the_same_text_came_clean_as_a_user_agent(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    # "session=abc" holds no secret as free text, but as a query its value is a session's.
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    app = flask_app(guard)
    get(app, "/item/1", headers={"User-Agent": "session=abc"})
    get(app, "/item/2?session=abc", headers={"User-Agent": "probe/1.0"})

    spans = [s for s in app_tracing.spans() if s.kind is SpanKind.SERVER]
    assert [(s.attributes or {}).get("user_agent.original") for s in spans] == [
        "session=abc", "probe/1.0"]
    assert (spans[1].attributes or {})["url.query"] == "session=<redacted>"
