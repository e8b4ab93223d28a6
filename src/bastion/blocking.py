"""What a blocked request gets back: a 403 page (JSON or HTML, by `Accept`) or a redirect.

The engine says *that* a request is blocked and with which action; this module says *how* the
response looks. The bodies are templates the user can replace (`BASTION_BLOCK_TEMPLATE_HTML`,
`BASTION_BLOCK_TEMPLATE_JSON`); `{security_response_id}` in a template becomes the event's id,
so that a user who was blocked by mistake can quote it to support.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("bastion")

DEFAULT_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Request blocked</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}
code{background:#eee;padding:.1em .3em}</style></head>
<body><h1>Request blocked</h1>
<p>This request was blocked by the application's security policy.</p>
<p>If you think this is a mistake, contact the site's administrators and quote this id:
<code>{security_response_id}</code></p></body>
</html>
"""

DEFAULT_JSON = (
    '{"errors":[{"title":"You\'ve been blocked","detail":"This request was blocked by the '
    'application\'s security policy."}],"security_response_id":"{security_response_id}"}'
)

_REDIRECT_CODES = (301, 302, 303, 307, 308)


class BlockedRequest(Exception):
    """Raised inside the application to stop the current request with the block response.

    The adapters catch it and answer with the block response; raised by `block_request()` and,
    in block mode, by exploit-prevention hooks before a dangerous call runs.
    """

    def __init__(self, action: Mapping[str, Any] | None = None) -> None:
        super().__init__("request blocked by Bastion")
        self.action: dict[str, Any] = dict(action or {"block_request": {}})


@dataclass(frozen=True)
class BlockResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Templates:
    html: str = DEFAULT_HTML
    json: str = DEFAULT_JSON

    @classmethod
    def load(cls, html_path: str | None, json_path: str | None) -> Templates:
        """The user's templates; an unreadable one is reported and the default kept."""
        return cls(_read(html_path, DEFAULT_HTML), _read(json_path, DEFAULT_JSON))


def _read(path: str | None, default: str) -> str:
    if not path:
        return default
    try:
        return Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        logger.error("bastion: cannot read block template %s (%s); using the default", path, exc)
        return default


def wants_html(accept: str) -> bool:
    """Whether `Accept` prefers text/html over application/json (no header: JSON)."""
    best_html = best_json = 0.0
    for item in accept.split(",")[:32]:
        media, _, params = item.partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, quality)
        elif media in ("application/json", "application/*+json") or media.endswith("+json"):
            best_json = max(best_json, quality)
    # Browsers name text/html; API clients and curl (`*/*`) get JSON.
    return best_html > best_json


def render(
    actions: Mapping[str, Mapping[str, Any]], accept: str, templates: Templates,
    security_response_id: str,
) -> BlockResponse:
    """The response for the engine's blocking action (`redirect_request` or `block_request`)."""
    redirect = actions.get("redirect_request")
    if redirect is not None:
        location = str(redirect.get("location") or "")
        status = _int(redirect.get("status_code"), 303)
        if location and not any(c in location for c in "\r\n"):
            return BlockResponse(
                status if status in _REDIRECT_CODES else 303,
                [("Location", location), ("Content-Length", "0")], b"",
            )
    block = actions.get("block_request") or {}
    status = _int(block.get("status_code"), 403)
    if not 400 <= status <= 599:
        status = 403
    kind = str(block.get("type") or "auto")
    if kind == "auto":
        kind = "html" if wants_html(accept) else "json"
    if kind == "html":
        body, content_type = templates.html, "text/html; charset=utf-8"
    else:
        body, content_type = templates.json, "application/json"
    data = body.replace("{security_response_id}", security_response_id).encode("utf-8")
    return BlockResponse(status, [("Content-Type", content_type),
                                  ("Content-Length", str(len(data)))], data)


def _int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return default
