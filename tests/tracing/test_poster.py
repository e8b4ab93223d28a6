"""The export's HTTP POST against real TCP peers on loopback that answer as scripted: every
way a collector may frame its answer, close its connections, stall or speak TLS."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bastion.tracing.otlpwire import OTLPHTTPExporter
from bastion.tracing.poster import Poster, PostError

Answer = Callable[[int], bytes]  # the answer to the n-th request of a connection (from 0)


class ScriptedPeer:
    """A TCP server that reads each request whole (head and Content-Length body) and sends
    the scripted answer; `close_after` requests, it closes the connection."""

    def __init__(self, answer: Answer, close_after: int | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.close_after = close_after
        self.tls = tls
        self.connections = 0
        self.bodies: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        with conn:
            try:
                self._serve_requests(conn)
            except OSError:  # the poster gave up and closed its side: nothing to answer
                return

    def _serve_requests(self, conn: socket.socket) -> None:
        buffer = b""
        served = 0
        while self.close_after is None or served < self.close_after:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            while len(buffer) < length:
                buffer += conn.recv(65536)
            self.bodies.append(buffer[:length])
            buffer = buffer[length:]
            conn.sendall(self.answer(served))
            served += 1

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def peers() -> Iterator[list[ScriptedPeer]]:
    made: list[ScriptedPeer] = []
    yield made
    for peer in made:
        peer.close()


def peer_of(peers: list[ScriptedPeer], answer: Answer, **kwargs: object) -> ScriptedPeer:
    peer = ScriptedPeer(answer, **kwargs)  # type: ignore[arg-type]
    peers.append(peer)
    return peer


def poster_for(peer: ScriptedPeer, timeout_s: float = 2.0, tls: bool = False) -> Poster:
    return Poster("127.0.0.1" if not tls else "localhost", peer.port, "/v1/traces", tls=tls,
                  timeout_s=timeout_s, headers={"Content-Type": "application/x-protobuf"})


def fixed(answer: bytes) -> Answer:
    return lambda _: answer


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"


def test_posts_go_over_one_kept_alive_connection(peers: list[ScriptedPeer]) -> None:
    peer = peer_of(peers, fixed(OK))
    poster = poster_for(peer)
    assert [poster.post(b"first"), poster.post(b"second" * 50_000)] == [200, 200]
    assert peer.bodies == [b"first", b"second" * 50_000]
    assert peer.connections == 1


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\n"
    b"Trailer: t\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 204 No Content\r\n\r\n",
], ids=["content-length", "chunked", "interim answer first", "no content"])
def test_every_framing_of_the_answer_is_read_to_its_end(
        peers: list[ScriptedPeer], answer: bytes) -> None:
    peer = peer_of(peers, fixed(answer))
    poster = poster_for(peer)
    status = poster.post(b"a")
    assert 200 <= status < 300
    assert poster.post(b"b") == status  # nothing of the first answer was left unread
    assert peer.connections == 1


def test_an_answer_delimited_by_the_connections_end(peers: list[ScriptedPeer]) -> None:
    peer = peer_of(peers, fixed(b"HTTP/1.0 200 OK\r\n\r\nno length"), close_after=1)
    poster = poster_for(peer)
    assert [poster.post(b"a"), poster.post(b"b")] == [200, 200]
    assert peer.connections == 2


def test_a_connection_the_collector_closed_while_idle_is_replaced_and_the_batch_goes(
        peers: list[ScriptedPeer]) -> None:
    """Collectors close idle keep-alive connections: that is no reason to drop a batch."""
    peer = peer_of(peers, fixed(OK), close_after=1)  # closes without saying so
    poster = poster_for(peer)
    assert poster.post(b"a") == 200
    time.sleep(0.05)  # the peer has closed its side
    assert poster.post(b"b") == 200
    assert peer.bodies == [b"a", b"b"] and peer.connections == 2


def test_the_collectors_status_is_returned(peers: list[ScriptedPeer]) -> None:
    peer = peer_of(peers, fixed(b"HTTP/1.1 503 Unavailable\r\nContent-Length: 4\r\n\r\nbusy"))
    assert poster_for(peer).post(b"a") == 503


def test_a_collector_that_does_not_answer_is_an_error_within_the_timeout(
        peers: list[ScriptedPeer]) -> None:
    peer = peer_of(peers, lambda _: time.sleep(3) or OK)  # type: ignore[func-returns-value]
    started = time.monotonic()
    with pytest.raises(OSError):
        poster_for(peer, timeout_s=0.3).post(b"a")
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("answer", [
    b"SSH-2.0-OpenSSH_9.2\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_an_answer_that_is_not_http_is_an_error(peers: list[ScriptedPeer],
                                                 answer: bytes) -> None:
    peer = peer_of(peers, fixed(answer))
    with pytest.raises(PostError):
        poster_for(peer).post(b"a")


def test_a_refused_connection_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        Poster("127.0.0.1", port, "/", tls=False, timeout_s=1.0, headers={}).post(b"a")


@pytest.mark.parametrize(("path", "headers"), [
    ("/v1/traces x", {}), ("/v1/traces\r\nX: y", {}), ("/caf\u00e9", {}),
    ("/", {"X-Token": "a\r\nInjected: yes"}), ("/", {"Bad Name:": "v"}),
])
def test_what_would_break_the_request_is_refused_at_once(
        path: str, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Poster("127.0.0.1", 4318, path, tls=False, timeout_s=1.0, headers=headers)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is absent")
def test_https_verifies_the_collectors_certificate(
        peers: list[ScriptedPeer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    peer = peer_of(peers, fixed(OK), tls=server_side)
    with pytest.raises(ssl.SSLCertVerificationError):  # not trusted: nothing is sent
        poster_for(peer, tls=True).post(b"secret")
    assert peer.bodies == []
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted now
    assert poster_for(peer, tls=True).post(b"spans") == 200
    assert peer.bodies == [b"spans"]


def test_the_exporter_counts_what_the_collector_refused(peers: list[ScriptedPeer]) -> None:
    peer = peer_of(peers, lambda n: OK if n == 0 else b"HTTP/1.1 400 Bad\r\n\r\n")
    exporter = OTLPHTTPExporter(f"http://127.0.0.1:{peer.port}/v1/traces", timeout_s=2.0,
                                headers={"Authorization": "Bearer t"})
    assert exporter.send(b"a") and not exporter.send(b"b")
    assert exporter.dropped_batches == 1
