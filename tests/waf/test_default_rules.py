"""The bundled rule set: built from its parts, every rule documented and loadable."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from bastion.waf import load_ruleset

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "src" / "bastion" / "waf" / "rules"


def _build_module() -> object:
    script = ROOT / "scripts" / "build_rules.py"
    spec = importlib.util.spec_from_file_location("build_rules", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_json_is_built_from_the_parts() -> None:
    build = _build_module()
    expected = build.render(build.build())  # type: ignore[attr-defined]
    assert (RULES / "default.json").read_text(encoding="utf-8") == expected, (
        "run: python scripts/build_rules.py"
    )


def test_every_rule_has_id_name_tags_and_reason_and_loads() -> None:
    document = json.loads((RULES / "default.json").read_text(encoding="utf-8"))
    ids = [rule["id"] for rule in document["rules"]]
    assert len(ids) == len(set(ids)), "duplicate rule ids"
    for rule in document["rules"]:
        assert rule["id"].startswith("bst-"), rule["id"]
        assert rule["name"] and rule["reason"], rule["id"]
        assert rule["tags"]["type"] and rule["tags"]["category"], rule["id"]
    ruleset = load_ruleset()
    assert ruleset.diagnostics["failed"] == {}
    assert sorted(ruleset.diagnostics["loaded"]) == sorted(ids)
