"""Find the application's tracer provider, or make one: Bastion's spans go where its spans go.

The provider is looked for when the first request is traced, not at `protect()`:
`bastion-run` calls `protect()` before the application's own code runs, and an application
that sets up OpenTelemetry at import would otherwise find a provider already set, and
OpenTelemetry would refuse its own.

- The application set one: Bastion takes a tracer from it and adds its `AttackKeeper` span
  processor; it replaces no sampler, processor nor exporter. With `BASTION_OTLP_ENDPOINT`
  set, it also adds an exporter to that endpoint (every span of the provider then goes there
  too: that is what the setting asks).
- None was set: Bastion sets up an SDK provider (resource from `BASTION_SERVICE_NAME`, else
  OpenTelemetry's `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES`; sampler from
  `OTEL_TRACES_SAMPLER`, wrapped so attacks are kept). It exports only to
  `BASTION_OTLP_ENDPOINT`, and without it to nothing. Every span there is a `LightSpan`
  (lightspan.py), a fraction of an SDK span's cost. It stays Bastion's own (the outgoing HTTP
  instrumentations are handed it, outgoing.py): a library that set the global provider would
  switch on every instrumentation that waits for one, FastAPI's own telemetry among them
  (about 150 us a request), which the application never asked for. The trace context is
  global all the same, so the application's spans (non-recording) and its outgoing calls stay
  in the request's trace. `BASTION_TRACING_GLOBAL` makes it the global provider instead, for
  an application that wants its own spans recorded there without setting up OpenTelemetry.

Export goes through `EncodingBatchProcessor` (batching.py): ended spans are encoded a few
dozen at a time on the request's thread into a bounded queue (spans beyond it are dropped, not
waited for), and a daemon thread sends batches with a short timeout, so a dead or slow
collector costs a request nothing but that.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, Tracer, TracerProvider
from opentelemetry.util.types import Attributes

from bastion import __version__
from bastion.config import Settings
from bastion.tracing.lightspan import LightTracer, LightTracerProvider
from bastion.tracing.sampling import AttackKeeper, KeepAttacksSampler

logger = logging.getLogger("bastion")

TRACER_NAME = "bastion"
TRACES_PATH = "/v1/traces"

QUEUE_SIZE = 8192
"""Spans waiting for export at most; a full queue drops spans, it never blocks a request."""

BATCH_SIZE = 2048
"""Spans in one post at most. Larger than OpenTelemetry's 512: each post costs a busy worker
about the same whatever its size (see batching.py)."""

BATCH_BYTES = 1 << 20
"""Encoded bytes in one post at most, well under collectors' request limits (4 MiB and up)."""

QUEUE_BYTES = 16 << 20
"""Encoded bytes waiting at most: large spans (an error's stack) fill it before the count."""

SCHEDULE_DELAY_S = 5.0
"""The longest a span waits for its batch to fill (OpenTelemetry's default)."""

EXPORT_TIMEOUT_S = 5.0
"""One export's deadline, retries included (OpenTelemetry's default is 10 s)."""


@dataclass
class Pipeline:
    """Where Bastion's spans go: its tracer, in `provider`, with the keeper of attacks."""

    provider: trace.TracerProvider
    tracer: trace.Tracer
    keeper: AttackKeeper | None
    owned: bool  # Bastion made the provider (and shuts it down)


def traces_url(endpoint: str) -> str:
    """`BASTION_OTLP_ENDPOINT` as the exporter's URL: a bare collector address gets the
    traces path of OTLP/HTTP, a URL with a path is taken as it is."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return urlunsplit((parts.scheme, parts.netloc, TRACES_PATH, parts.query, ""))
    return endpoint


def exporting_processor(
    endpoint: str, *, queue_size: int | None = None, batch_size: int | None = None,
    timeout_s: float = EXPORT_TIMEOUT_S,
) -> SpanProcessor:
    """Batched OTLP/HTTP (protobuf) export to `endpoint`, off the request path but for each
    span's encoding (batching.py), written by our own encoder (otlpencode.py: a third of the
    SDK encoder's cost, same bytes). Sizes not given come from OpenTelemetry's variables."""
    from bastion.tracing.batching import EncodingBatchProcessor
    from bastion.tracing.otlpwire import OTLPHTTPExporter

    exporter = OTLPHTTPExporter(traces_url(endpoint), timeout_s=timeout_s)
    if queue_size is None:
        queue_size = int(_bsp_setting("OTEL_BSP_MAX_QUEUE_SIZE", QUEUE_SIZE, "spans",
                                      1, 1_000_000))
    if batch_size is None:
        batch_size = int(_bsp_setting("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", BATCH_SIZE, "spans",
                                      1, 1_000_000))
    return EncodingBatchProcessor(exporter, queue_size=queue_size, batch_size=batch_size,
                                  queue_bytes=QUEUE_BYTES, batch_bytes=BATCH_BYTES,
                                  schedule_delay_s=schedule_delay_s())


def schedule_delay_s() -> float:
    """How long a span waits at most for its batch: OpenTelemetry's `OTEL_BSP_SCHEDULE_DELAY`
    (milliseconds), else 5 s. A value that is not a positive number is said and ignored."""
    return _bsp_setting("OTEL_BSP_SCHEDULE_DELAY", SCHEDULE_DELAY_S * 1000, "milliseconds",
                        1e-3, 86_400_000) / 1000


def _bsp_setting(variable: str, default: float, unit: str, low: float, high: float) -> float:
    """One of OpenTelemetry's batch processor variables, or `default` when unset or not a
    number within [low, high] (said, then ignored)."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        logger.warning("bastion: %s=%r is not a number of %s; %g is used", variable, text,
                       unit, default)
        return default
    return value


def resolve(settings: Settings, exporter: SpanProcessor | None = None) -> Pipeline:
    """The pipeline for this process: the global provider if the application set one, else a
    new one of Bastion's (made global only when the settings ask). `exporter` replaces the one
    the settings ask for."""
    if exporter is None and settings.otlp_endpoint:
        exporter = exporting_processor(settings.otlp_endpoint)
    keeper = AttackKeeper()
    provider = trace.get_tracer_provider()
    owned = False
    if isinstance(provider, trace.ProxyTracerProvider):
        ours = _new_provider(settings, keeper)
        if settings.tracing_global:
            trace.set_tracer_provider(ours)
            provider = trace.get_tracer_provider()
        else:
            provider = ours
        owned = provider is ours
        if owned:
            logger.info("bastion: tracing with a provider of its own%s, exporting to %s",
                        " (made the global one)" if settings.tracing_global else "",
                        settings.otlp_endpoint or "nothing")
        else:  # the application set its provider meanwhile: it wins
            ours.shutdown()
    else:
        logger.info("bastion: tracing into the application's tracer provider")
    add = getattr(provider, "add_span_processor", None)
    if add is not None:  # an SDK provider; another kind only gives tracers
        add(keeper)
        if exporter is not None:
            add(exporter)
    elif exporter is not None:
        logger.warning("bastion: the application's tracer provider takes no span processor; "
                       "BASTION_OTLP_ENDPOINT is not used")
        exporter.shutdown()
    tracer = provider.get_tracer(TRACER_NAME, __version__)
    if isinstance(tracer, (Tracer, LightTracer)):
        # Bastion's own tracer only: the application's tracers keep the provider's sampler.
        tracer.sampler = KeepAttacksSampler(tracer.sampler, keeper, every_span=True)
        keeper.forward_to(tracer.span_processor)
        return Pipeline(provider, tracer, keeper, owned)
    return Pipeline(provider, tracer, None, owned)


def _new_provider(settings: Settings, keeper: AttackKeeper) -> TracerProvider:
    attributes = {SERVICE_NAME: settings.service_name} if settings.service_name else {}
    provider = LightTracerProvider(resource=Resource.create(attributes))
    # Set before any tracer exists: every tracer of this provider gets the wrapped sampler.
    provider.sampler = KeepAttacksSampler(provider.sampler, keeper)
    return provider


class PipelineProvider(trace.TracerProvider):
    """The provider of a pipeline found later, for instrumentations turned on before it is.

    The outgoing HTTP instrumentations take their tracer when the application imports the
    client library, which is before the first request finds the pipeline; their tracers ask
    `pipeline()` at each span, and take the real tracer once it answers.
    """

    def __init__(self, pipeline: Callable[[], Pipeline | None]) -> None:
        self._pipeline = pipeline

    def get_tracer(
        self, instrumenting_module_name: str, instrumenting_library_version: str | None = None,
        schema_url: str | None = None, attributes: Attributes | None = None,
    ) -> trace.Tracer:
        return _PipelineTracer(self._pipeline, (instrumenting_module_name,
                                                instrumenting_library_version, schema_url,
                                                attributes))


class _PipelineTracer(trace.Tracer):
    """A tracer of the pipeline's provider once there is one; until then a non-recording one
    (the trace context still flows)."""

    def __init__(self, pipeline: Callable[[], Pipeline | None],
                 identity: tuple[str, str | None, str | None, Attributes | None]) -> None:
        self._pipeline = pipeline
        self._identity = identity
        self._tracer: trace.Tracer | None = None

    def _real(self) -> trace.Tracer:
        tracer = self._tracer
        if tracer is None:
            pipeline = self._pipeline()
            if pipeline is None:
                return _NO_OP_TRACER
            name, version, schema_url, attributes = self._identity
            tracer = self._tracer = pipeline.provider.get_tracer(
                name, version, schema_url=schema_url, attributes=attributes)
        return tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._real().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        # The real tracer's context manager itself (it also decorates functions).
        return self._real().start_as_current_span(*args, **kwargs)


_NO_OP_TRACER = trace.NoOpTracer()
