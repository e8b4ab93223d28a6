"""The spans of the tracer provider Bastion sets up: the SDK's span costs too much.

An SDK span checks every attribute value through `BoundedAttributes` (a lock, a type walk),
copies itself into a new `ReadableSpan` when it ends, and asks for its tracer's metrics: about
45 us a request for the server span alone, more than Bastion's whole protection of a request.
`LightTracer` makes spans that do the same job with plain fields. It wraps the provider's SDK
tracer and keeps everything that matters from it: its sampler, id generator, resource, scope
and span processors, so sampling, attack keeping (sampling.py) and the batched export see
what they would see from an SDK span.

A `LightSpan` is both the API's `Span` (what the application and the instrumentations get as
the current span) and the SDK's `ReadableSpan` (what processors and exporters read); once it
ended, it changes no more, so it goes to the processors as it is, without a copy.

Only the provider Bastion sets up makes these (`LightTracerProvider`, for every tracer it
gives): an application's own provider may have span limits or processors that expect SDK
spans, so there Bastion uses the SDK tracer as it comes (provider.py). A LightSpan keeps
OpenTelemetry's default limits (128 attributes, events and links); the `OTEL_SPAN_*_LIMIT`
variables are not read.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan, Tracer, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import sampling as sdk_sampling
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision, ParentBased, Sampler
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import Attributes, AttributeValue

from bastion.tracing.sampling import KeepAttacksSampler

logger = logging.getLogger("bastion")

MAX_ATTRIBUTES = 128
"""Attributes a span keeps at most (OpenTelemetry's default limit); more are dropped."""

MAX_EVENTS = 128
MAX_LINKS = 128

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_RANDOM_SAMPLED = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_RANDOM_NOT_SAMPLED = TraceFlags(TraceFlags.RANDOM_TRACE_ID)
_UNSET = Status(StatusCode.UNSET)
_SCALARS = (str, bool, int, float)
_SCALAR_TYPES = frozenset(_SCALARS)
_SEQUENCE_TYPES = frozenset((tuple, list))  # the usual sequences, known without an ABC check

# The classes of OpenTelemetry's default sampler (the SDK makes it from a private subclass).
_PARENT_BASED: Final = frozenset(
    (ParentBased, getattr(sdk_sampling, "_ParentBasedAlwaysOn", ParentBased)))

_invalid_said = False


class LightTracerProvider(TracerProvider):
    """The provider Bastion sets up when the application set none: every tracer it gives,
    Bastion's and the application's (its own spans, its frameworks' and the outgoing HTTP
    instrumentations'), makes LightSpans."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        tracer = super().get_tracer(*args, **kwargs)
        return LightTracer(tracer) if isinstance(tracer, Tracer) else tracer


class LightTracer(trace.Tracer):
    """A tracer making `LightSpan`s, configured by the SDK tracer it wraps."""

    def __init__(self, sdk: Tracer) -> None:
        self._fast_keeper: KeepAttacksSampler | None = None
        self.sampler = sdk.sampler
        self.span_processor = sdk.span_processor
        self._ids = sdk.id_generator
        self._random_ids = sdk.id_generator.is_trace_id_random()
        self._resource = sdk.resource
        self._scope = sdk._instrumentation_scope  # no public accessor
        self._enabled = getattr(sdk, "_is_enabled", None)

    @property
    def sampler(self) -> Sampler:
        return self._sampler

    @sampler.setter
    def sampler(self, sampler: Sampler) -> None:
        self._sampler = sampler
        # OpenTelemetry's default sampler (parent-based, always on) under Bastion's keeper of
        # attacks decides from the parent's flags alone: start_span then decides the same
        # without its three calls and a SamplingResult per span.
        self._fast_keeper = (sampler if isinstance(sampler, KeepAttacksSampler)
                             and _is_default_parent_based(sampler.base) else None)

    def _decide(self, context: otel_context.Context | None, parent: SpanContext,
                trace_id: int, name: str, kind: SpanKind, attributes: Attributes,
                links: Sequence[Link]) -> tuple[Decision, Attributes, TraceState | None]:
        """The sampler's decision, attributes and trace state for a new span."""
        keeper = self._fast_keeper
        if keeper is None:
            result = self._sampler.should_sample(context, trace_id, name, kind, attributes,
                                                 links)
            return result.decision, result.attributes, result.trace_state
        if not parent.is_valid:
            return Decision.RECORD_AND_SAMPLE, attributes, None
        if parent.trace_flags.sampled:
            return Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state
        if keeper.every_span or keeper.keeper.holds(trace_id):
            return Decision.RECORD_ONLY, attributes, parent.trace_state
        return Decision.DROP, None, parent.trace_state

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if self._enabled is not None and not self._enabled():
            return trace.NonRecordingSpan(parent)
        if parent.is_valid:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
            parent_context: SpanContext | None = parent
        else:
            trace_id = self._ids.generate_trace_id()
            random_id = self._random_ids
            parent_context = None
        links = links or ()
        decision, span_attributes, trace_state = self._decide(
            context, parent, trace_id, name, kind, attributes, links)
        if decision is Decision.RECORD_AND_SAMPLE:
            flags = _RANDOM_SAMPLED if random_id else _SAMPLED
        else:
            flags = _RANDOM_NOT_SAMPLED if random_id else _NOT_SAMPLED
        span_context = SpanContext(trace_id, self._ids.generate_span_id(), is_remote=False,
                                   trace_flags=flags, trace_state=trace_state)
        if decision is Decision.DROP:
            return trace.NonRecordingSpan(span_context)
        span = LightSpan(name, span_context, parent_context, kind,
                         dict(span_attributes) if span_attributes else {}, self,
                         record_exception, set_status_on_exception)
        for link in links[:MAX_LINKS]:
            span.add_link(link.context, link.attributes)
        if start_time is not None:
            span._start_time = start_time
        # Typed for SDK spans; processors read a span through the API and ReadableSpan.
        self.span_processor.on_start(cast(SdkSpan, span), parent_context=context)
        return span

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time,
                               record_exception, set_status_on_exception)
        with trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                            set_status_on_exception=set_status_on_exception) as current:
            yield current


class LightSpan(trace.Span, ReadableSpan):
    """A recording span with plain fields; see the module's docstring."""

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None,
                 kind: SpanKind, attributes: dict[str, AttributeValue], tracer: LightTracer,
                 record_exception: bool, set_status_on_exception: bool) -> None:
        # ReadableSpan's fields, set here rather than through its __init__ (which would make
        # a resource when none is given): the properties processors and exporters read.
        self._name = name
        self._context = self._own_context = context
        self._parent = parent
        self._kind = kind
        self._attributes = self._values = attributes
        self._events: list[Event] = []
        self._links: list[Link] = []
        self._resource = tracer._resource
        self._instrumentation_scope = tracer._scope
        self._instrumentation_info = None
        self._status = _UNSET
        self._start_time: int | None = time.time_ns()
        self._end_time: int | None = None
        self._processor = tracer.span_processor
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        # Past the limits: what the OTLP span says it lost.
        self._dropped_attributes = self._dropped_events = self._dropped_links = 0

    # The API's Span ------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._own_context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        if self._end_time is not None:
            return
        values = self._values
        for key, value in attributes.items():
            # The usual value, a plain scalar, stored here; the rest checked by set_attribute.
            if type(value) in _SCALAR_TYPES and (key in values or len(values) < MAX_ATTRIBUTES):
                values[key] = value
            else:
                self.set_attribute(key, value)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._end_time is not None:
            return
        attributes = self._values
        cleaned = _attribute_value(value)
        if cleaned is None:
            _say_invalid(key, value)
            return
        if key in attributes or len(attributes) < MAX_ATTRIBUTES:
            attributes[key] = cleaned
        else:
            self._dropped_attributes += 1

    def add_event(self, name: str, attributes: Attributes = None,
                  timestamp: int | None = None) -> None:
        if self._end_time is not None:
            return
        if len(self._events) >= MAX_EVENTS:
            self._dropped_events += 1
            return
        self._events.append(Event(name, _clean_attributes(attributes),
                                  timestamp if timestamp is not None else time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if self._end_time is not None or not context.is_valid:
            return
        if len(self._links) >= MAX_LINKS:
            self._dropped_links += 1
            return
        self._links.append(Link(context, _clean_attributes(attributes)))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK: OK is final, UNSET changes nothing."""
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(self, exception: BaseException, attributes: Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        kind = type(exception)
        module = kind.__module__
        recorded: dict[str, Any] = {
            "exception.type": (f"{module}.{kind.__qualname__}"
                               if module and module != "builtins" else kind.__qualname__),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            recorded.update(attributes)
        self.add_event("exception", recorded, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else time.time_ns()
        self._processor.on_end(self)  # ended, it changes no more: no copy needed

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        """As the SDK's span: an exception leaving the block is recorded and sets ERROR."""
        if exc_val is not None and self.is_recording():
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{exc_type.__name__}: {exc_val}"
                                       if exc_type is not None else str(exc_val)))
        super().__exit__(exc_type, exc_val, exc_tb)

    # The SDK's ReadableSpan ----------------------------------------------------------

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._dropped_events

    @property
    def dropped_links(self) -> int:
        return self._dropped_links

    def __repr__(self) -> str:
        return f'LightSpan(name="{self._name}", context={self._context})'


def _is_default_parent_based(sampler: Sampler) -> bool:
    """Whether `sampler` is OpenTelemetry's default: parent-based, always on at the root,
    following a parent's sampled flag (`OTEL_TRACES_SAMPLER` unset)."""
    return type(sampler) in _PARENT_BASED and all(
        getattr(sampler, name, None) is decision for name, decision in (
            ("_root", ALWAYS_ON), ("_remote_parent_sampled", ALWAYS_ON),
            ("_remote_parent_not_sampled", ALWAYS_OFF), ("_local_parent_sampled", ALWAYS_ON),
            ("_local_parent_not_sampled", ALWAYS_OFF)))


def _attribute_value(value: object) -> AttributeValue | None:
    """`value` as OpenTelemetry takes it (a sequence of one scalar type becomes a tuple),
    or None when it takes no such value."""
    if isinstance(value, _SCALARS):
        return value
    if type(value) in _SEQUENCE_TYPES or (
            isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))):
        items = cast(Sequence[Any], value)
        kinds = {type(item) for item in items if item is not None}
        if len(kinds) <= 1 and kinds <= _SCALAR_TYPES:
            return tuple(items)
    return None


def _clean_attributes(attributes: Attributes) -> dict[str, AttributeValue]:
    if not attributes:
        return {}
    cleaned: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if len(cleaned) >= MAX_ATTRIBUTES:
            break
        if type(value) in _SCALAR_TYPES:  # the usual value, taken as it is
            cleaned[key] = value
            continue
        good = _attribute_value(value)
        if good is None:
            _say_invalid(key, value)
        else:
            cleaned[key] = good
    return cleaned


def _say_invalid(key: str, value: object) -> None:
    global _invalid_said
    if not _invalid_said:
        _invalid_said = True
        logger.warning("bastion: span attribute %r dropped: OpenTelemetry takes no %s value "
                       "(said once)", key, type(value).__name__)
