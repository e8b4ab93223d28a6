"""One HTTP/1.1 POST at a time over a kept-alive connection, in as few steps as can be.

The export thread posts while the application's requests run, and each time it blocks on the
socket and wakes, it must take the GIL back from them. `http.client` makes a POST of many
such steps (headers and body sent apart, the answer read line by line and parsed by the
`email` package); a busy worker's requests paid for each (Flask, two spans a request into a
local collector: 187 against 180 us a request, medians of seven runs side by side). Here a
POST is one `sendall` of the request and as few `recv` calls as the answer takes, parsed
with bytes operations.

Only what a collector's answer needs: a status line, headers, and a body by Content-Length,
chunks or the connection's end (read and dropped). A connection the collector closed while
idle is found at the next POST, which then goes once more on a new connection.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Final

MAX_HEAD_BYTES: Final = 64 * 1024
"""An answer's status line and headers at most; a longer head is an error."""

MAX_BODY_BYTES: Final = 1 << 20
"""An answer's body read at most; a longer one closes the connection once read."""

_RECV_BYTES: Final = 65536


class PostError(OSError):
    """The collector's answer could not be read as HTTP."""


class _Stale(Exception):
    """A kept-alive connection was closed by the peer before it answered anything."""


class Poster:
    """POSTs bodies to one URL's host, `path` and headers; not shared between threads."""

    def __init__(self, host: str, port: int | None, path: str, *, tls: bool,
                 timeout_s: float, headers: dict[str, str]) -> None:
        if not path.startswith("/") or any(not " " < c <= "~" for c in path):
            raise ValueError(f"invalid path for an HTTP request: {path!r}")
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\0") or not name or ":" in name:
                raise ValueError(f"invalid HTTP header {name!r}")
        self._host = host
        self._port = port if port is not None else (443 if tls else 80)
        self._tls = tls
        self._timeout_s = timeout_s
        authority = f"[{host}]" if ":" in host else host
        if port is not None:
            authority = f"{authority}:{port}"
        lines = [f"POST {path} HTTP/1.1", f"Host: {authority}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        self._head = "\r\n".join(lines).encode("latin-1") + b"\r\nContent-Length: "
        self._socket: socket.socket | None = None

    def post(self, body: bytes) -> int:
        """Send `body`, read the answer; its status. OSError (PostError, a timeout, a refused
        or reset connection) when there is none to read."""
        deadline = time.monotonic() + self._timeout_s
        if self._socket is not None:
            try:
                return self._exchange(self._socket, body, deadline, fresh=False)
            except _Stale:
                self.close()
        return self._exchange(self._connect(deadline), body, deadline, fresh=True)

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def _connect(self, deadline: float) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=_left(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls:
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        return sock

    def _exchange(self, sock: socket.socket, body: bytes, deadline: float,
                  fresh: bool) -> int:
        try:
            sock.settimeout(_left(deadline))
            sock.sendall(self._head + b"%d\r\n\r\n" % len(body) + body)
            answer = _Answer(sock, deadline)
            status, keep = answer.read()
        except (BrokenPipeError, ConnectionResetError, _Closed) as exc:
            if not fresh and not getattr(exc, "answered", False):
                raise _Stale from exc
            self.close()
            raise PostError("the collector closed the connection") from exc
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return status


class _Closed(Exception):
    def __init__(self, answered: bool) -> None:
        super().__init__("connection closed")
        self.answered = answered


class _Answer:
    """Reads one answer from `sock`: its head, then its body, which is dropped."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._buffer = b""
        self._received = 0

    def read(self) -> tuple[int, bool]:
        """(status, whether the connection may serve another request)."""
        while True:
            status, version, headers = self._head()
            if not 100 <= status < 200:
                break  # an interim answer (100 Continue, 103 Early Hints) is skipped
        connection = headers.get(b"connection", b"").lower()
        keep = b"close" not in connection and (version != b"HTTP/1.0" or b"keep-alive"
                                                in connection)
        if status in (204, 304):
            return status, keep
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            self._chunks()
        elif b"content-length" in headers:
            try:
                length = int(headers[b"content-length"])
            except ValueError as exc:
                raise PostError("invalid Content-Length in the answer") from exc
            if length < 0:
                raise PostError("invalid Content-Length in the answer")
            keep = self._skip(length) and keep
        else:  # delimited by the end of the connection
            self._until_closed()
            keep = False
        return status, keep

    def _head(self) -> tuple[int, bytes, dict[bytes, bytes]]:
        end = self._find(b"\r\n\r\n", "the answer's head")
        head, self._buffer = self._buffer[:end], self._buffer[end + 4:]
        lines = head.split(b"\r\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise PostError(f"not an HTTP answer: {lines[0][:80]!r}")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), parts[0], headers

    def _more(self) -> None:
        self._sock.settimeout(_left(self._deadline))
        data = self._sock.recv(_RECV_BYTES)
        if not data:
            raise _Closed(answered=self._received > 0)
        self._received += len(data)
        self._buffer += data

    def _find(self, separator: bytes, what: str) -> int:
        """Where `separator` first is in what was received, receiving more until it is."""
        end = self._buffer.find(separator)
        while end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise PostError(f"{what} is too long")
            self._more()
            end = self._buffer.find(separator)
        return end

    def _line(self) -> bytes:
        end = self._find(b"\r\n", "a line of the answer")
        line, self._buffer = self._buffer[:end], self._buffer[end + 2:]
        return line

    def _skip(self, length: int) -> bool:
        """Drop `length` bytes of body; False when there were too many to read."""
        if length > MAX_BODY_BYTES:
            return False
        while len(self._buffer) < length:
            self._more()
        self._buffer = self._buffer[length:]
        return True

    def _chunks(self) -> None:
        total = 0
        while True:
            try:
                size = int(self._line().split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise PostError("invalid chunk size in the answer") from exc
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise PostError("the answer's body is too long")
            self._skip(size + 2)  # the chunk and its CRLF
        while self._line():  # trailers, up to the empty line
            pass

    def _until_closed(self) -> None:
        try:
            while self._received < MAX_BODY_BYTES:
                self._more()
        except _Closed:
            return


def _left(deadline: float) -> float:
    """Seconds until `deadline`; a timeout when none are left."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the collector did not answer in time")
    return left
