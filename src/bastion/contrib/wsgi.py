"""WSGI middleware: every request of a WSGI app through a RequestContext.

It reads the body once (up to `BASTION_MAX_BODY_BYTES`) and hands the application an
identical stream, inspects the request before the app runs, the response status and headers
before they are sent, and reports the event when the response is closed. The application's
own response passes through untouched: same status, headers and bytes. Any failure of
Bastion's own lets the request go on as if Bastion were absent (fail open).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

from bastion.blocking import BlockedRequest, BlockResponse
from bastion.context import RequestContext, current, resumed, suspended
from bastion.protection import Protection

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class BastionMiddleware:
    """Wraps a WSGI application: `app.wsgi_app = BastionMiddleware(app.wsgi_app)`."""

    def __init__(self, app: WSGIApp, protection: Protection | None = None) -> None:
        from bastion.runtime import installed_or_new

        self.app = app
        self.protection = protection or installed_or_new()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # Disabled, or already inside a protected request (a mounted sub-app).
        if not self.protection.settings.enabled or current() is not None:
            return self.app(environ, start_response)
        try:
            ctx = RequestContext(
                self.protection, environ.get("REQUEST_METHOD", "GET"), request_target(environ),
                request_headers(environ), environ.get("REMOTE_ADDR"),
                environ.get("wsgi.url_scheme", "http"),
            )
            body = read_body(environ, self.protection.settings.max_body_bytes)
        except Exception as exc:
            self.protection.report_error("wsgi request", exc)
            return self.app(environ, start_response)
        with ctx:
            blocked = ctx.start(body)
            if blocked is not None:
                ctx.finish()
                return respond(blocked, start_response)
            return self._call_app(ctx, environ, start_response)

    def _call_app(
        self, ctx: RequestContext, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        state = _Response(ctx, start_response)
        try:
            result = self.app(environ, state.start_response)
        except BlockedRequest as error:
            ctx.finish()
            return respond(ctx.block_with(error), start_response)
        except BaseException:
            ctx.finish()
            raise
        if state.blocked is not None:
            _close(result)
            ctx.finish()
            return [state.blocked.body]
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(result, file_wrapper):
            # Keep the server's sendfile path: report now, the status is already known.
            ctx.finish()
            return result
        return _ClosingBody(result, ctx)


class _Response:
    """The app's start_response, seen by Bastion before the server."""

    def __init__(self, ctx: RequestContext, start_response: StartResponse) -> None:
        self.ctx = ctx
        self.server_start_response = start_response
        self.blocked: BlockResponse | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        try:
            blocked = self.ctx.response(int(status[:3]), headers)
        except Exception as exc:
            self.ctx.protection.report_error("wsgi response", exc)
            blocked = None
        if blocked is None:
            return self.server_start_response(status, headers, exc_info)
        self.blocked = blocked
        self.server_start_response(status_line(blocked.status), blocked.headers, exc_info)
        return _discard


def _discard(data: bytes) -> None:
    """The legacy write() of a response that was replaced by the block response."""


class _ClosingBody:
    """The app's body, unchanged; closing it ends the request for Bastion too. Until it is
    closed or read to its end the request counts as being handled (bastion.activity), so
    that the hooks its chunks may reach are in place."""

    def __init__(self, body: Iterable[bytes], ctx: RequestContext) -> None:
        self._body = body
        self._ctx = ctx
        ctx.hold()

    def __iter__(self) -> Iterator[bytes]:
        """The body's chunks, each produced with the request current again: a streamed body
        that reads a file or queries a database does it for this request."""
        chunks = iter(self._body)
        while True:
            token = resumed(self._ctx)
            try:
                chunk = next(chunks)
            except StopIteration:
                self._ctx.release()  # nothing of the request runs with it current any more
                return
            except BaseException:
                # A server need not close a body that failed: report the request now (a
                # sink refused in the stream is an attack worth its event).
                self._ended()
                raise
            finally:
                suspended(token)
            yield chunk

    def close(self) -> None:
        try:
            _close(self._body)
        finally:
            self._ended()

    def _ended(self) -> None:
        self._ctx.finish()
        self._ctx.release()


def _close(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def respond(blocked: BlockResponse, start_response: StartResponse) -> list[bytes]:
    start_response(status_line(blocked.status), blocked.headers)
    return [blocked.body]


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Blocked"


def request_target(environ: Environ) -> str:
    """The request target as the client sent it, when the server kept it."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    query = environ.get("QUERY_STRING", "")
    if isinstance(raw, str) and raw:
        # Some servers (and Werkzeug's test client) give the path alone there: the query
        # string must be inspected all the same.
        return f"{raw}?{query}" if query and "?" not in raw else raw
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # PEP 3333 strings are latin-1 decoded bytes; quote them back as they came.
    target = quote(path.encode("latin-1", "replace"), safe="/;=,:@!$&'()*+~")
    return f"{target}?{query}" if query else target


# environ key -> header name; learnt as requests come, bounded (header names are the client's).
_HEADER_NAMES: Final[dict[str, str]] = {"CONTENT_TYPE": "content-type",
                                 "CONTENT_LENGTH": "content-length"}
_MAX_LEARNT_NAMES: Final = 2048


def request_headers(environ: Environ) -> dict[str, str]:
    """Lower-case header names -> values; the server already joined repeated headers."""
    headers = {}
    names = _HEADER_NAMES
    for key, value in environ.items():
        name = names.get(key)
        if name is None:
            if key[:5] != "HTTP_":
                continue
            name = key[5:].replace("_", "-").lower()
            if len(names) < _MAX_LEARNT_NAMES:
                names[key] = name
        if type(value) is str:
            if not value.isascii():
                # PEP 3333: header bytes arrive latin-1 decoded; browsers send UTF-8.
                with contextlib.suppress(UnicodeError):
                    value = value.encode("latin-1").decode("utf-8")
            headers[name] = value
    return headers


def read_body(environ: Environ, limit: int) -> bytes:
    """Up to `limit` bytes of the body; the app still reads the whole body, unchanged."""
    stream = environ.get("wsgi.input")
    if stream is None or limit <= 0:
        return b""
    length_text = environ.get("CONTENT_LENGTH") or ""
    try:
        length = int(length_text) if length_text else -1
    except ValueError:
        return b""
    if length == 0 or (length < 0 and not environ.get("wsgi.input_terminated")):
        return b""
    wanted = limit if length < 0 else min(length, limit)
    chunks, size = [], 0
    while size < wanted:
        chunk = stream.read(wanted - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    head = b"".join(chunks)
    complete = size < wanted or (length >= 0 and size >= length)
    environ["wsgi.input"] = io.BytesIO(head) if complete else _Replay(head, stream)
    return head


class _Replay(io.RawIOBase):
    """The bytes Bastion already read, then the rest of the original stream."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = self._head.read(len(view)) or self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            rest: bytes = self._rest.read()
            return self._head.read() + rest
        data = self._head.read(size)
        return data if data else bytes(self._rest.read(size))

    def readline(self, size: int | None = -1) -> bytes:
        line = self._head.readline(-1 if size is None else size)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        more = -1 if size is None or size < 0 else size - len(line)
        rest: bytes = self._rest.readline(more)
        return line + rest
