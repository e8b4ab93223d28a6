"""The trace context and baggage go out on every outgoing HTTP call.

OpenTelemetry's own instrumentations make a client span and inject the headers for urllib,
urllib3, requests and httpx (sync and async): Bastion turns each on when its package is
installed, right after the application imports the library (so `protect()` imports none), and
leaves alone those the application instrumented itself. They are handed the provider Bastion
traces into (provider.PipelineProvider), which is not the global one unless the application
set that up.

None exists for `http.client`, which every other client here but httpx stands on, so Bastion
adds the one thing needed there: right before the headers go, `traceparent`, `tracestate` and
`baggage` are added from the current context unless the request already carries them (an
instrumentation above injected its own, or the caller set them). It makes no span: the
receiving service's span is then a child of the span current in the caller.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import (
    _SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    _SUPPRESS_INSTRUMENTATION_KEY,
)
from opentelemetry.trace import TracerProvider

from bastion.contrib.importhook import when_imported

logger = logging.getLogger("bastion")

# module the application imports -> (instrumentation module, instrumentor class)
INSTRUMENTATIONS = {
    "urllib.request": ("opentelemetry.instrumentation.urllib", "URLLibInstrumentor"),
    "urllib3": ("opentelemetry.instrumentation.urllib3", "URLLib3Instrumentor"),
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
}

# Set by the SDK while it exports, and by instrumentations while they hand a call down a
# layer (the plain name is the older spelling, still honoured by the instrumentations).
_SUPPRESS_KEYS = (_SUPPRESS_INSTRUMENTATION_KEY, _SUPPRESS_HTTP_INSTRUMENTATION_KEY,
                  "suppress_instrumentation")

_lock = threading.Lock()
_enabled = False
_provider: TracerProvider | None = None  # what the instrumentations Bastion turns on get
_instrumented: list[Any] = []  # the instrumentors Bastion turned on
_http_client_originals: dict[str, Callable[..., Any]] = {}


def enable(provider: TracerProvider | None = None) -> None:
    """Propagate on outgoing calls from now on, with client spans from `provider` (else the
    global one). Idempotent."""
    global _enabled, _provider
    with _lock:
        if _enabled:
            return
        _enabled = True
        _provider = provider
    when_imported("http.client", _patch_http_client)
    for library in INSTRUMENTATIONS:
        when_imported(library, functools.partial(_instrument_on_import, library))


def disable() -> None:
    """Undo `enable()` (instrumentations Bastion turned on, the http.client hook)."""
    global _enabled
    with _lock:
        _enabled = False
        instrumented = list(_instrumented)
        _instrumented.clear()
    for instrumentor in instrumented:
        instrumentor.uninstrument()
    _unpatch_http_client()


def instrumented() -> list[str]:
    """The names of the instrumentors Bastion turned on (for `bastion check` and tests)."""
    return [type(instrumentor).__name__ for instrumentor in _instrumented]


def _instrument_on_import(library: str, module: ModuleType) -> None:
    if not _enabled:
        return
    module_name, class_name = INSTRUMENTATIONS[library]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        logger.info("bastion: %s is not installed; %s calls carry the trace context only "
                    "where they go through http.client", module_name.replace(".", "-"),
                    library)
        return
    instrumentor = getattr(module, class_name)()
    if instrumentor.is_instrumented_by_opentelemetry:
        return  # the application did it, with its own options
    instrumentor.instrument(tracer_provider=_provider)
    if instrumentor.is_instrumented_by_opentelemetry:
        with _lock:
            _instrumented.append(instrumentor)


def _patch_http_client(module: ModuleType) -> None:
    # The module as the import hook hands it over: while it is being imported, `import
    # http.client` here would find the package without its `client` attribute yet.
    connection = module.HTTPConnection
    with _lock:
        if not _enabled or _http_client_originals:
            return
        originals = {name: getattr(connection, name)
                     for name in ("putrequest", "putheader", "endheaders")}
        _http_client_originals.update(originals)
    putrequest, putheader, endheaders = originals.values()

    def bastion_putrequest(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._bastion_header_names = set()
        return putrequest(self, *args, **kwargs)

    def bastion_putheader(self: Any, header: str | bytes, *values: Any) -> Any:
        names = getattr(self, "_bastion_header_names", None)
        if names is not None:
            name = header.decode("latin-1") if isinstance(header, bytes) else str(header)
            names.add(name.lower())
        return putheader(self, header, *values)

    def bastion_endheaders(self: Any, *args: Any, **kwargs: Any) -> Any:
        names = getattr(self, "_bastion_header_names", None)
        if names is not None:
            self._bastion_header_names = None
            for name, value in _context_headers(names).items():
                putheader(self, name, value)
        return endheaders(self, *args, **kwargs)

    connection.putrequest = bastion_putrequest
    connection.putheader = bastion_putheader
    connection.endheaders = bastion_endheaders


def _context_headers(present: set[str]) -> dict[str, str]:
    """The propagation headers of the current context that the request does not carry."""
    try:
        current = otel_context.get_current()
        if any(otel_context.get_value(key, current) for key in _SUPPRESS_KEYS):
            return {}
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=current)
        return {name: value for name, value in carrier.items() if name.lower() not in present}
    except Exception as exc:  # the call goes out without them rather than not at all
        logger.debug("bastion: trace context not added to an http.client request: %r", exc)
        return {}


def _unpatch_http_client() -> None:
    with _lock:
        originals = dict(_http_client_originals)
        _http_client_originals.clear()
    module = sys.modules.get("http.client")
    if module is None:
        return
    for name, original in originals.items():
        setattr(module.HTTPConnection, name, original)
