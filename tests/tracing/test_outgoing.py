"""The trace context and baggage go out on every outgoing HTTP call made while a request is
handled: urllib, http.client, urllib3, requests, httpx (sync and async)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import urllib3
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind

from bastion import tracing
from bastion.tracing import outgoing
from tests.tracing.apps import asgi_get, fastapi_app, flask_app, get, protection
from tests.tracing.conftest import AppTracing

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
INCOMING = {"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01", "baggage": "tenant=acme"}


class Downstream:
    """Another service on loopback: it answers 200 and remembers each request's headers."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {}
        downstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                downstream.seen[self.path] = {k.lower(): v for k, v in self.headers.items()}
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def downstream() -> Iterator[Downstream]:
    service = Downstream()
    yield service
    service.server.shutdown()
    service.server.server_close()


def with_urllib(url: str) -> None:
    with urllib.request.urlopen(url + "/urllib", timeout=10) as response:
        response.read()


def with_http_client(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/http.client")
        connection.getresponse().read()
    finally:
        connection.close()


def with_urllib3(url: str) -> None:
    with urllib3.PoolManager() as pool:
        pool.request("GET", url + "/urllib3", timeout=10)


def with_requests(url: str) -> None:
    requests.get(url + "/requests", timeout=10).raise_for_status()


def with_httpx(url: str) -> None:
    with httpx.Client() as client:
        client.get(url + "/httpx").raise_for_status()


CLIENTS: dict[str, Callable[[str], None]] = {
    "/urllib": with_urllib, "/http.client": with_http_client, "/urllib3": with_urllib3,
    "/requests": with_requests, "/httpx": with_httpx,
}


def server_span(app_tracing: AppTracing) -> ReadableSpan:
    spans = [s for s in app_tracing.spans() if s.kind is SpanKind.SERVER]
    assert len(spans) == 1, spans
    return spans[0]


def check_propagated(headers: dict[str, str], app_tracing: AppTracing,
                     through_client_span: bool) -> None:
    """The downstream's request continues this request's trace: its parent is a client span
    of the server span, or the server span itself where no client span is made."""
    version, trace_id, parent_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    server = server_span(app_tracing)
    spans = {f"{s.context.span_id:016x}": s for s in app_tracing.spans()}
    parent = spans[parent_id]
    if through_client_span:
        assert parent.kind is SpanKind.CLIENT
        assert parent.parent is not None and parent.parent.span_id == server.context.span_id
    else:
        assert parent is server
    assert headers["baggage"] == "tenant=acme"


@pytest.mark.parametrize("path", list(CLIENTS))
def test_each_client_carries_the_trace_context_and_baggage(
        path: str, tmp_path: Path, app_tracing: AppTracing, downstream: Downstream) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)

    def view() -> str:
        CLIENTS[path](downstream.url)
        return "called"

    reply = get(flask_app(guard, view), "/call", headers=INCOMING)

    assert reply.status == 200 and reply.body == b"called"
    # http.client has no OpenTelemetry instrumentation: Bastion adds the headers, no span.
    check_propagated(downstream.seen[path], app_tracing, through_client_span=path != "/http.client")
    assert len(downstream.seen[path]["traceparent"].split(",")) == 1  # injected once


@pytest.mark.parametrize("path", list(CLIENTS))
def test_client_spans_go_to_bastions_own_provider_which_is_not_global(
        path: str, tmp_path: Path, downstream: Downstream) -> None:
    # The instrumentations are turned on before the first request finds the provider; they
    # are handed Bastion's, not the (unset) global one.
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    CLIENTS[path](downstream.url)  # the library is imported and used before any request

    def view() -> str:
        CLIENTS[path](downstream.url)
        return "called"

    app = flask_app(guard, view)
    get(app, "/item/1")  # the first request finds no provider: Bastion sets up its own
    pipeline = tracing._server.pipeline if tracing._server is not None else None
    assert pipeline is not None and pipeline.owned
    assert isinstance(pipeline.provider, TracerProvider)
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    bastions = AppTracing(pipeline.provider)

    assert get(app, "/call", headers=INCOMING).status == 200
    check_propagated(downstream.seen[path], bastions, through_client_span=path != "/http.client")


def test_httpx_async_carries_the_trace_context_and_baggage(
        tmp_path: Path, app_tracing: AppTracing, downstream: Downstream) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    api = fastapi_app()

    @api.get("/call")
    async def call() -> str:
        async with httpx.AsyncClient() as client:
            (await client.get(downstream.url + "/httpx-async")).raise_for_status()
        return "called"

    assert asgi_get(api, guard, "/call", headers=INCOMING).status == 200
    check_propagated(downstream.seen["/httpx-async"], app_tracing, through_client_span=True)


def test_headers_the_caller_set_are_left_as_they_are(
        tmp_path: Path, app_tracing: AppTracing, downstream: Downstream) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    own = "00-11111111111111111111111111111111-2222222222222222-01"

    def view() -> str:
        host, port = downstream.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/own", headers={"Traceparent": own})
        connection.getresponse().read()
        connection.close()
        return "called"

    get(flask_app(guard, view), "/call", headers=INCOMING)
    assert downstream.seen["/own"]["traceparent"] == own
    assert downstream.seen["/own"]["baggage"] == "tenant=acme"  # what it did not set is added


def test_after_a_traced_request_nothing_is_added(
        tmp_path: Path, app_tracing: AppTracing, downstream: Downstream) -> None:
    guard = protection(tmp_path)
    tracing.configure(guard.settings)
    get(flask_app(guard), "/item/1", headers=INCOMING)  # its context must not linger

    with_http_client(downstream.url)
    with_requests(downstream.url)
    assert "traceparent" not in downstream.seen["/http.client"]
    assert "baggage" not in downstream.seen["/http.client"]
    # requests' instrumentation starts a trace of its own for a call outside any request.
    assert TRACE_ID not in downstream.seen["/requests"]["traceparent"]
    assert "baggage" not in downstream.seen["/requests"]


def test_turning_tracing_off_restores_the_clients(tmp_path: Path) -> None:
    originals = (http.client.HTTPConnection.endheaders, requests.Session.send)
    tracing.configure(protection(tmp_path).settings)
    assert http.client.HTTPConnection.endheaders is not originals[0]
    assert {"RequestsInstrumentor", "HTTPXClientInstrumentor", "URLLib3Instrumentor",
            "URLLibInstrumentor"} <= set(outgoing.instrumented())
    tracing.shutdown()
    assert (http.client.HTTPConnection.endheaders, requests.Session.send) == originals
    assert outgoing.instrumented() == []


def test_an_instrumentation_the_application_turned_on_is_left_to_it(tmp_path: Path) -> None:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    RequestsInstrumentor().instrument()
    try:
        tracing.configure(protection(tmp_path).settings)
        assert "RequestsInstrumentor" not in outgoing.instrumented()
        tracing.shutdown()
        assert RequestsInstrumentor().is_instrumented_by_opentelemetry  # still the app's
    finally:
        RequestsInstrumentor().uninstrument()


def test_exports_carry_no_trace_context(
        tmp_path: Path, app_tracing: AppTracing, downstream: Downstream) -> None:
    """The SDK suppresses instrumentation while it exports: Bastion's hook honours that."""
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value

    tracing.configure(protection(tmp_path).settings)
    with app_tracing.provider.get_tracer("shop").start_as_current_span("job"):
        with_urllib(downstream.url)  # not suppressed: the context goes out
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            with_http_client(downstream.url)
        finally:
            detach(token)
    assert "traceparent" in downstream.seen["/urllib"]
    assert "traceparent" not in downstream.seen["/http.client"]


def test_http_client_imported_after_protect_gets_the_propagation_hook() -> None:
    """The import hook hands over http.client while it is still being imported; patching it
    must not need the `http` package to have its `client` attribute yet."""
    script = (
        "import bastion; bastion.protect()\n"
        "import http.client\n"
        "print(http.client.HTTPConnection.putrequest.__qualname__)\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    environment.update(BASTION_TRACING="true", BASTION_EVENT_LOG="off",
                       PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True,
                          text=True, check=True, timeout=60)
    assert "could not instrument" not in done.stderr
    assert done.stdout.strip().endswith("bastion_putrequest")
