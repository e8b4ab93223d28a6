"""What a server span says about its request: HTTP semantic conventions, and for attacks the
security attributes and one span event per attack.

Everything taken from the request passes the obfuscator first (query, path, user agent, the
matched parameters), as for the event log: a trace backend is one more place secrets must not
reach. Names follow the stable OpenTelemetry HTTP conventions; Bastion's own are `bastion.*`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from bastion.context import RequestContext
    from bastion.report.obfuscation import Obfuscator

Attributes = dict[str, AttributeValue]

# The methods the conventions name; any other is `_OTHER` (an attacker picks the method, and
# the span name must not take every value they send).
KNOWN_METHODS: Final = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"))

ATTACK_EVENT: Final = "bastion.attack"
MAX_ATTACK_EVENTS: Final = 32
"""Span events for one request at most (its rules that fired, in order)."""

# One encoder for every event: json.dumps with options builds a new one on each call.
_MATCHES_JSON: Final = json.JSONEncoder(separators=(",", ":"), default=str)

_MAX_ORIGINAL_METHOD: Final = 64
_MAX_HOST: Final = 255


def span_name(method: str, route: str | None) -> str:
    """`{method} {route}` as the conventions say; the method alone without a route."""
    name = method if method in KNOWN_METHODS else "HTTP"
    return f"{name} {route}" if route else name


def request_attributes(request: RequestContext) -> Attributes:
    """Known when the request starts (so that samplers see them too)."""
    obfuscator = request.protection.obfuscator
    method = request.method
    attributes: Attributes = {"url.scheme": request.scheme}
    if method in KNOWN_METHODS:
        attributes["http.request.method"] = method
    else:
        attributes["http.request.method"] = "_OTHER"
        attributes["http.request.method_original"] = method[:_MAX_ORIGINAL_METHOD]
    path = request.target.partition("?")[0]
    attributes["url.path"] = obfuscator.redact_text(path) or "/"
    query = redacted_query(request)
    if query:
        attributes["url.query"] = query
    host, port = _host_and_port(request.headers.get("host", ""))
    if host:
        attributes["server.address"] = host[:_MAX_HOST]
        if port is not None:
            attributes["server.port"] = port
    if request.client_ip:
        attributes["client.address"] = request.client_ip
    user_agent = request.headers.get("user-agent")
    if user_agent:
        attributes["user_agent.original"] = obfuscator.redact_text(user_agent)
    return attributes


def redacted_query(request: RequestContext) -> str:
    """The query string, sensitive keys' values and secrets redacted ('' when none)."""
    query = request.target.partition("?")[2]
    if not query:
        return ""
    return request.protection.obfuscator.redact_query(query)


def response_attributes(request: RequestContext) -> Attributes:
    """Known when the request ends: route and status (the block response's when blocked)."""
    attributes: Attributes = {}
    if request.route:
        attributes["http.route"] = request.route
    status = request.blocked.status if request.blocked is not None else request.status
    if status is not None:
        attributes["http.response.status_code"] = status
        if status >= 500:
            attributes["error.type"] = str(status)
    return attributes


def is_attack(request: RequestContext) -> bool:
    return bool(request.events) or request.blocked is not None


def security_attributes(request: RequestContext) -> Attributes:
    """`bastion.event`, `bastion.blocked`, the event's id, and the rules that fired."""
    ids: dict[str, None] = {}
    types: dict[str, None] = {}
    for trigger in request.events:
        rule = trigger.get("rule") or {}
        ids[str(rule.get("id", ""))] = None
        kind = (rule.get("tags") or {}).get("type")
        if kind:
            types[str(kind)] = None
    return {
        "bastion.event": True,
        "bastion.blocked": request.blocked is not None,
        "bastion.event.id": request.id,
        "bastion.mode": request.settings.mode,
        "bastion.rule.ids": tuple(ids),
        "bastion.rule.types": tuple(types),
    }


def attack_events(obfuscator: Obfuscator, triggers: list[dict[str, Any]]) -> list[Attributes]:
    """The attributes of one `bastion.attack` span event per rule that fired, with its
    matched parameters obfuscated and as JSON (`bastion.rule_matches`)."""
    # Only what the span event shows is copied and goes through the obfuscator: this runs
    # on the request's thread, where a whole event's copy and walk cost tens of us.
    events: list[Attributes] = []
    for trigger in triggers:
        shown = []
        for match in trigger.get("rule_matches") or ():
            if not isinstance(match, dict):
                continue
            parameters = match.get("parameters", [])
            if isinstance(parameters, list | tuple):
                parameters = [obfuscator.redacted_parameter(parameter)
                              if isinstance(parameter, dict) else parameter
                              for parameter in parameters]
            shown.append({"operator": match.get("operator"), "parameters": parameters})
        events.append(_attack_event(trigger, shown))
    return events


def _attack_event(trigger: dict[str, Any], matches: list[dict[str, Any]]) -> Attributes:
    rule = trigger.get("rule") or {}
    tags = rule.get("tags") or {}
    return {
        "bastion.rule.id": str(rule.get("id", "")),
        "bastion.rule.name": str(rule.get("name", "")),
        "bastion.rule.type": str(tags.get("type", "")),
        "bastion.rule.category": str(tags.get("category", "")),
        "bastion.rule_matches": _MATCHES_JSON.encode(matches),
    }


def _host_and_port(host: str) -> tuple[str, int | None]:
    """`example.com:8080` -> (example.com, 8080); `[::1]:80` -> (::1, 80)."""
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port_text = host.rpartition(":") if ":" in host else (host, "", "")
    port = int(port_text) if port_text.isdigit() and len(port_text) <= 5 else None
    return address, port
