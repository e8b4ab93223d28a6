from __future__ import annotations

import json
from pathlib import Path

from bastion.blocking import Templates, render, wants_html


def test_accept_decides_between_html_and_json() -> None:
    assert wants_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    assert not wants_html("application/json")
    assert not wants_html("")
    assert not wants_html("*/*")  # curl: JSON
    assert not wants_html("text/html;q=0.5, application/json")
    assert wants_html("application/json;q=0.2, text/html")


def test_block_response_carries_the_id_and_status() -> None:
    blocked = render({"block_request": {"status_code": 429, "type": "json"}}, "text/html",
                     Templates(), "abc-123")
    assert blocked.status == 429
    assert dict(blocked.headers)["Content-Type"] == "application/json"
    assert json.loads(blocked.body)["security_response_id"] == "abc-123"
    assert dict(blocked.headers)["Content-Length"] == str(len(blocked.body))


def test_auto_follows_accept_and_bad_status_falls_back_to_403() -> None:
    blocked = render({"block_request": {"status_code": 200, "type": "auto"}},
                     "text/html", Templates(), "id-1")
    assert blocked.status == 403
    assert dict(blocked.headers)["Content-Type"].startswith("text/html")
    assert b"id-1" in blocked.body


def test_redirect_and_unsafe_redirects() -> None:
    redirect = render({"redirect_request": {"status_code": 302, "location": "/blocked"}},
                      "", Templates(), "x")
    assert redirect.status == 302 and ("Location", "/blocked") in redirect.headers
    assert redirect.body == b""
    # A location with a line break would split the response: a plain block instead.
    unsafe = render({"redirect_request": {"location": "/a\r\nSet-Cookie: x=1"}}, "",
                    Templates(), "x")
    assert unsafe.status == 403


def test_user_templates_and_unreadable_ones(tmp_path: Path) -> None:
    html = tmp_path / "blocked.html"
    html.write_text("<p>Nope ({security_response_id})</p>")
    templates = Templates.load(str(html), str(tmp_path / "missing.json"))
    assert render({"block_request": {"type": "html"}}, "", templates, "r1").body == \
        b"<p>Nope (r1)</p>"
    assert b"security_response_id" in render({"block_request": {"type": "json"}}, "",
                                             templates, "r1").body
