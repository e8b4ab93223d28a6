"""Security-aware tracing on OpenTelemetry: server spans, propagation, providers.

Users keep the collector and the trace backend they run: Bastion's server spans follow the
HTTP conventions, carry `bastion.*` attributes and events on attacks, and go into the
application's tracer provider, or one Bastion sets up (OTLP/HTTP to `BASTION_OTLP_ENDPOINT`).
The statements of the hooked database drivers get client spans too (datastore.py), in a
request or not.

This module is what the request path sees, and imports nothing of OpenTelemetry until
`configure()` turns tracing on: without the `tracing` extra, Bastion works as before and says
once that tracing was asked for.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bastion.config import Settings
    from bastion.context import RequestContext
    from bastion.tracing.provider import Pipeline
    from bastion.tracing.server import ServerSpan as ServerSpan
    from bastion.tracing.server import ServerTracer

__all__ = ["configure", "enabled", "enter", "flush", "shutdown"]

logger = logging.getLogger("bastion")

_server: ServerTracer | None = None
_lock = threading.Lock()
_missing_said = False


def configure(settings: Settings, pipeline: Pipeline | None = None) -> bool:
    """Trace every protected request of this process from now on; False when OpenTelemetry
    is not installed. The first configuration stays (call `shutdown()` to change it).
    `pipeline` replaces the provider resolution (tests, embedding)."""
    global _server, _missing_said
    with _lock:
        if _server is not None:
            return True
        try:
            from bastion.tracing import datastore, outgoing
            from bastion.tracing.server import ServerTracer
        except ImportError as exc:
            if not _missing_said:
                _missing_said = True
                logger.warning("bastion: tracing was asked for (BASTION_TRACING or "
                               "BASTION_OTLP_ENDPOINT) but OpenTelemetry is not installed "
                               "(%s); pip install 'bastion[tracing]'. Requests are still "
                               "protected, not traced.", exc)
            return False
        from bastion.tracing.provider import PipelineProvider

        server = ServerTracer(settings)
        if pipeline is not None:
            server.use(pipeline)
        outgoing.enable(PipelineProvider(lambda: server.pipeline))
        datastore.enable(server, settings)
        _server = server
        return True


def enabled() -> bool:
    return _server is not None


def enter(request: RequestContext) -> ServerSpan | None:
    """The request's server span, started and made current; None when tracing is off."""
    server = _server
    return None if server is None else server.enter(request)


def flush(timeout_s: float = 5.0) -> bool:
    """Send the spans still waiting (a worker about to exit, a test); False when some could
    not be sent within `timeout_s`. The provider Bastion traces into is flushed whole."""
    server = _server
    pipeline = None if server is None else server.pipeline
    if pipeline is None:
        return True
    force_flush = getattr(pipeline.provider, "force_flush", None)
    return True if force_flush is None else bool(force_flush(int(timeout_s * 1000)))


def shutdown() -> None:
    """Stop tracing: outgoing hooks and datastore spans removed, Bastion's own provider
    flushed and shut down."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is None:
        return
    from bastion.tracing import datastore, outgoing

    datastore.disable()
    outgoing.disable()
    server.shutdown()
