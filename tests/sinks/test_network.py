"""Network sinks: urllib, http.client, urllib3, requests and httpx against a loopback canary.

The canary is an HTTP server on 127.0.0.1 that counts the connections it accepts and records
the paths it serves. It serves one connection at a time, in order, so after a refused fetch
one benign fetch proves that nothing connected before it.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

import bastion
from bastion.blocking import BlockedRequest
from bastion.protection import Protection
from tests.sinks.support import read_events, request, rule_ids, spy

BASTION_DIR = str(Path(bastion.__file__).parent)


class Canary(HTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.paths: list[str] = []

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        self.connections += 1
        return accepted

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        server: Any = self.server
        server.paths.append(self.path)
        body = b"canary"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def fetch_urllib(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:
        body: bytes = answer.read()
        return body


def fetch_urllib_request_object(url: str) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url), timeout=5) as answer:
        body: bytes = answer.read()
        return body


def fetch_http_client(url: str) -> bytes:
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/" + path)
        return connection.getresponse().read()
    finally:
        connection.close()


def fetch_requests(url: str) -> bytes:
    requests = pytest.importorskip("requests")
    content: bytes = requests.get(url, timeout=5).content
    return content


def fetch_urllib3(url: str) -> bytes:
    urllib3 = pytest.importorskip("urllib3")
    data: bytes = urllib3.PoolManager().request("GET", url, timeout=5).data
    return data


def fetch_httpx(url: str) -> bytes:
    httpx = pytest.importorskip("httpx")
    with httpx.Client(timeout=5) as client:
        content: bytes = client.get(url).content
        return content


def fetch_httpx_async(url: str) -> bytes:
    httpx = pytest.importorskip("httpx")

    async def get() -> bytes:
        async with httpx.AsyncClient(timeout=5) as client:
            content: bytes = (await client.get(url)).content
            return content

    return asyncio.run(get())


FETCHERS: list[Callable[[str], bytes]] = [
    fetch_urllib, fetch_urllib_request_object, fetch_http_client, fetch_requests,
    fetch_urllib3, fetch_httpx, fetch_httpx_async,
]


@pytest.mark.parametrize("fetch", FETCHERS, ids=lambda f: f.__name__)
def test_a_url_the_user_chose_is_refused_before_connecting(
    protection: Protection, canary: Canary, fetch: Callable[[str], bytes]
) -> None:
    target = f"{canary.base}/internal/admin"
    with request(protection, {"url": target}) as ctx, pytest.raises(BlockedRequest):
        fetch(target)
    assert ctx.blocked is not None
    assert fetch(f"{canary.base}/after") == b"canary"  # outside the request: not checked
    assert canary.paths == ["/after"] and canary.connections == 1


@pytest.mark.parametrize("fetch", FETCHERS, ids=lambda f: f.__name__)
def test_user_input_in_the_query_is_fetched(
    protection: Protection, canary: Canary, fetch: Callable[[str], bytes]
) -> None:
    with request(protection, {"q": "apples"}) as ctx:
        seen = spy(ctx)
        assert fetch(f"{canary.base}/search?q=apples") == b"canary"
    assert canary.paths == ["/search?q=apples"]
    # One fetch, one evaluation, of the whole URL, whichever layers it went through.
    assert seen == [{"server.io.net.url": f"{canary.base}/search?q=apples"}]
    assert not ctx.events


def test_https_through_urllib3_is_refused_before_the_tcp_connection(
    protection: Protection
) -> None:
    """An HTTPS pool connects (TCP, then TLS) before it sends the request line."""
    urllib3 = pytest.importorskip("urllib3")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    target = f"https://127.0.0.1:{listener.getsockname()[1]}/metadata"
    try:
        with request(protection, {"url": target}), pytest.raises(BlockedRequest):
            urllib3.PoolManager(retries=False).request("GET", target, timeout=2)
        with pytest.raises(BlockingIOError):  # nothing waits to be accepted
            listener.accept()
    finally:
        listener.close()


def test_monitor_mode_fetches_and_reports_the_stack(
    monitor: Protection, canary: Canary, tmp_path: Path
) -> None:
    target = f"{canary.base}/internal/admin"
    with request(monitor, {"url": target}):
        assert fetch_urllib(target) == b"canary"
    [event] = read_events(monitor, tmp_path)
    assert rule_ids(event) == ["bst-rasp-002"]
    frames = event["triggers"][0]["stack"]["frames"]
    # Most recent call last, up to the library call the application made; no Bastion frame.
    assert [frame["function"] for frame in frames[-3:]] == [
        "test_monitor_mode_fetches_and_reports_the_stack", "fetch_urllib", "urlopen"]
    assert frames[-1]["file"] == urllib.request.__file__
    assert not any(frame["file"].startswith(BASTION_DIR) for frame in frames)
