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
  `OTEL_TRACES_SAMPLER`, wrapped so attacks are kept) and makes it the global one, so that the
  application's spans and the outgoing HTTP instrumentations join the same traces. It exports
  only to `BASTION_OTLP_ENDPOINT`, and without it to nothing. Every span there is a
  `LightSpan` (lightspan.py), a fraction of an SDK span's cost.

Export goes through `EncodingBatchProcessor` (batching.py): each span is encoded as it ends
into a bounded queue (spans beyond it are dropped, not waited for), and a daemon thread sends
batches with a short timeout, so a dead or slow collector costs a request nothing but that.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, Tracer, TracerProvider

from bastion import __version__
from bastion.config import Settings
from bastion.tracing.lightspan import LightTracer, LightTracerProvider
from bastion.tracing.sampling import AttackKeeper, KeepAttacksSampler

logger = logging.getLogger("bastion")

TRACER_NAME = "bastion"
TRACES_PATH = "/v1/traces"

QUEUE_SIZE = 2048
"""Spans waiting for export at most; a full queue drops spans, it never blocks a request."""

BATCH_SIZE = 512
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
    endpoint: str, *, queue_size: int = QUEUE_SIZE, batch_size: int = BATCH_SIZE,
    timeout_s: float = EXPORT_TIMEOUT_S,
) -> SpanProcessor:
    """Batched OTLP/HTTP (protobuf) export to `endpoint`, off the request path but for each
    span's encoding (batching.py), written by our own encoder (otlpencode.py: a third of the
    SDK encoder's cost, same bytes)."""
    from bastion.tracing.batching import EncodingBatchProcessor
    from bastion.tracing.otlpwire import OTLPHTTPExporter

    exporter = OTLPHTTPExporter(traces_url(endpoint), timeout_s=timeout_s)
    return EncodingBatchProcessor(exporter, queue_size=queue_size, batch_size=batch_size,
                                  schedule_delay_s=schedule_delay_s())


def schedule_delay_s() -> float:
    """How long a span waits at most for its batch: OpenTelemetry's `OTEL_BSP_SCHEDULE_DELAY`
    (milliseconds), else 5 s. A value that is not a positive number is said and ignored."""
    text = os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "").strip()
    if not text:
        return SCHEDULE_DELAY_S
    try:
        delay_ms = float(text)
    except ValueError:
        delay_ms = -1.0
    if not 0 < delay_ms < 86_400_000:
        logger.warning("bastion: OTEL_BSP_SCHEDULE_DELAY=%r is not a delay in milliseconds; "
                       "batches leave every %g s", text, SCHEDULE_DELAY_S)
        return SCHEDULE_DELAY_S
    return delay_ms / 1000


def resolve(settings: Settings, exporter: SpanProcessor | None = None) -> Pipeline:
    """The pipeline for this process: the global provider if the application set one, else a
    new one of Bastion's, made global. `exporter` replaces the one the settings ask for."""
    if exporter is None and settings.otlp_endpoint:
        exporter = exporting_processor(settings.otlp_endpoint)
    keeper = AttackKeeper()
    provider = trace.get_tracer_provider()
    owned = False
    if isinstance(provider, trace.ProxyTracerProvider):
        ours = _new_provider(settings, keeper)
        trace.set_tracer_provider(ours)
        provider = trace.get_tracer_provider()
        owned = provider is ours
        if owned:
            logger.info("bastion: tracing with a provider of its own, exporting to %s",
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
