"""Request parts become the ddwaf addresses rules read, the same way from every entry point."""

from __future__ import annotations

from bastion.addresses import MAX_DIGESTED_BODY, parse_cookies, request_addresses
from bastion.waf.verdicts import DIGEST_ADDRESSES

BODY_DIGEST = DIGEST_ADDRESSES["server.request.body"]


def test_request_addresses() -> None:
    addresses = request_addresses(
        "post", "/p/1?q=a%20b&q=c&empty=",
        [("Host", "h"), ("Cookie", "sid=1; theme=dark"), ("X-A", "1"), ("x-a", "2"),
         ("Content-Type", "application/json")],
        b'{"name": "x"}', "203.0.113.7",
    )
    assert addresses["server.request.method"] == "POST"
    assert addresses["server.request.uri.raw"] == "/p/1?q=a%20b&q=c&empty="
    assert addresses["server.request.query"] == {"q": ["a b", "c"], "empty": [""]}
    assert addresses["server.request.headers.no_cookies"] == {
        "host": "h", "x-a": "1,2", "content-type": "application/json"}
    assert addresses["server.request.cookies"] == {"sid": ["1"], "theme": ["dark"]}
    assert addresses["server.request.body"] == {"name": "x"}
    assert addresses["http.client_ip"] == "203.0.113.7"


def test_malformed_cookies_are_kept_not_dropped() -> None:
    cookies = parse_cookies('a=1; b="%27 OR 1=1"; broken; =x; c=a=b')
    assert cookies == {"a": ["1"], "b": ["' OR 1=1"], "broken": [""], "": ["x"], "c": ["a=b"]}


def test_uploaded_file_names() -> None:
    body = (b"--b\r\nContent-Disposition: form-data; name=\"up\"; filename=\"../../x.jsp\"\r\n\r\n"
            b"data\r\n--b--\r\n")
    content_type = ("Content-Type", "multipart/form-data; boundary=b")
    addresses = request_addresses("POST", "/", [content_type], body)
    assert addresses["server.request.body.filenames"] == ["../../x.jsp"]
    assert BODY_DIGEST not in addresses  # a new boundary on every upload: never the same


def test_a_parsed_body_comes_with_the_digest_of_its_bytes_and_type() -> None:
    """The engine knows a body sent again byte for byte by this digest (waf/verdicts.py)."""
    def digest(body: bytes, content_type: str) -> object:
        return request_addresses("POST", "/", [("Content-Type", content_type)],
                                 body).get(BODY_DIGEST)

    json_type, form_type = "application/json", "application/x-www-form-urlencoded"
    first = digest(b'{"a": "b"}', json_type)
    assert isinstance(first, bytes) and len(first) == 16
    assert digest(b'{"a": "b"}', json_type) == first
    assert digest(b'{"a": "c"}', json_type) != first
    assert digest(b'{"a": "b"}', json_type + "; charset=utf-8") != first
    assert isinstance(digest(b"a=b", form_type), bytes)
    # not for a body read as one text, nor for one too large to be worth hashing
    assert digest(b"just text", "text/plain") is None
    large = b'{"a": "' + b"x" * MAX_DIGESTED_BODY + b'"}'
    assert digest(large, json_type) is None
