"""The quiet look at a sink call (WafContext.quiet_sink / quiet_call): a call may skip the
rules only when it cannot make one fire. Every exploit the rules catch must get the full
check, whatever the rule set; a call that holds none of the user's input is passed."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.waf import Ruleset, load_ruleset
from tests.waf.test_exploit_rules import ATTACKS, LEGITIMATE, OURS_ONLY, REFERENCE, SQL

QUERY = "server.request.query"


@pytest.fixture(scope="module")
def reference() -> Ruleset:
    if not REFERENCE.exists():
        pytest.skip("../shared/rules is not beside the repo")
    return load_ruleset(REFERENCE)


def sink_call(sink: str, resource: str) -> dict[str, object]:
    call: dict[str, object] = {sink: resource}
    if sink == SQL:
        call["server.db.system"] = "postgresql"
    return call


TEXT_CASES = [case for case in ATTACKS + OURS_ONLY if isinstance(case[1], str)]


@pytest.mark.parametrize(("sink", "resource", "param"), TEXT_CASES)
@pytest.mark.parametrize("rules", ["ruleset", "reference"])
def test_an_exploit_is_never_quiet(request: pytest.FixtureRequest, rules: str, sink: str,
                                   resource: str, param: str) -> None:
    ruleset: Ruleset = request.getfixturevalue(rules)
    context = ruleset.context()
    context.run({QUERY: {"v": [param], "page": ["2"]}})
    assert not context.quiet_sink(sink, resource)
    assert not context.quiet_call(sink_call(sink, resource))


def test_a_percent_encoded_parameter_is_looked_for_decoded_too(ruleset: Ruleset) -> None:
    context = ruleset.context()
    context.run({QUERY: {"file": ["%2e%2e%2f%2e%2e%2fetc%2fpasswd"]}})
    assert not context.quiet_sink("server.io.fs.file", "/srv/uploads/../../etc/passwd")
    assert context.run({"server.io.fs.file": "/srv/uploads/../../etc/passwd"}).events


@pytest.mark.parametrize(("sink", "resource", "param"),
                         [case for case in LEGITIMATE if isinstance(case[1], str)])
def test_quiet_calls_are_those_the_rules_pass(ruleset: Ruleset, sink: str, resource: str,
                                              param: str) -> None:
    """A call that carries the parameter gets the full check; a quiet one is one the full
    check finds clean."""
    context = ruleset.context()
    context.run({QUERY: {"v": [param]}})
    quiet = context.quiet_call(sink_call(sink, resource))
    if len(param) >= 3 and param in resource:
        assert not quiet
    if quiet:
        assert not context.run(sink_call(sink, resource)).events


def test_a_call_without_the_users_input_is_quiet(ruleset: Ruleset) -> None:
    context = ruleset.context()
    context.run({QUERY: {"q": ["running shoes"], "size": ["42"]}})
    assert context.quiet_sink(SQL, "SELECT name FROM items WHERE id = ?")
    assert context.quiet_call(sink_call(SQL, "SELECT name FROM items WHERE id = 42"))
    assert not context.quiet_sink(SQL, "SELECT id FROM items WHERE name = 'running shoes'")


def test_new_parameters_are_looked_for_at_once(ruleset: Ruleset) -> None:
    """The look remembers the parameters' texts until a run brings new ones."""
    context = ruleset.context()
    context.run({QUERY: {"q": ["shoes"]}})
    statement = "SELECT * FROM p WHERE id = 7 OR 1=1"
    assert context.quiet_sink(SQL, statement)
    context.run({"server.request.path_params": {"id": "7 OR 1=1"}})
    assert not context.quiet_sink(SQL, statement)
    assert context.run(sink_call(SQL, statement)).events


def test_other_addresses_and_argv_lists_are_never_quiet(ruleset: Ruleset) -> None:
    context = ruleset.context()
    context.run({QUERY: {"q": ["shoes"]}})
    assert not context.quiet_call({"server.sys.exec.cmd": ["ls", "-l"]})
    assert not context.quiet_call({SQL: "SELECT 1", QUERY: {"q": ["x"]}})
    assert not context.quiet_call({"server.db.system": "sqlite"})  # no resource at all


def rule(rule_id: str, operator: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule_id, "name": rule_id, "tags": {"type": "t", "category": "c"},
            "conditions": [{"operator": operator, "parameters": parameters}]}


def test_a_rule_set_that_reads_sinks_otherwise_gets_no_quiet_look() -> None:
    """A pattern on a statement may fire without any user input in it: no call is quiet,
    unless the pattern's rule also needs the statement's detector (the reference's SSRF rule
    pairs a URL pattern with its detector)."""
    detector = rule("sqli", "sqli_detector@v2", {
        "resource": [{"address": SQL}], "params": [{"address": QUERY}],
        "db_type": [{"address": "server.db.system"}]})
    pattern = rule("drop", "match_regex", {"inputs": [{"address": SQL}], "regex": "DROP"})
    paired = {**detector, "id": "paired",
              "conditions": [*pattern["conditions"], *detector["conditions"]]}
    on_system = rule("system", "match_regex", {"inputs": [{"address": "server.db.system"}],
                                               "regex": "sqlite"})
    for rules, quiet in (([detector], True), ([detector, paired], True),
                         ([detector, pattern], False), ([detector, on_system], False)):
        context = load_ruleset({"version": "2.2", "rules": rules}).context()
        context.run({QUERY: {"q": ["shoes"]}})
        assert context.quiet_sink(SQL, "DROP TABLE t") is quiet, rules
    context = load_ruleset({"version": "2.2", "rules": [detector, pattern]}).context()
    context.run({QUERY: {"q": ["shoes"]}})
    assert context.run(sink_call(SQL, "DROP TABLE t")).events
