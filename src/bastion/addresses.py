"""From the parts of an HTTP request to the ddwaf addresses the rules read.

One function used by every entry point (the CLI, the benchmarks, and the middlewares), so that
the engine sees the same shape of data wherever a request comes from.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b
from typing import Final
from urllib.parse import unquote

from bastion.bodies import form_fields, parse_body
from bastion.waf.verdicts import DIGEST_ADDRESSES

_BODY_DIGEST: Final = DIGEST_ADDRESSES["server.request.body"]
# Bodies up to this size carry the digest of their bytes (waf/verdicts.py): hashing costs about
# a microsecond a kilobyte, and large bodies seldom come twice alike.
MAX_DIGESTED_BODY: Final = 64 * 1024

Headers = Iterable[tuple[str, str]]


def parse_cookies(header: str) -> dict[str, list[str]]:
    """A Cookie header as {name: [values]}. Lenient on purpose: a strict parser would drop
    malformed cookies, and a malformed cookie is exactly where an attacker would hide."""
    cookies: dict[str, list[str]] = {}
    for item in header.split(";"):
        name, sep, value = item.strip().partition("=")
        if not name and not sep:
            continue
        value = value.strip().strip('"')
        cookies.setdefault(name.strip(), []).append(unquote(value) if "%" in value else value)
    return cookies


def header_map(headers: Headers) -> dict[str, str]:
    """Lower-case names; repeated headers joined with a comma, as HTTP allows."""
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.strip().lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def request_addresses(
    method: str,
    target: str,
    headers: Headers = (),
    body: bytes = b"",
    client_ip: str | None = None,
) -> dict[str, object]:
    """Addresses for a request line `method target`, its headers and its raw body."""
    return addresses_of(method, target, header_map(headers), body, client_ip)


def addresses_of(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
    client_ip: str | None = None,
    digest: bytes | None = None,
) -> dict[str, object]:
    """Like `request_addresses`, for headers already merged by `header_map`; `digest`, when
    the caller has it already, is `body_digest` of the body and its content type."""
    all_headers = dict(headers)
    cookie_header = all_headers.pop("cookie", "")
    _, _, query = target.partition("?")
    query = query.partition("#")[0]
    addresses: dict[str, object] = {
        "server.request.method": method.upper(),
        "server.request.uri.raw": target,
        "server.request.headers.no_cookies": all_headers,
        "server.request.query": form_fields(query),
    }
    if cookie_header:
        addresses["server.request.cookies"] = parse_cookies(cookie_header)
    if body:
        content_type = all_headers.get("content-type", "")
        parsed = parse_body(body, content_type)
        addresses["server.request.body"] = parsed.value
        if parsed.filenames:
            addresses["server.request.body.filenames"] = parsed.filenames
        elif type(parsed.value) in (dict, list) and len(body) <= MAX_DIGESTED_BODY:
            addresses[_BODY_DIGEST] = digest or body_digest(body, content_type)
    if client_ip:
        addresses["http.client_ip"] = client_ip
    return addresses


def body_digest(body: bytes, content_type: str) -> bytes:
    """What identifies a parsed body: its bytes and the content type they were parsed as
    (its length first, so that no two pairs hash the same input)."""
    digest = blake2b(f"{len(content_type)}:{content_type}".encode("utf-8", "surrogatepass"),
                     digest_size=16)
    digest.update(body)
    return digest.digest()
