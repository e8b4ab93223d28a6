"""The plan regroups rules by what they read; what fires must not depend on how."""

from __future__ import annotations

from typing import Any

from bastion.waf import load_ruleset

QUERY, BODY = "server.request.query", "server.request.body"
HEADERS = "server.request.headers.no_cookies"


def regex(rule_id: str, addresses: list[str], pattern: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": rule_id, "name": rule_id, "tags": {"type": "t"}, **extra,
        "conditions": [{"operator": "match_regex", "parameters": {
            "inputs": [{"address": a} for a in addresses], "regex": pattern}}],
    }


def fired(rs: Any, addresses: dict[str, object]) -> list[str]:
    return [event["rule"]["id"] for event in rs.context().run(addresses).events]


def test_a_pattern_fires_only_on_the_addresses_its_rule_reads() -> None:
    # Query and body share their patterns, so they are scanned together; headers are not.
    rules = [regex(f"p{i}", [QUERY, BODY], f"param{i}") for i in range(5)]
    rules += [regex("body-only", [BODY], "bodyword"), regex("hdr", [HEADERS], "hdrword")]
    rs = load_ruleset({"version": "2.2", "rules": rules})
    assert rs.plan.addresses[QUERY].group is rs.plan.addresses[BODY].group
    assert rs.plan.addresses[HEADERS].group is not rs.plan.addresses[QUERY].group
    everything = {QUERY: {"q": ["bodyword hdrword param3"]}, HEADERS: {"x": "bodyword"}}
    assert fired(rs, everything) == ["p3"]
    assert fired(rs, {BODY: {"b": ["bodyword"]}, HEADERS: {"x": "hdrword"}}) == [
        "body-only", "hdr"]


def test_aliases_of_a_transformer_read_the_same_values() -> None:
    rules = [regex("a", [QUERY], "<script", transformers=["urlDecode"]),
             regex("b", [QUERY], "<script", transformers=["url_decode"])]
    rs = load_ruleset({"version": "2.2", "rules": rules})
    assert len(rs.plan.addresses[QUERY].variants) == 1
    assert fired(rs, {QUERY: {"q": ["%3Cscript%3E"]}}) == ["a", "b"]


def test_a_value_a_chain_changes_is_matched_as_changed_and_as_it_was() -> None:
    rules = [regex("decoded", [HEADERS], "a b", transformers=["urlDecodeUni"]),
             regex("raw", [HEADERS], r"a\+b")]
    rs = load_ruleset({"version": "2.2", "rules": rules})
    assert fired(rs, {HEADERS: {"accept": "text/html", "x": "a+b"}}) == ["decoded", "raw"]
    assert fired(rs, {HEADERS: {"x": "a b"}}) == ["decoded"]
