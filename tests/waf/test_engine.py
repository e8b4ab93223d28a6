"""The engine contract: addresses in, events and actions out, once per rule per context."""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest

from bastion.waf import load_ruleset


def rule(rule_id: str, operator: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": f"rule {rule_id}",
        "tags": {"type": "test", "category": "attack_attempt"},
        "conditions": [{"operator": operator, "parameters": params}],
        **extra,
    }


QUERY = [{"address": "server.request.query"}]


def doc(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"version": "2.2", "rules": list(rules), **extra}


def lfi_rule(*params: str) -> dict[str, Any]:
    """An exploit rule: a file path that a user parameter of `params` made climb out."""
    return {
        "id": "lfi", "name": "lfi", "tags": {"type": "lfi", "category": "exploit_detection"},
        "conditions": [{"operator": "lfi_detector@v2", "parameters": {
            "resource": [{"address": "server.io.fs.file"}],
            "params": [{"address": address} for address in params]}}],
    }


def fired(result: Any) -> list[str]:
    return [event["rule"]["id"] for event in result.events]


def test_regex_event_reports_rule_parameter_and_highlight() -> None:
    rs = load_ruleset(doc(rule("r1", "match_regex", {"inputs": QUERY, "regex": r"union\s+select"})))
    result = rs.context().run({"server.request.query": {"q": ["1 UNION  SELECT x"]}})
    assert fired(result) == ["r1"]
    match = result.events[0]["rule_matches"][0]
    assert match["operator"] == "match_regex"
    parameter = match["parameters"][0]
    assert parameter["address"] == "server.request.query"
    assert parameter["key_path"] == ["q", 0]
    assert parameter["value"] == "1 UNION  SELECT x"
    assert parameter["highlight"] == ["UNION  SELECT"]


def test_case_sensitive_option_and_min_length() -> None:
    rs = load_ruleset(doc(
        rule("cs", "match_regex", {"inputs": QUERY, "regex": "Admin",
                                   "options": {"case_sensitive": True}}),
        rule("ml", "match_regex", {"inputs": QUERY, "regex": "ab", "options": {"min_length": 5}}),
    ))
    assert fired(rs.context().run({"server.request.query": {"a": ["admin", "ab"]}})) == []
    assert fired(rs.context().run({"server.request.query": {"a": ["Admin abcd"]}})) == ["cs", "ml"]


def test_anchored_patterns_hold_per_value_not_across_joined_values() -> None:
    rs = load_ruleset(doc(rule("a", "match_regex", {"inputs": QUERY, "regex": "^x=1$"})))
    # Each value alone is not '^x=1$'; the engine scans values joined, it must not be fooled.
    assert fired(rs.context().run({"server.request.query": {"a": ["y", "x=1 z"]}})) == []
    assert fired(rs.context().run({"server.request.query": {"a": ["y", "x=1"]}})) == ["a"]
    assert fired(rs.context().run({"server.request.query": {"a": ["x=1\nmore"]}})) == []


def test_rule_fires_once_per_context_and_addresses_accumulate() -> None:
    two = {"id": "two", "name": "two", "tags": {"type": "t"}, "conditions": [
        {"operator": "match_regex", "parameters": {"inputs": QUERY, "regex": "aaa"}},
        {"operator": "match_regex", "parameters": {
            "inputs": [{"address": "server.request.body"}], "regex": "bbb"}},
    ]}
    rs = load_ruleset(doc(two))
    ctx = rs.context()
    assert fired(ctx.run({"server.request.query": {"q": "aaa"}})) == []
    assert fired(ctx.run({"server.request.body": {"b": "bbb"}})) == ["two"]
    assert fired(ctx.run({"server.request.body": {"b": "bbb"}})) == []
    assert fired(rs.context().run({"server.request.body": {"b": "bbb"}})) == []


def test_key_path_and_keys_only() -> None:
    headers = [{"address": "server.request.headers.no_cookies", "key_path": ["user-agent"]}]
    rs = load_ruleset(doc(
        rule("ua", "match_regex", {"inputs": headers, "regex": "sqlmap"}),
        rule("keys", "match_regex", {"inputs": QUERY, "regex": "^__proto__$"},
             transformers=["keys_only"]),
    ))
    assert fired(rs.context().run({"server.request.headers.no_cookies": {"x": "sqlmap"}})) == []
    ua = rs.context().run({"server.request.headers.no_cookies": {"user-agent": "sqlmap/1.7"}})
    assert fired(ua) == ["ua"]
    assert fired(rs.context().run({"server.request.query": {"a": ["__proto__"]}})) == []
    assert fired(rs.context().run({"server.request.query": {"__proto__": ["1"]}})) == ["keys"]


def test_transformers_apply_before_matching() -> None:
    rs = load_ruleset(doc(rule("t", "match_regex", {"inputs": QUERY, "regex": "/etc/passwd"},
                               transformers=["urlDecodeUni", "normalizePath"])))
    hit = rs.context().run({"server.request.query": {"f": ["/var/www/..%2f..%2f..%2fetc/passwd"]}})
    assert fired(hit) == ["t"]


def test_phrase_match_with_word_boundary() -> None:
    rs = load_ruleset(doc(rule("p", "phrase_match", {
        "inputs": QUERY, "list": ["nikto", "sqlmap"], "options": {"enforce_word_boundary": True},
    })))
    assert fired(rs.context().run({"server.request.query": {"a": ["run sqlmap now"]}})) == ["p"]
    assert fired(rs.context().run({"server.request.query": {"a": ["runsqlmapnow"]}})) == []


def test_exact_match_ip_match_equals_exists() -> None:
    rs = load_ruleset(doc(
        rule("em", "exact_match", {"inputs": [{"address": "usr.id"}], "list": ["bob"]}),
        rule("ip", "ip_match", {"inputs": [{"address": "http.client_ip"}],
                                "list": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]}),
        rule("eq", "equals", {"inputs": [{"address": "server.response.status"}],
                              "type": "unsigned", "value": 404}),
        rule("ex", "exists", {"inputs": [{"address": "server.request.headers.no_cookies",
                                          "key_path": ["x-debug"]}]}),
    ))
    assert fired(rs.context().run({"usr.id": "bob"})) == ["em"]
    assert fired(rs.context().run({"usr.id": "bobby"})) == []
    assert fired(rs.context().run({"http.client_ip": "10.2.3.4"})) == ["ip"]
    assert fired(rs.context().run({"http.client_ip": "2001:db8::1"})) == ["ip"]
    assert fired(rs.context().run({"http.client_ip": "192.0.2.7"})) == ["ip"]
    assert fired(rs.context().run({"http.client_ip": "192.0.2.8"})) == []
    assert fired(rs.context().run({"server.response.status": "404"})) == ["eq"]
    assert fired(rs.context().run({"server.response.status": "200"})) == []
    present = {"server.request.headers.no_cookies": {"x-debug": "1"}}
    assert fired(rs.context().run(present)) == ["ex"]
    assert fired(rs.context().run({"server.request.headers.no_cookies": {"a": "1"}})) == []


def test_negated_regex() -> None:
    rs = load_ruleset(doc(rule("n", "!match_regex", {
        "inputs": [{"address": "server.request.method"}], "regex": "^(GET|POST)$"})))
    assert fired(rs.context().run({"server.request.method": "GET"})) == []
    assert fired(rs.context().run({"server.request.method": "TRACK"})) == ["n"]


def test_rules_data_with_expiration_and_update() -> None:
    blocked = rule("blk", "ip_match", {"inputs": [{"address": "http.client_ip"}],
                                       "data": "blocked_ips"}, on_match=["block"])
    rs = load_ruleset(doc(blocked))
    assert fired(rs.context().run({"http.client_ip": "203.0.113.9"})) == []
    rs2 = rs.update(rules_data=[{"id": "blocked_ips", "type": "ip_with_expiration", "data": [
        {"value": "203.0.113.9", "expiration": 0},
        {"value": "203.0.113.10", "expiration": 1},  # expired in 1970
    ]}])
    result = rs2.context().run({"http.client_ip": "203.0.113.9"})
    assert fired(result) == ["blk"]
    assert result.actions == {
        "block_request": {"status_code": 403, "type": "auto", "grpc_status_code": 10}
    }
    assert fired(rs2.context().run({"http.client_ip": "203.0.113.10"})) == []
    # The original ruleset is immutable.
    assert fired(rs.context().run({"http.client_ip": "203.0.113.9"})) == []


def test_custom_actions_redirect_and_blocking_precedence() -> None:
    rs = load_ruleset(doc(
        rule("r", "match_regex", {"inputs": QUERY, "regex": "evil"}, on_match=["go_away"]),
        actions=[{"id": "go_away", "type": "redirect_request",
                  "parameters": {"status_code": 302, "location": "https://example.com/denied"}}],
    ))
    result = rs.context().run({"server.request.query": {"a": ["evil"]}})
    assert result.actions == {
        "redirect_request": {"status_code": 302, "location": "https://example.com/denied"}
    }


def test_rule_filter_exclusion_bypass_and_monitor() -> None:
    base = doc(rule("r", "match_regex", {"inputs": QUERY, "regex": "evil"}, on_match=["block"]))
    only_on_health = [{"operator": "match_regex", "parameters": {
        "inputs": [{"address": "server.request.uri.raw"}], "regex": "^/health"}}]
    rs = load_ruleset(base).update(exclusions=[
        {"id": "skip", "rules_target": [{"rule_id": "r"}], "conditions": only_on_health}])
    health = {"server.request.uri.raw": "/health?a=evil", "server.request.query": {"a": "evil"}}
    assert fired(rs.context().run(health)) == []
    other = {"server.request.uri.raw": "/x?a=evil", "server.request.query": {"a": "evil"}}
    assert fired(rs.context().run(other)) == ["r"]
    monitored = load_ruleset(base).update(exclusions=[
        {"id": "mon", "rules_target": [{"tags": {"type": "test"}}], "on_match": "monitor"}])
    result = monitored.context().run(other)
    assert fired(result) == ["r"] and result.actions == {}


def test_input_filter_exclusion() -> None:
    rs = load_ruleset(doc(rule("r", "match_regex", {"inputs": QUERY, "regex": "evil"}))).update(
        exclusions=[{"id": "in", "inputs": [{"address": "server.request.query",
                                            "key_path": ["comment"]}]}])
    assert fired(rs.context().run({"server.request.query": {"comment": ["evil"]}})) == []
    both = {"server.request.query": {"comment": ["evil"], "id": ["evil"]}}
    result = rs.context().run(both)
    assert fired(result) == ["r"]
    assert result.events[0]["rule_matches"][0]["parameters"][0]["key_path"] == ["id", 0]


def test_custom_rules_and_overrides() -> None:
    base = doc(rule("r", "match_regex", {"inputs": QUERY, "regex": "evil"}))
    rs = load_ruleset(base).update(
        custom_rules=[rule("mine", "match_regex", {"inputs": QUERY, "regex": "mine"})],
        rules_override=[{"rules_target": [{"rule_id": "r"}], "enabled": False}],
    )
    assert fired(rs.context().run({"server.request.query": {"a": ["evil mine"]}})) == ["mine"]
    assert "r" in rs.diagnostics["disabled"]


def test_timeout_is_reported_and_evaluation_stops() -> None:
    rs = load_ruleset(doc(rule("r", "match_regex", {"inputs": QUERY, "regex": "zzz"})))
    values = {f"k{i}": ["a" * 4000] for i in range(200)}
    result = rs.context().run({"server.request.query": values}, timeout_us=0)
    assert result.timeout is True
    assert result.events == []


@pytest.mark.parametrize("address", ["server.request.query", "server.request.body"])
def test_limits_cut_long_strings_and_large_containers(address: str) -> None:
    rs = load_ruleset(doc(rule("r", "match_regex", {
        "inputs": [{"address": address}], "regex": "needle"})))
    late = {address: "a" * 5000 + "needle"}
    assert fired(rs.context().run(late)) == []  # beyond the 4096-character limit
    many = {address: {f"k{i}": "x" for i in range(300)} | {"last": "needle"}}
    assert fired(rs.context().run(many)) == []  # beyond the 256-item limit
    deep: object = "needle"
    for _ in range(25):
        deep = {"d": deep}
    assert fired(rs.context().run({address: deep})) == []  # beyond depth 20
    assert fired(rs.context().run({address: {"a": {"b": "needle"}}})) == ["r"]


def replace_function(monkeypatch: pytest.MonkeyPatch, detector: Any, function: Any) -> None:
    """Put `function` in place of the detection a Detector wraps. The engine's modules may be
    compiled (setup.py), and a compiled class's methods cannot be replaced on an instance."""
    monkeypatch.setattr(detector, "_function", function)


def test_a_failing_operator_fails_open_and_is_reported_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rs = load_ruleset(doc(
        rule("det", "is_sqli", {"inputs": QUERY}),
        rule("re", "match_regex", {"inputs": QUERY, "regex": "evil"}),
    ))
    detector = rs.lanes["server.request.query"][0].value_ops[0][0]

    def broken(value: str) -> str | None:
        raise RuntimeError("tokenizer bug")

    replace_function(monkeypatch, detector, broken)
    for _ in range(3):
        result = rs.context().run({"server.request.query": {"q": ["1' or '1'='1 evil"]}})
        assert fired(result) == ["re"]
    assert rs.operator_errors == {"is_sqli": 3}
    assert sum("is_sqli failed" in r.getMessage() for r in caplog.records) == 1


def test_a_detector_sees_what_its_trigger_reports_and_what_the_trigger_cannot_judge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rs = load_ruleset(doc(rule("det", "is_sqli", {"inputs": QUERY})))
    detector = rs.lanes["server.request.query"][0].value_ops[0][0]
    seen: list[str] = []
    original = detector._function

    def spy(value: str) -> str | None:
        seen.append(value)
        return original(value)

    replace_function(monkeypatch, detector, spy)
    query = {"q": ["running shoes"], "size": ["42"], "note": ["see\nyou"], "name": ["Zoë"],
             "id": ["1' OR '1'='1"]}
    result = rs.context().run({"server.request.query": query})
    assert fired(result) == ["det"]
    # Values that are not single-line ASCII always reach the detector; plain values only
    # when the trigger matched them.
    assert seen == ["see\nyou", "Zoë", "1' OR '1'='1"]


@pytest.mark.parametrize("before", [1, 12])
def test_values_after_a_matching_value_are_still_looked_at(before: int) -> None:
    only_b = [{"address": "server.request.query", "key_path": ["b"]}]
    rs = load_ruleset(doc(rule("b", "match_regex", {"inputs": only_b, "regex": "evil"})))
    query = {f"a{i}": ["evil"] for i in range(before)} | {"z": ["fine"], "b": ["more evil"]}
    result = rs.context().run({"server.request.query": query})
    assert fired(result) == ["b"]
    assert result.events[0]["rule_matches"][0]["parameters"][0]["key_path"] == ["b", 0]


def test_the_first_matching_value_is_reported() -> None:
    both = [{"address": "server.request.body"}, {"address": "server.request.query"}]
    rs = load_ruleset(doc(rule("r", "match_regex", {"inputs": both, "regex": "evil"})))
    result = rs.context().run({"server.request.body": {"x": "fine", "y": "evil one"},
                               "server.request.query": {"q": ["evil two"]}})
    parameter = result.events[0]["rule_matches"][0]["parameters"][0]
    assert (parameter["address"], parameter["key_path"]) == ("server.request.body", ["y"])


def test_an_end_of_line_anchor_matches_inside_a_multiline_value() -> None:
    rs = load_ruleset(doc(rule("pop3", "match_regex", {
        "inputs": QUERY, "regex": r"[\r\n]\s*retr\s+\d+\s*(?:$|[\r\n])"})))
    query = {"a": ["ok"], "attackme": ["\r\nRETR 123"], "z": ["ok"]}
    assert fired(rs.context().run({"server.request.query": query})) == ["pop3"]


def test_exists_on_headers_within_a_run_and_across_runs() -> None:
    headers = "server.request.headers.no_cookies"
    both = {"id": "both", "name": "both", "tags": {"type": "t"}, "conditions": [
        {"operator": "exists", "parameters": {"inputs": [
            {"address": headers, "key_path": ["x-a"]}, {"address": headers, "key_path": ["x-b"]}]}},
        {"operator": "exists", "parameters": {"inputs": [
            {"address": "server.request.query", "key_path": ["debug"]}]}},
    ]}
    rs = load_ruleset(doc(both))
    debug = {"server.request.query": {"debug": ["1"]}}
    assert fired(rs.context().run({headers: {"host": "a"}} | debug)) == []
    assert fired(rs.context().run({headers: {"host": "a", "x-b": "1"}} | debug)) == ["both"]
    # A condition that held in an earlier run stays matched, whatever later runs bring.
    ctx = rs.context()
    assert fired(ctx.run({headers: {"x-a": "1"}})) == []
    assert fired(ctx.run({headers: {"host": "a"}} | debug)) == ["both"]


@pytest.mark.parametrize("sink_first", [False, True])
def test_an_exploit_rule_fires_whichever_comes_first_sink_or_parameters(sink_first: bool) -> None:
    ctx = load_ruleset(doc(lfi_rule("server.request.query"))).context()
    runs = [{"server.request.query": {"file": ["../../../etc/passwd"]}},
            {"server.io.fs.file": "/srv/files/../../../etc/passwd"}]
    if sink_first:
        runs.reverse()
    assert fired(ctx.run(runs[0])) == []
    assert fired(ctx.run(runs[1])) == ["lfi"]


def test_parameters_arriving_after_a_sink_check_are_compared_at_the_next_sink() -> None:
    ctx = load_ruleset(doc(lfi_rule("server.request.query", "server.request.body"))).context()
    assert fired(ctx.run({"server.request.query": {"page": ["2"]}})) == []
    assert fired(ctx.run({"server.io.fs.file": "/srv/files/report.pdf"})) == []
    assert fired(ctx.run({"server.request.body": {"name": "../../../etc/passwd"}})) == []
    assert fired(ctx.run({"server.io.fs.file": "/srv/files/../../../etc/passwd"})) == ["lfi"]


def test_time_spent_waiting_does_not_count_against_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget is the rules' own work: a thread kept waiting (for the GIL held by another
    thread, say) past the wall-clock deadline still examines the whole request."""
    rs = load_ruleset(doc(rule("sqli", "is_sqli", {"inputs": QUERY}),
                          rule("xss", "is_xss", {"inputs": QUERY})))
    sqli = rs.lanes["server.request.query"][0].value_ops[0][0]
    original = sqli._function

    def kept_waiting(value: str) -> str | None:
        time.sleep(0.01)  # no CPU spent: another thread runs meanwhile
        return original(value)

    replace_function(monkeypatch, sqli, kept_waiting)
    query = {"b": ["Zoë"], "c": ["<script>alert(1)</script>"]}
    result = rs.context().run({"server.request.query": query}, timeout_us=5000)
    assert result.duration_us > 5000  # the wall clock did pass the deadline
    assert not result.timeout
    assert fired(result) == ["xss"]


def test_a_garbage_collection_inside_a_run_does_not_count_against_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full collection of a large heap, triggered by the run's own allocations, is not the
    rules' work: the run examines the whole request, and its clock leaves gc.callbacks."""
    rs = load_ruleset(doc(rule("sqli", "is_sqli", {"inputs": QUERY}),
                          rule("xss", "is_xss", {"inputs": QUERY})))
    heap = [[{} for _ in range(8)] for _ in range(60_000)]  # a full collection's worth
    started = time.thread_time()
    gc.collect()
    assert time.thread_time() - started > 0.002  # longer than the run's budget below
    sqli = rs.lanes["server.request.query"][0].value_ops[0][0]
    original = sqli._function

    def collecting(value: str) -> str | None:
        gc.collect()  # what an automatic full collection costs, in the middle of the run
        return original(value)

    replace_function(monkeypatch, sqli, collecting)
    callbacks = list(gc.callbacks)
    query = {"b": ["Zoë"], "c": ["<script>alert(1)</script>"]}
    result = rs.context().run({"server.request.query": query}, timeout_us=2000)
    assert not result.timeout
    assert fired(result) == ["xss"]
    assert gc.callbacks == callbacks
    del heap


def test_a_sink_call_found_clean_is_not_evaluated_again_until_parameters_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = load_ruleset(doc(lfi_rule("server.request.query", "server.request.body"))).context()
    calls: list[str] = []
    import bastion.waf.exploits as exploits

    original = exploits._CHECKS["lfi_detector@v2"]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("x")
        return original(*args, **kwargs)

    # A table entry, not a function of the (possibly compiled) module: see replace_function.
    monkeypatch.setitem(exploits._CHECKS, "lfi_detector@v2", counted)
    sink = {"server.io.fs.file": "/srv/files/../../../etc/passwd"}
    # The parameter is in the path, so the check runs, and finds no traversal of its own.
    assert fired(ctx.run({"server.request.query": {"file": ["passwd"]}})) == []
    assert fired(ctx.run(sink)) == []
    assert fired(ctx.run(sink)) == []
    assert len(calls) == 1  # the second call was known clean
    assert fired(ctx.run({"server.request.body": {"f": "../../../etc/passwd"}})) == ["lfi"]
    assert fired(ctx.run(sink)) == []  # the rule fired already (once per request)
