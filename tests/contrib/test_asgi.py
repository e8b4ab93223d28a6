"""The ASGI middleware in process, with a bare ASGI app: body replay, blocking, fail-open."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import bastion
from bastion.config import Settings
from bastion.contrib.asgi import BastionASGIMiddleware
from bastion.protection import Protection
from bastion.waf import load_ruleset
from tests.contrib.failures import PARTS, break_part
from tests.contrib.test_wsgi import RULES

Message = dict[str, Any]


def protection(tmp_path: Path, mode: str = "block") -> Protection:
    settings = Settings(mode=mode, event_log=str(tmp_path / "events.jsonl"), max_body_bytes=64)
    return Protection(settings, load_ruleset(RULES))


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if b"refuse" in body:
        bastion.block_request()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    await send({"type": "http.response.body", "body": body})


def call(app: Any, path: str = "/", chunks: tuple[bytes, ...] = (b"",),
         headers: dict[str, str] | None = None) -> tuple[int, list[Message]]:
    target, _, query = path.partition("?")
    scope = {"type": "http", "method": "POST", "path": target, "raw_path": target.encode(),
             "query_string": query.encode(), "scheme": "http", "client": ("203.0.113.7", 1),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    incoming = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                for i, chunk in enumerate(chunks)]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent


def body_of(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_the_app_receives_the_whole_body_in_its_chunks(tmp_path: Path) -> None:
    app = BastionASGIMiddleware(echo_app, protection(tmp_path))
    chunks = (b"a" * 50, b"b" * 50, b"c" * 50)  # beyond max_body_bytes (64)
    status, sent = call(app, "/", chunks)
    assert status == 200 and body_of(sent) == b"".join(chunks)


def test_attack_blocked_before_the_app(tmp_path: Path) -> None:
    reached: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(True)
        await echo_app(scope, receive, send)

    status, sent = call(BastionASGIMiddleware(app, protection(tmp_path)), "/?q=1'%20OR%201=1--")
    assert status == 403 and not reached
    assert json.loads(body_of(sent))["security_response_id"]


def test_the_app_can_block(tmp_path: Path) -> None:
    status, sent = call(BastionASGIMiddleware(echo_app, protection(tmp_path)), "/",
                        (b"refuse",), {"Accept": "text/html"})
    assert status == 403 and b"Request blocked" in body_of(sent)


def test_websocket_and_lifespan_pass_through(tmp_path: Path) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = BastionASGIMiddleware(app, protection(tmp_path))
    for kind in ("lifespan", "websocket"):
        asyncio.run(middleware({"type": kind}, None, None))
    assert seen == ["lifespan", "websocket"]


@pytest.mark.parametrize("broken", PARTS)
def test_a_failure_inside_bastion_leaves_the_response_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    broken: str,
) -> None:
    made = protection(tmp_path, "monitor")
    message = break_part(monkeypatch, made, broken)
    app = BastionASGIMiddleware(echo_app, made)
    request = ("/?q=1'%20OR%201=1--", (b"q=1' OR 1=1--",),
               {"Content-Type": "application/x-www-form-urlencoded"})
    plain = call(echo_app, *request)
    with caplog.at_level(logging.ERROR, logger="bastion"):
        for _ in range(3):
            assert call(app, *request) == plain
    assert len([r for r in caplog.records if message in r.getMessage()]) == 1
