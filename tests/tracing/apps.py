"""Protected applications in process: a Flask app through the WSGI middleware, any ASGI app
through the ASGI middleware, and the calls that drive them like a server would."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
from fastapi import FastAPI
from opentelemetry import baggage, trace

from bastion.config import Settings
from bastion.contrib.asgi import BastionASGIMiddleware
from bastion.contrib.flask import protect_app
from bastion.protection import Protection
from bastion.waf import load_ruleset

_RULESET = None


def protection(tmp_path: Path, **settings: Any) -> Protection:
    """Bundled rules (compiled once for the module), events to a file."""
    global _RULESET
    if _RULESET is None:
        _RULESET = load_ruleset()
    values = {"event_log": str(tmp_path / "events.jsonl"), "tracing": True} | settings
    return Protection(Settings(**values), _RULESET)


def flask_app(protection: Protection, view: Callable[[], Any] | None = None) -> flask.Flask:
    """`/item/<item_id>` answers the id, the trace context it ran in and the baggage it saw;
    `/call` runs `view` (an outgoing call, a span of the application's own)."""
    app = flask.Flask(__name__)

    @app.get("/item/<item_id>")
    def item(item_id: str) -> dict[str, Any]:
        context = trace.get_current_span().get_span_context()
        return {"item": item_id, "trace_id": f"{context.trace_id:032x}",
                "span_id": f"{context.span_id:016x}", "baggage": dict(baggage.get_all())}

    @app.get("/search")
    def search() -> dict[str, Any]:
        return {"query": flask.request.args.get("q", "")}

    @app.route("/call", methods=["GET", "POST"])
    def call() -> Any:
        assert view is not None
        return view()

    @app.get("/fail")
    def fail() -> tuple[str, int]:
        return "broken", 503

    return protect_app(app, protection)


FASTAPI_TELEMETRY = "telemetry" in inspect.signature(FastAPI).parameters
"""FastAPI versions with native OpenTelemetry make a server span of their own per request."""


def fastapi_app(native_tracing: bool = False) -> FastAPI:
    if FASTAPI_TELEMETRY:
        return FastAPI(telemetry={"tracing": native_tracing})
    return FastAPI()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def get(app: flask.Flask, target: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> Reply:
    """One request through the app; the response is closed (as a server does), which ends
    the request for Bastion."""
    client = app.test_client()
    response = client.open(target, method=method, headers=headers or {})
    try:
        return Reply(response.status_code, dict(response.headers), response.get_data())
    finally:
        response.close()


def asgi_get(app: Any, protection: Protection | None, target: str,
             headers: dict[str, str] | None = None) -> Reply:
    """One GET through the ASGI middleware around `app` (through `app` alone without a
    protection: it has Bastion inside), driven as an ASGI server would."""
    path, _, query = target.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "root_path": "",
             "client": ("203.0.113.7", 50000), "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"127.0.0.1:8000")]
             + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    outer = app if protection is None else BastionASGIMiddleware(app, protection)
    asyncio.run(outer(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Reply(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body)
