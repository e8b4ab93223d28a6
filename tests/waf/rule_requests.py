"""Running one HTTP request through a rule set, for the rule tests."""

from __future__ import annotations

from collections.abc import Iterable

from bastion.addresses import request_addresses
from bastion.waf import Ruleset


def fired(
    ruleset: Ruleset, method: str = "GET", target: str = "/",
    headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
) -> set[str]:
    """The ids of the rules that fire on the request."""
    addresses = request_addresses(method, target, list(headers), body, "203.0.113.7")
    result = ruleset.context().run(addresses, timeout_us=1_000_000)
    return {event["rule"]["id"] for event in result.events}
