"""Tests of bastion.report: obfuscation and the event log."""

from __future__ import annotations

from typing import Any


def make_event(
    parameters: list[dict[str, Any]],
    *,
    url: str = "http://shop.example/search",
    headers: dict[str, Any] | None = None,
    user_agent: str | None = "Mozilla/5.0 (X11; Linux x86_64)",
) -> dict[str, Any]:
    """A security event of the shape the request path produces, around the given parameters."""
    return {
        "timestamp": "2026-11-24T20:01:02.123456Z",
        "type": "bastion.security.event",
        "mode": "block",
        "blocked": True,
        "http": {
            "method": "POST",
            "url": url,
            "route": "/search",
            "status": 403,
            "client_ip": "203.0.113.7",
            "user_agent": user_agent,
            "headers": headers or {},
        },
        "user": {"id": "u-42"},
        "triggers": [
            {
                "rule": {
                    "id": "t-1",
                    "name": "test rule",
                    "tags": {"type": "sql_injection", "category": "attack_attempt"},
                    "on_match": ["block"],
                },
                "rule_matches": [
                    {"operator": "match_regex", "operator_value": "x", "parameters": parameters}
                ],
            }
        ],
    }


def parameter(key_path: list[Any], value: Any, *highlights: str) -> dict[str, Any]:
    """One parameter of a rule match, as the engine reports it."""
    return {
        "address": "server.request.body",
        "key_path": key_path,
        "value": value,
        "highlight": list(highlights),
    }
