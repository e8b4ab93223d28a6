"""Request parts become the ddwaf addresses rules read, the same way from every entry point."""

from __future__ import annotations

from bastion.addresses import parse_cookies, request_addresses


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
