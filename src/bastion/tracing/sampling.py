"""Attacked traces are never sampled out, whatever the sampler decided at the request's start.

A sampler decides when a span starts; whether a request is an attack is known only at its
end. So Bastion never lets its server span be dropped: when the trace's sampler says DROP,
the span is recorded anyway, but not marked sampled (RECORD_ONLY). Exporters ignore such
spans, downstream services see `sampled=0` and sample as they would have, and the cost of a
sampled-out request is one recorded span. When the request ends:

- benign: the recorded span and the spans held with it are forgotten;
- attacked: `AttackKeeper` hands copies marked *sampled* (and `bastion.kept=true`) to the
  provider's span processors, which export them like any sampled span.

Where Bastion made the tracer provider, the spans the application and the outgoing HTTP
instrumentations start inside such a request are recorded too and held until the request
ends, so an attacked request keeps its whole local trace. In an application's own provider
Bastion changes no sampler but its own tracer's: only its server span is kept there.

We chose this over a parent-based sampler with a decision deferred to the end because a
deferred decision still has to record everything meanwhile (this is that, made explicit),
and over forcing `sampled=1` at the start because that would keep every trace.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.util.types import Attributes

ATTACK_ATTRIBUTE = "bastion.event"
KEPT_ATTRIBUTE = "bastion.kept"

MAX_HELD_TRACES = 1024
"""Requests whose spans are held at once; past it the oldest request's held spans go."""

MAX_HELD_SPANS = 256
"""Spans held for one request besides its server span; more are not kept."""


class KeepAttacksSampler(Sampler):
    """Another sampler's decisions, except that DROP becomes RECORD_ONLY where Bastion may
    still need the span: every span (`every_span`, for Bastion's own tracer) or the spans of
    the traces `keeper` holds."""

    def __init__(self, base: Sampler, keeper: AttackKeeper, *, every_span: bool = False) -> None:
        self.base: Sampler = base.base if isinstance(base, KeepAttacksSampler) else base
        self.keeper = keeper
        self.every_span = every_span

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self.base.should_sample(parent_context, trace_id, name, kind, attributes,
                                         links, trace_state)
        if result.decision is not Decision.DROP:
            return result
        if not (self.every_span or self.keeper.holds(trace_id)):
            return result
        # A dropping sampler returns no attributes: the span keeps the ones it was started with.
        merged = dict(attributes or {})
        merged.update(result.attributes)
        return SamplingResult(Decision.RECORD_ONLY, merged, result.trace_state)

    def get_description(self) -> str:
        return f"KeepAttacks{{{self.base.get_description()}}}"


class _Held:
    __slots__ = ("root", "spans")

    def __init__(self, root: int) -> None:
        self.root = root
        self.spans: list[ReadableSpan] = []


class AttackKeeper(SpanProcessor):
    """Holds the recorded but unsampled spans of a request until its server span ends, then
    forwards them, marked sampled, when that span says the request was attacked.

    Bounded: MAX_HELD_TRACES requests, MAX_HELD_SPANS spans each. `forward_to` is the
    provider's own span processor (which includes this one: spans forwarded are sampled, and
    this processor lets sampled spans pass).
    """

    def __init__(self, *, max_traces: int = MAX_HELD_TRACES,
                 max_spans: int = MAX_HELD_SPANS) -> None:
        self._max_traces = max_traces
        self._max_spans = max_spans
        self._held: OrderedDict[int, _Held] = OrderedDict()
        self._lock = threading.Lock()
        self._downstream: SpanProcessor | None = None
        self.kept = 0  # spans exported because their request was attacked
        self.dropped = 0  # spans of held requests that did not fit
        after_fork = weakref.WeakMethod(self._after_fork)  # registrations outlive keepers
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())

    def forward_to(self, downstream: SpanProcessor) -> None:
        self._downstream = downstream

    def hold(self, server_span: Span) -> None:
        """Start holding the trace of a sampled-out server span."""
        context = server_span.get_span_context()
        with self._lock:
            self._held[context.trace_id] = _Held(context.span_id)
            if len(self._held) > self._max_traces:
                self._held.popitem(last=False)
                self.dropped += 1

    def holds(self, trace_id: int) -> bool:
        return trace_id in self._held

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or context.trace_flags.sampled:
            return
        with self._lock:
            held = self._held.get(context.trace_id)
            if held is None:  # a server span whose request was pushed out: kept alone
                held = _Held(context.span_id)
            elif context.span_id != held.root:
                if len(held.spans) < self._max_spans:
                    held.spans.append(span)
                else:
                    self.dropped += 1
                return
            else:
                del self._held[context.trace_id]
        if (span.attributes or {}).get(ATTACK_ATTRIBUTE) is True and self._downstream is not None:
            for kept in (*held.spans, span):
                self._downstream.on_end(sampled_copy(kept))
            self.kept += len(held.spans) + 1

    def shutdown(self) -> None:
        with self._lock:
            self._held.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._held = OrderedDict()


def sampled_copy(span: ReadableSpan) -> ReadableSpan:
    """The same span, marked sampled and `bastion.kept`, for processors that export only
    sampled spans."""
    context = span.context or SpanContext(0, 0, is_remote=False)
    attributes = dict(span.attributes or {})
    attributes[KEPT_ATTRIBUTE] = True
    return ReadableSpan(
        name=span.name,
        context=SpanContext(context.trace_id, context.span_id, is_remote=False,
                            trace_flags=TraceFlags(context.trace_flags | TraceFlags.SAMPLED),
                            trace_state=context.trace_state),
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
