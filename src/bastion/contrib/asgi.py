"""ASGI middleware: every HTTP request of an ASGI app through a RequestContext.

The same steps as the WSGI middleware: read the body once (up to `BASTION_MAX_BODY_BYTES`) and
replay it to the application message by message, inspect the request before the app runs and
the response start before it is sent, report when the response is complete. Lifespan and
websocket traffic pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bastion.blocking import BlockedRequest, BlockResponse
from bastion.context import RequestContext, current
from bastion.protection import Protection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BastionASGIMiddleware:
    """Wraps an ASGI application: `app = BastionASGIMiddleware(app)`."""

    def __init__(self, app: ASGIApp, protection: Protection | None = None) -> None:
        from bastion.runtime import installed_or_new

        self.app = app
        self.protection = protection or installed_or_new()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Not HTTP, disabled, or already inside a protected request (a mounted sub-app).
        if (scope.get("type") != "http" or not self.protection.settings.enabled
                or current() is not None):
            await self.app(scope, receive, send)
            return
        try:
            ctx = RequestContext(
                self.protection, scope.get("method", "GET"), request_target(scope),
                request_headers(scope), _peer(scope), scope.get("scheme", "http"),
            )
            buffered, body = await read_body(receive, self.protection.settings.max_body_bytes)
        except Exception as exc:
            self.protection.report_error("asgi request", exc)
            await self.app(scope, receive, send)
            return
        with ctx:
            try:
                blocked = ctx.start(body)
                if blocked is not None:
                    await send_block(send, blocked)
                    return
                await _Exchange(ctx, scope, buffered, receive, send).run(self.app)
            finally:
                ctx.finish()


class _Exchange:
    """One request's messages between the server and the app, seen by Bastion."""

    def __init__(
        self, ctx: RequestContext, scope: Scope, buffered: list[Message], receive: Receive,
        send: Send,
    ) -> None:
        self.ctx = ctx
        self.scope = scope
        self.buffered = buffered
        self.server_receive = receive
        self.server_send = send
        self.started = False  # the response start went to the server
        self.replaced = False  # the app's response was replaced by the block response

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BlockedRequest as error:
            if self.started:
                raise  # too late to answer otherwise; the server closes the connection
            await send_block(self.server_send, self.ctx.block_with(error))

    async def receive(self) -> Message:
        if self.buffered:
            return self.buffered.pop(0)
        return await self.server_receive()

    async def send(self, message: Message) -> None:
        if self.replaced:
            return
        if message.get("type") == "http.response.start" and not self.started:
            blocked = self._inspect_response(message)
            if blocked is not None:
                self.replaced = True
                self.started = True
                await send_block(self.server_send, blocked)
                return
            self.started = True
        await self.server_send(message)

    def _inspect_response(self, message: Message) -> BlockResponse | None:
        try:
            headers = [(k.decode("latin-1"), v.decode("latin-1"))
                       for k, v in message.get("headers", ())]
            return self.ctx.response(int(message.get("status", 200)), headers)
        except Exception as exc:
            self.ctx.protection.report_error("asgi response", exc)
            return None


async def send_block(send: Send, blocked: BlockResponse) -> None:
    await send({
        "type": "http.response.start", "status": blocked.status,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in blocked.headers],
    })
    await send({"type": "http.response.body", "body": blocked.body, "more_body": False})


async def read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes]:
    """The first messages of the body, up to `limit` bytes, kept to be replayed to the app."""
    buffered: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        message = await receive()
        buffered.append(message)
        if message.get("type") != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    return buffered, b"".join(chunks)[:limit]


def request_target(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else scope.get("path", "/")
    query = scope.get("query_string", b"")
    query_text = query.decode("latin-1") if isinstance(query, bytes) else str(query)
    return f"{path}?{query_text}" if query_text else path


def request_headers(scope: Scope) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("utf-8", "replace"))
            for name, value in scope.get("headers", ())]


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None
