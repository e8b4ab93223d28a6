"""The WSGI middleware in process, with a bare WSGI app: body replay, response inspection,
blocking from the app, and fail-open when Bastion's own parts break."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

import bastion
from bastion.config import Settings
from bastion.contrib.wsgi import BastionMiddleware, request_target
from bastion.protection import Protection
from bastion.waf import load_ruleset
from tests.contrib.failures import PARTS, break_part

RULES = {
    "version": "2.2",
    "rules": [
        {"id": "t-sqli", "name": "sqli", "tags": {"type": "sql_injection", "category": "attack"},
         "conditions": [{"operator": "is_sqli", "parameters": {"inputs": [
             {"address": "server.request.query"}, {"address": "server.request.body"}]}}],
         "on_match": ["block"]},
        {"id": "t-leak", "name": "leaky header", "tags": {"type": "leak", "category": "attack"},
         "conditions": [{"operator": "match_regex", "parameters": {"inputs": [
             {"address": "server.response.headers.no_cookies", "key_path": ["x-debug"]}],
             "regex": "secret"}}],
         "on_match": ["block"]},
    ],
}


def protection(tmp_path: Path, mode: str = "block") -> Protection:
    settings = Settings(mode=mode, event_log=str(tmp_path / "events.jsonl"), max_body_bytes=64)
    return Protection(settings, load_ruleset(RULES))


def events(tmp_path: Path, made: Protection) -> list[dict[str, Any]]:
    made.event_log.flush()
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def call(app: Any, path: str = "/", body: bytes = b"", headers: dict[str, str] | None = None,
         chunked: bool = False) -> tuple[str, list[tuple[str, str]], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path.partition("?")[0],
                               "QUERY_STRING": path.partition("?")[2],
                               "REQUEST_METHOD": "POST" if body else "GET",
                               "wsgi.input": io.BytesIO(body)}
    if body and not chunked:
        environ["CONTENT_LENGTH"] = str(len(body))
    if chunked:
        environ["wsgi.input_terminated"] = True
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, response_headers
        return lambda data: None

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close:
            close()
    return seen["status"], seen["headers"], data


def echo_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("X-Debug", environ.get("HTTP_X_WANT", "none"))])
    return [body]


def test_the_app_reads_the_whole_body_unchanged(tmp_path: Path) -> None:
    app = BastionMiddleware(echo_app, protection(tmp_path))
    big = bytes(range(256)) * 40  # beyond max_body_bytes: Bastion reads 64, the app all
    assert call(app, "/", big)[2] == big
    assert call(app, "/", b"name=plain")[2] == b"name=plain"
    assert call(app, "/", big, chunked=True)[2] == big


def test_attack_in_the_body_is_blocked_before_the_app(tmp_path: Path) -> None:
    made = protection(tmp_path)
    reached = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        reached.append(True)
        return echo_app(environ, start_response)

    status, _headers, body = call(BastionMiddleware(app, made), "/", b"q=1' OR 1=1--",
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert status.startswith("403") and not reached
    assert json.loads(body)["security_response_id"]
    [event] = events(tmp_path, made)
    assert event["blocked"] is True and event["triggers"][0]["rule"]["id"] == "t-sqli"


def test_monitor_mode_lets_the_attack_through_and_reports_it(tmp_path: Path) -> None:
    made = protection(tmp_path, "monitor")
    status, _, body = call(BastionMiddleware(echo_app, made), "/?q=1'%20OR%201=1--")
    assert status == "200 OK" and body == b""
    [event] = events(tmp_path, made)
    assert event["blocked"] is False and event["http"]["status"] == 200


def test_response_headers_can_block(tmp_path: Path) -> None:
    app = BastionMiddleware(echo_app, protection(tmp_path))
    assert call(app, "/")[0] == "200 OK"
    status, headers, body = call(app, "/", headers={"X-Want": "secret"})
    assert status.startswith("403") and b"security_response_id" in body
    assert ("X-Debug", "secret") not in headers


def test_the_app_can_block(tmp_path: Path) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        bastion.block_request()
        return []

    status, _, body = call(BastionMiddleware(app, protection(tmp_path)), "/",
                           headers={"Accept": "text/html"})
    assert status.startswith("403") and b"Request blocked" in body


def test_file_wrapper_is_passed_through(tmp_path: Path) -> None:
    class FileWrapper:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self) -> Any:
            return iter([self.data])

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](b"file bytes")

    middleware = BastionMiddleware(app, protection(tmp_path))
    environ: dict[str, Any] = {"wsgi.file_wrapper": FileWrapper}
    setup_testing_defaults(environ)
    result = middleware(environ, lambda *a: None)
    assert isinstance(result, FileWrapper)


@pytest.mark.parametrize("broken", PARTS)
def test_a_failure_inside_bastion_leaves_the_response_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    broken: str,
) -> None:
    made = protection(tmp_path, "monitor")
    message = break_part(monkeypatch, made, broken)
    app = BastionMiddleware(echo_app, made)
    plain = call(echo_app, "/?q=1'%20OR%201=1--", b"q=1' OR 1=1--",
                 {"Content-Type": "application/x-www-form-urlencoded"})
    with caplog.at_level(logging.ERROR, logger="bastion"):
        for _ in range(3):
            assert call(app, "/?q=1'%20OR%201=1--", b"q=1' OR 1=1--",
                        {"Content-Type": "application/x-www-form-urlencoded"}) == plain
    assert len([r for r in caplog.records if message in r.getMessage()]) == 1


def test_secrets_never_reach_the_event_log(tmp_path: Path) -> None:
    made = protection(tmp_path, "monitor")
    app = BastionMiddleware(echo_app, made)
    secrets = ["hunter2-Secret", "4111 1111 1111 1111", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
               "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"]
    body = (b"q=1' OR 1=1--&password=hunter2-Secret&card=4111 1111 1111 1111&note=my key is "
            b"sk_live_4eC39HqLyjWDarjtT1zdp7dc")
    call(app, "/?token=" + secrets[3] + "&id=1'%20OR%201=1--", body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "Bearer " + secrets[3], "Referer": "http://x/?password=hunter2-Secret"})
    made.event_log.flush()
    written = (tmp_path / "events.jsonl").read_text()
    assert "t-sqli" in written and "OR 1=1" in written  # the attack itself stays readable
    for secret in secrets:
        assert secret not in written
        assert secret.replace(" ", "") not in written


def test_a_request_that_cannot_be_parsed_at_all_still_reaches_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*args: object, **kwargs: object) -> Any:
        raise RuntimeError("forced failure in the query parser")

    monkeypatch.setattr("bastion.addresses.form_fields", explode)
    app = BastionMiddleware(echo_app, protection(tmp_path))
    with caplog.at_level(logging.ERROR, logger="bastion"):
        assert call(app, "/?q=1", b"body")[:2] == call(echo_app, "/?q=1", b"body")[:2]
    assert len([r for r in caplog.records if "forced failure" in r.getMessage()]) == 1


@pytest.mark.parametrize(("raw_uri", "expected"), [
    ("/search", "/search?q=1%27%20OR%20%271%27%3D%271"),  # a server that keeps the path only
    ("/search?q=1%27%20OR%20%271%27%3D%271", "/search?q=1%27%20OR%20%271%27%3D%271"),
])
def test_the_query_string_is_inspected_whatever_the_raw_uri_holds(
    raw_uri: str, expected: str
) -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/search", "RAW_URI": raw_uri,
               "QUERY_STRING": "q=1%27%20OR%20%271%27%3D%271"}
    assert request_target(environ) == expected
