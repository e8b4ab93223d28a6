"""Remembered clean parts: faster on repeated traffic, never a missed attack."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.addresses import request_addresses
from bastion.waf import load_ruleset
from bastion.waf.verdicts import DIGEST_ADDRESSES, CleanParts

HEADERS = "server.request.headers.no_cookies"
QUERY = "server.request.query"


def regex_rule(rule_id: str, address: str, regex: str, key_path: list[str] | None = None,
               ) -> dict[str, Any]:
    target: dict[str, Any] = {"address": address}
    if key_path:
        target["key_path"] = key_path
    return {
        "id": rule_id, "name": rule_id, "tags": {"type": "test", "category": "attack_attempt"},
        "conditions": [{"operator": "match_regex",
                        "parameters": {"inputs": [target], "regex": regex}}],
    }


def fired(ruleset: Any, addresses: dict[str, Any]) -> list[str]:
    return [event["rule"]["id"] for event in ruleset.context().run(addresses).events]


def test_bundled_rules_still_see_an_attack_after_its_headers_were_remembered() -> None:
    ruleset = load_ruleset()
    headers = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64)", "accept": "text/html"}
    benign = {HEADERS: headers, QUERY: {"q": ["running shoes"]}}
    attack = {HEADERS: headers, QUERY: {"q": ["1' UNION SELECT password FROM users--"]}}
    assert fired(ruleset, benign) == []
    assert len(ruleset.clean_parts) > 0
    forgetful = load_ruleset()
    forgetful.clean_parts = CleanParts(0)
    assert fired(ruleset, attack) == fired(forgetful, attack) != []
    assert fired(ruleset, benign) == []


def test_a_remembered_name_with_a_new_value_is_looked_at_again() -> None:
    ruleset = load_ruleset({"version": "2.2", "rules": [regex_rule("r1", HEADERS, "evil")]})
    assert fired(ruleset, {HEADERS: {"x-note": "fine"}}) == []
    assert fired(ruleset, {HEADERS: {"x-note": "evil"}}) == ["r1"]


def test_the_same_text_under_another_name_or_shape_is_looked_at_again() -> None:
    rule = regex_rule("r1", QUERY, "evil", key_path=["b"])
    ruleset = load_ruleset({"version": "2.2", "rules": [rule]})
    assert fired(ruleset, {QUERY: {"a": ["evil"]}}) == []  # not under the rule's key path
    assert fired(ruleset, {QUERY: {"b": ["evil"]}}) == ["r1"]
    assert fired(ruleset, {QUERY: {"b": "evil"}}) == ["r1"]


def test_a_part_that_met_one_condition_of_two_is_not_remembered() -> None:
    """A rule needing two headers: the first alone matches nothing that fires, but it is not
    clean, and must still count when the second arrives in a later request."""
    rule = regex_rule("r1", HEADERS, "^alpha$", key_path=["x-a"])
    rule["conditions"].append(regex_rule("-", HEADERS, "^beta$", ["x-b"])["conditions"][0])
    ruleset = load_ruleset({"version": "2.2", "rules": [rule]})
    assert fired(ruleset, {HEADERS: {"x-a": "alpha"}}) == []
    assert fired(ruleset, {HEADERS: {"x-a": "alpha", "x-b": "beta"}}) == ["r1"]


def test_an_attack_leaves_the_other_parameters_of_its_address_remembered() -> None:
    ruleset = load_ruleset({"version": "2.2", "rules": [regex_rule("r1", QUERY, "evil")]})
    query = {"page": ["2"], "q": ["evil"]}
    assert fired(ruleset, {QUERY: query}) == ["r1"]
    assert len(ruleset.clean_parts) == 1  # page=2, looked at before q matched; not q
    assert fired(ruleset, {QUERY: query}) == ["r1"]
    assert fired(ruleset, {QUERY: query | {"q": ["fine"]}}) == []
    # Looked at after the match, a parameter is not known clean: it is looked at again.
    assert fired(ruleset, {QUERY: {"q": ["evil"], "next": ["evil"]}}) == ["r1"]
    assert fired(ruleset, {QUERY: {"q": ["fine"], "next": ["evil"]}}) == ["r1"]


def test_parameters_a_matched_detector_did_not_reach_are_not_remembered() -> None:
    """The detector stopped at the first injection: the second, in a parameter it never
    looked at, must still be seen when it comes alone."""
    rule = {"id": "det", "name": "det", "tags": {"type": "sqli", "category": "attack_attempt"},
            "conditions": [{"operator": "is_sqli",
                            "parameters": {"inputs": [{"address": QUERY}]}}]}
    ruleset = load_ruleset({"version": "2.2", "rules": [rule]})
    injection = "1' OR '1'='1"
    query = {"a": [injection], "b": [injection], "c": ["shoes"]}
    assert fired(ruleset, {QUERY: query}) == ["det"]
    assert fired(ruleset, {QUERY: query | {"a": ["boots"]}}) == ["det"]


def test_an_attack_in_one_address_leaves_the_others_remembered() -> None:
    rules = [regex_rule("q", QUERY, "evil"), regex_rule("h", HEADERS, "bad")]
    ruleset = load_ruleset({"version": "2.2", "rules": rules})
    headers = {"user-agent": "Mozilla/5.0", "accept": "text/html"}
    assert fired(ruleset, {QUERY: {"q": ["evil"]}, HEADERS: headers}) == ["q"]
    assert len(ruleset.clean_parts) == len(headers)  # the headers, not the query
    assert fired(ruleset, {QUERY: {"q": ["evil"]}, HEADERS: headers}) == ["q"]
    assert fired(ruleset, {QUERY: {"q": ["fine"]}, HEADERS: headers | {"x": "bad"}}) == ["h"]


def test_values_a_matched_condition_no_longer_looked_at_are_not_remembered() -> None:
    """The detector matched in the query first and stopped there: the header it never saw
    must still be looked at in the next request."""
    both = [{"address": QUERY}, {"address": HEADERS}]
    rule = {"id": "det", "name": "det", "tags": {"type": "sqli", "category": "attack_attempt"},
            "conditions": [{"operator": "is_sqli", "parameters": {"inputs": both}}]}
    ruleset = load_ruleset({"version": "2.2", "rules": [rule]})
    injection = "1' OR '1'='1"
    attack = {QUERY: {"q": [injection]}, HEADERS: {"x-id": injection, "accept": "text/html"}}
    assert fired(ruleset, attack) == ["det"]
    assert len(ruleset.clean_parts) == 1  # "accept: text/html", which no detector needs
    assert fired(ruleset, {QUERY: {"q": ["shoes"]}, HEADERS: attack[HEADERS]}) == ["det"]


def test_nothing_is_remembered_while_an_exclusion_is_active() -> None:
    document = {
        "version": "2.2",
        "rules": [regex_rule("r1", QUERY, "evil")],
        "exclusions": [{"id": "skip-q", "inputs": [{"address": QUERY, "key_path": ["q"]}]}],
    }
    ruleset = load_ruleset(document)
    assert fired(ruleset, {QUERY: {"q": ["evil"]}}) == []
    assert len(ruleset.clean_parts) == 0


def test_nothing_is_remembered_from_a_run_that_timed_out() -> None:
    ruleset = load_ruleset({"version": "2.2", "rules": [regex_rule("r1", QUERY, "evil")]})
    result = ruleset.context().run({QUERY: {"q": ["fine"]}}, timeout_us=0)
    assert result.timeout
    assert len(ruleset.clean_parts) == 0


def test_a_rules_update_starts_with_an_empty_memory() -> None:
    deny = {
        "id": "deny-ip", "name": "deny", "tags": {"type": "block_ip", "category": "security"},
        "conditions": [{"operator": "ip_match", "parameters": {
            "inputs": [{"address": "http.client_ip"}], "data": "blocked_ips"}}],
    }
    ruleset = load_ruleset({"version": "2.2", "rules": [deny], "rules_data": [
        {"id": "blocked_ips", "type": "ip_with_expiration", "data": []}]})
    assert fired(ruleset, {"http.client_ip": "203.0.113.7"}) == []
    updated = ruleset.update(rules_data=[{"id": "blocked_ips", "type": "ip_with_expiration",
                                          "data": [{"value": "203.0.113.7", "expiration": 0}]}])
    assert fired(updated, {"http.client_ip": "203.0.113.7"}) == ["deny-ip"]


def test_what_lies_past_the_container_limit_is_never_remembered() -> None:
    ruleset = load_ruleset({"version": "2.2", "rules": [regex_rule("r1", QUERY, "^last one$")]})
    many = {f"k{i}": [f"fine {i}"] for i in range(299)}
    many["k299"] = ["last one"]  # past the limit of 256 items: the engine never reads it
    assert fired(ruleset, {QUERY: many}) == []
    assert fired(ruleset, {QUERY: {"k299": ["last one"]}}) == ["r1"]


def test_memory_is_bounded_by_entries_and_text_length() -> None:
    memory = CleanParts(capacity=3, max_length=10)
    fresh: list[Any] = []
    assert memory.split(QUERY, {"a": "1", "b": "2", "long": "x" * 20}, fresh) is not None
    memory.remember(fresh)
    assert len(memory) == 2  # the long entry is left out
    kept = memory.split(QUERY, {"a": "1", "b": "2", "long": "x" * 20}, [])
    assert kept == {"long": "x" * 20}
    fresh = []
    memory.split(QUERY, {"c": "3", "d": "4"}, fresh)
    memory.remember(fresh)  # 2 + 2 > 3: starts over
    assert len(memory) == 2
    assert memory.split(QUERY, {"a": "1"}, []) == {"a": "1"}


def test_split_leaves_values_it_cannot_judge_whole() -> None:
    memory = CleanParts()
    fresh: list[Any] = []
    nested = {"user": {"name": "x"}, "tags": ["a", "b"]}
    assert memory.split("server.request.body", nested, fresh) is nested
    assert fresh == []
    assert memory.split(QUERY, {"n": [1, {"x": 2}]}, fresh) == {"n": [1, {"x": 2}]}


def test_a_partly_met_rule_on_header_presence_does_not_stop_remembering() -> None:
    """Both framing headers make the smuggling rule fire; Content-Length alone meets one of
    its `exists` conditions, which says nothing about any part's text."""
    ruleset = load_ruleset()
    headers = {"content-length": "42", "content-type": "application/json", "host": "x"}
    assert fired(ruleset, {HEADERS: headers}) == []
    assert len(ruleset.clean_parts) >= 3
    smuggling = fired(ruleset, {HEADERS: {**headers, "transfer-encoding": "chunked"}})
    assert "bst-proto-012" in smuggling


BODY = "server.request.body"


def test_a_json_body_leaves_known_texts_out_and_still_sees_a_new_attack() -> None:
    ruleset = load_ruleset()
    items = [{"sku": f"A-{i}", "qty": i, "note": "gift wrap please"} for i in range(20)]
    assert fired(ruleset, {BODY: {"items": items}}) == []
    remembered = len(ruleset.clean_parts)
    assert remembered >= 20  # the skus, the quantities, the note and the keys
    items.append({"sku": "A-99", "qty": 1, "note": "1' UNION SELECT password FROM users--"})
    assert fired(ruleset, {BODY: {"items": items}}) != []


def test_texts_under_a_key_some_rule_reads_by_path_are_never_left_out() -> None:
    rule = regex_rule("role", BODY, "^admin$", key_path=["role"])
    ruleset = load_ruleset({"version": "2.2", "rules": [rule]})
    assert fired(ruleset, {BODY: {"role": "user", "note": {"text": "admin"}}}) == []
    assert fired(ruleset, {BODY: {"role": "admin", "note": {"text": "x"}}}) == ["role"]
    # and "admin" met elsewhere, then under the key: the key's texts are always looked at
    assert fired(ruleset, {BODY: {"note": {"text": "admin"}}}) == []
    assert fired(ruleset, {BODY: {"role": "admin"}}) == ["role"]


def _body_request(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return request_addresses("POST", "/api/orders", [("content-type", content_type)], body)


_ORDER = json.dumps({"items": [{"sku": f"A-{i}", "qty": i, "note": "gift wrap please"}
                               for i in range(20)]}).encode()


def test_a_body_sent_again_byte_for_byte_is_known_clean_whole() -> None:
    ruleset = load_ruleset()
    request = _body_request(_ORDER)
    digest = request[DIGEST_ADDRESSES[BODY]]
    assert fired(ruleset, request) == []
    assert ruleset.clean_parts.knows_digest(BODY, digest)
    # the same bytes parsed as another type, or other bytes, are other bodies
    assert _body_request(_ORDER, "application/json; charset=utf-8")[
        DIGEST_ADDRESSES[BODY]] != digest
    assert _body_request(_ORDER + b" ")[DIGEST_ADDRESSES[BODY]] != digest
    attack = _ORDER.replace(b"gift wrap please", b"1' UNION SELECT password FROM users--", 1)
    assert fired(ruleset, _body_request(attack)) != []
    assert fired(ruleset, request) == []


def test_a_body_with_an_attack_is_not_remembered_whole_and_fires_again() -> None:
    ruleset = load_ruleset()
    attack = _body_request(json.dumps({"note": "<script>alert(1)</script>"}).encode())
    first = fired(ruleset, attack)
    assert first != []
    assert not ruleset.clean_parts.knows_digest(BODY, attack[DIGEST_ADDRESSES[BODY]])
    assert fired(ruleset, attack) == first


def test_a_body_that_met_one_condition_of_two_is_not_remembered_whole() -> None:
    """The body alone matches nothing that fires, but it is not clean: with the header the
    rule needs, the same body must still count."""
    rule = regex_rule("r1", BODY, "^alpha$")
    rule["conditions"].append(regex_rule("-", HEADERS, "^beta$", ["x-b"])["conditions"][0])
    ruleset = load_ruleset({"version": "2.2", "rules": [rule]})
    body = json.dumps({"a": "alpha"}).encode()
    request = _body_request(body)
    assert fired(ruleset, request) == []
    assert not ruleset.clean_parts.knows_digest(BODY, request[DIGEST_ADDRESSES[BODY]])
    with_header = _body_request(body)
    with_header[HEADERS]["x-b"] = "beta"
    assert fired(ruleset, with_header) == ["r1"]


def test_digests_are_forgotten_with_the_rest_when_the_memory_is_full() -> None:
    memory = CleanParts(capacity=3)
    memory.remember_digests([(BODY, b"1" * 16), (BODY, b"2" * 16)])
    assert memory.knows_digest(BODY, b"1" * 16) and len(memory) == 2
    memory.remember_digests([(BODY, b"3" * 16), (BODY, b"4" * 16)])
    assert not memory.knows_digest(BODY, b"1" * 16)
    assert memory.knows_digest(BODY, b"4" * 16) and len(memory) == 2
    forgetful = CleanParts(0)
    forgetful.remember_digests([(BODY, b"1" * 16)])
    assert not forgetful.knows_digest(BODY, b"1" * 16)


_VALUES = ("shoes", "42", "O'Brien", "café au lait", "1' OR '1'='1", "<script>alert(1)</script>",
           "../../../etc/passwd", "; cat /etc/passwd", "${jndi:ldap://x.example/a}",
           "1 UNION SELECT password FROM users--", "price desc")
_COOKIE = "server.request.cookies"
_BUNDLED = (load_ruleset(), load_ruleset())
_BUNDLED[1].clean_parts = CleanParts(0)


@settings(max_examples=60, deadline=None)
@given(st.lists(
    st.tuples(
        # names too may carry the attack: a query string's keys are read as well
        st.dictionaries(st.sampled_from(("a", "b", "c", *_VALUES[4:7])),
                        st.sampled_from(_VALUES), min_size=1),
        st.dictionaries(st.sampled_from(("session", "theme")), st.sampled_from(_VALUES)),
    ),
    min_size=2, max_size=6,
))
def test_remembering_never_changes_what_fires(requests: list[tuple[dict[str, str], dict[str, str]]],
                                              ) -> None:
    """Request after request, attacks and clean values mixed in the same query: the bundled
    rules fire exactly as they do without any memory."""
    remembering, forgetful = _BUNDLED
    remembering.clean_parts = CleanParts()
    for query, cookies in requests:
        addresses: dict[str, Any] = {QUERY: {k: [v] for k, v in query.items()}}
        if cookies:
            addresses[_COOKIE] = {k: [v] for k, v in cookies.items()}
        assert fired(remembering, addresses) == fired(forgetful, addresses)


@settings(max_examples=40, deadline=None)
@given(st.lists(
    st.dictionaries(st.sampled_from(("note", "name", "role")), st.sampled_from(_VALUES),
                    min_size=1),
    min_size=2, max_size=6,
).map(lambda bodies: bodies + bodies))  # each body comes back byte for byte
def test_bodies_sent_again_fire_as_without_memory(bodies: list[dict[str, str]]) -> None:
    remembering, forgetful = _BUNDLED
    remembering.clean_parts = CleanParts()
    for body in bodies:
        request = _body_request(json.dumps(body).encode())
        assert fired(remembering, request) == fired(forgetful, request)
