"""Loading rule documents: diagnostics, broken files, the reference rule file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.waf import RulesetError, load_ruleset

SHARED = Path(__file__).resolve().parents[3] / "shared"
REFERENCE = SHARED / "rules" / "reference-recommended-1.18.2.json"


def good_rule(rule_id: str) -> dict[str, object]:
    return {"id": rule_id, "name": rule_id, "tags": {"type": "t"}, "conditions": [
        {"operator": "match_regex", "parameters": {
            "inputs": [{"address": "server.request.query"}], "regex": "x"}}]}


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/rules is not beside the repo")
def test_reference_rule_file_loads_with_at_least_200_rules() -> None:
    rs = load_ruleset(REFERENCE)
    loaded = rs.diagnostics["loaded"]
    assert len(loaded) >= 200, rs.diagnostics["failed"]
    # Everything that did not load is named with a reason.
    document = json.loads(REFERENCE.read_text())
    ids = {r["id"] for r in document["rules"]}
    assert ids == set(loaded) | set(rs.diagnostics["failed"]) | set(rs.diagnostics["skipped"])
    # Rules the file itself disables are loaded but not active.
    assert set(rs.diagnostics["disabled"]) == {r["id"] for r in document["rules"]
                                               if r.get("enabled") is False}


def test_one_bad_rule_is_skipped_and_named_with_its_json_path() -> None:
    bad = good_rule("bad")
    bad["conditions"][0]["parameters"]["regex"] = "(unclosed"  # type: ignore[index]
    unknown = good_rule("unknown-op")
    unknown["conditions"][0]["operator"] = "frobnicate"  # type: ignore[index]
    rs = load_ruleset({"version": "2.2", "rules": [good_rule("ok"), bad, unknown]})
    assert rs.diagnostics["loaded"] == ["ok"]
    assert rs.diagnostics["failed"]["bad"].startswith("$.rules[1].conditions[0].parameters")
    assert "frobnicate" in rs.diagnostics["failed"]["unknown-op"]


def test_backreference_pattern_is_a_load_diagnostic() -> None:
    bad = good_rule("backref")
    bad["conditions"][0]["parameters"]["regex"] = r"(a)\1"  # type: ignore[index]
    rs = load_ruleset({"version": "2.2", "rules": [good_rule("ok"), bad]})
    assert "backref" in rs.diagnostics["failed"]


def test_duplicate_ids_and_version_gates() -> None:
    newer = good_rule("newer") | {"min_version": "99.0.0"}
    rs = load_ruleset({"version": "2.2", "rules": [good_rule("a"), good_rule("a"), newer]})
    assert rs.diagnostics["loaded"] == ["a"]
    assert "duplicate" in rs.diagnostics["failed"]["a"]
    assert rs.diagnostics["skipped"] == ["newer"]


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ([], "$"),
        ({"version": "1.0", "rules": []}, "$.version"),
        ({"version": "2.2", "rules": {}}, "$.rules"),
        ({"version": "2.2", "exclusions": "x"}, "$.exclusions"),
        ({"version": "2.2", "rules": [{"id": "x"}]}, "$.rules"),
    ],
)
def test_broken_documents_are_errors_with_a_json_path(document: object, path: str) -> None:
    with pytest.raises(RulesetError) as caught:
        load_ruleset(document)  # type: ignore[arg-type]
    assert caught.value.path == path
    assert str(caught.value).startswith(path)


def test_invalid_json_file_names_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "rules.json"
    broken.write_text('{"version": "2.2",\n "rules": [}\n')
    with pytest.raises(RulesetError, match="line 2 column"):
        load_ruleset(broken)


def test_bundled_default_rules_load_cleanly() -> None:
    rs = load_ruleset()
    assert rs.diagnostics["failed"] == {}
    assert rs.diagnostics["warnings"] == []
