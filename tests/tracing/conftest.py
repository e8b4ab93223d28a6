"""Each test starts with tracing off and no tracer provider set, as a fresh process would.

OpenTelemetry lets a process set its global tracer provider once; the tests need a fresh
start each, so the fixture puts the API's globals back as they are at import (the same reset
OpenTelemetry's own test utilities do).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from bastion import tracing
from tests.tracing.otlp import OTLPReceiver


def reset_global_provider() -> None:
    provider = trace._TRACER_PROVIDER
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture(autouse=True)
def fresh_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for variable in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME",
                     "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                     "OTEL_PROPAGATORS", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(variable, raising=False)
    tracing.shutdown()
    reset_global_provider()
    yield
    tracing.shutdown()
    reset_global_provider()


class AppTracing:
    """An application's own OpenTelemetry set-up: its provider, recording in memory."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def app_tracing() -> AppTracing:
    """The application set up its provider before Bastion saw a request."""
    app = AppTracing(TracerProvider())
    trace.set_tracer_provider(app.provider)
    return app


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    server = OTLPReceiver().start()
    yield server
    server.stop()
