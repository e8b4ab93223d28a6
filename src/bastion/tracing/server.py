"""The server span of a request, from the RequestContext's lifecycle.

`RequestContext.__enter__` starts it (`ServerTracer.enter`), its `__exit__` takes it out of
the current context (`ServerSpan.exit`), `finish()` ends it (`ServerSpan.finish`); the span
may end after `__exit__` (a WSGI body is sent after the application returned).

The incoming trace context and baggage are read with the global propagator (W3C
`traceparent`/`tracestate` and `baggage` unless `OTEL_PROPAGATORS` says otherwise), and the
span is made current while the application runs, so that its spans and its outgoing calls
join the trace. When another instrumentation already made a server span for this request
(OpenTelemetry's own Flask or ASGI middleware around Bastion's), Bastion adds its attributes
to that span instead of making a second one.

Tracing must never break a request: every failure is reported (once) and the request goes on.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from bastion.config import Settings
from bastion.tracing import attributes as attrs
from bastion.tracing.provider import Pipeline, resolve

if TYPE_CHECKING:
    from contextvars import Token

    from bastion.context import RequestContext

logger = logging.getLogger("bastion")


class ServerTracer:
    """Starts server spans; finds its pipeline when the first request comes (see provider)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pipeline: Pipeline | None = None
        self._broken = False  # the pipeline could not be set up: requests go untraced
        self._lock = threading.Lock()

    @property
    def pipeline(self) -> Pipeline | None:
        pipeline = self._pipeline
        if pipeline is None and not self._broken:
            with self._lock:
                if self._pipeline is None and not self._broken:
                    try:
                        self._pipeline = resolve(self.settings)
                    except Exception as exc:  # tried once, not on every request
                        self._broken = True
                        logger.error("bastion: tracing could not be set up, requests are "
                                     "not traced: %r", exc)
                pipeline = self._pipeline
        return pipeline

    def use(self, pipeline: Pipeline) -> None:
        """Trace into `pipeline` from now on (instead of resolving one)."""
        self._pipeline = pipeline

    def enter(self, request: RequestContext) -> ServerSpan | None:
        try:
            pipeline = self.pipeline
            return None if pipeline is None else ServerSpan.start(pipeline, request)
        except Exception as exc:
            request.protection.report_error("tracing", exc)
            return None

    def shutdown(self) -> None:
        pipeline = self._pipeline
        self._pipeline = None
        if pipeline is not None and pipeline.owned:
            shutdown = getattr(pipeline.provider, "shutdown", None)
            if shutdown is not None:
                shutdown()


class ServerSpan:
    """One request's span, owned by Bastion or borrowed from the instrumentation that made it."""

    __slots__ = ("_owned", "_said", "_span", "_token")

    def __init__(self, span: trace.Span, owned: bool,
                 token: Token[otel_context.Context] | None) -> None:
        self._span = span
        self._owned = owned
        self._token = token
        self._said = (0, False)  # (events, blocked) the span already tells

    @classmethod
    def start(cls, pipeline: Pipeline, request: RequestContext) -> ServerSpan:
        parent = otel_context.get_current()
        current = trace.get_current_span(parent)
        if current.is_recording() and getattr(current, "kind", None) is SpanKind.SERVER:
            _enrich_borrowed(current, request)
            return cls(current, owned=False, token=None)
        if not current.get_span_context().is_valid and _may_carry_context(request.headers):
            parent = propagate.extract(request.headers, context=parent)
        span = pipeline.tracer.start_span(
            attrs.span_name(request.method, None), context=parent, kind=SpanKind.SERVER,
            attributes=attrs.request_attributes(request))
        if pipeline.keeper is not None and span.is_recording() and not (
                span.get_span_context().trace_flags.sampled):
            pipeline.keeper.hold(span)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return cls(span, owned=True, token=token)

    def exit(self) -> None:
        """The request's code is done: the span stops being the current one."""
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)

    def attacked(self, request: RequestContext) -> None:
        """New attacks, or a block: said on the span at once, since a span borrowed from
        another instrumentation may end with the response, before the request's end."""
        try:
            self._say_attacks(request)
        except Exception as exc:
            request.protection.report_error("tracing", exc)

    def finish(self, request: RequestContext) -> None:
        """Add what the request's end tells, and end the span if it is Bastion's."""
        try:
            self._finish(request)
        except Exception as exc:
            request.protection.report_error("tracing", exc)

    def _say_attacks(self, request: RequestContext) -> None:
        span = self._span
        said_events = self._said[0]
        now = (len(request.events), request.blocked is not None)
        if now == self._said or not span.is_recording():
            return
        self._said = now
        if said_events and said_events == now[0]:  # told before: only the block is new
            span.set_attribute("bastion.blocked", now[1])
            return
        span.set_attributes(attrs.security_attributes(request))
        new = request.events[said_events:attrs.MAX_ATTACK_EVENTS]
        for event in attrs.attack_events(request.protection.obfuscator, new):
            span.add_event(attrs.ATTACK_EVENT, event)

    def _finish(self, request: RequestContext) -> None:
        span = self._span
        if not span.is_recording():  # ended already (borrowed), or sampled out elsewhere
            return
        self._say_attacks(request)
        if not self._owned:
            return
        ending = attrs.response_attributes(request)
        span.set_attributes(ending)
        if request.route:
            span.update_name(attrs.span_name(request.method, request.route))
        if "error.type" in ending:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


_fields_of: tuple[object, frozenset[str]] = (None, frozenset())


def _may_carry_context(headers: dict[str, str]) -> bool:
    """Whether the request has a header the global propagator reads (its `fields`, as
    OpenTelemetry's contract has every propagator declare them; one that declares none is
    always asked): most requests carry none, and then extracting them costs a chain of calls
    that finds nothing."""
    global _fields_of
    propagator = propagate.get_global_textmap()
    known, fields = _fields_of
    if known is not propagator:
        try:
            fields = frozenset(name.lower() for name in propagator.fields)
        except Exception:  # a propagator that cannot say: always asked, as before
            fields = frozenset()
        _fields_of = (propagator, fields)
    return not fields or any(name in headers for name in fields)


def _enrich_borrowed(span: trace.Span, request: RequestContext) -> None:
    """Bastion's client address (resolved through the trusted proxies) on another
    instrumentation's server span, and its query string obfuscated as Bastion's own is."""
    if request.client_ip:
        span.set_attribute("client.address", request.client_ip)
    existing = getattr(span, "attributes", None) or {}
    if "url.query" in existing:
        span.set_attribute("url.query", attrs.redacted_query(request))
