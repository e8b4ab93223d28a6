"""Build src/bastion/waf/rules/default.json from the readable per-category parts.

usage: python scripts/build_rules.py [--check] [--only PART ...] [--out FILE]

Each file in src/bastion/waf/rules/parts/ is {"description": ..., "rules": [...]} for one
family of attacks. The bundled rule file is their concatenation in file-name order, so that a
reviewer reads one family at a time and the engine loads one document. `--check` exits 1 when
default.json is not what the parts build (the test suite runs it); `--only` builds a subset.

Blocking policy: a rule tagged `confidence: "1"` blocks in block mode (`on_match: ["block"]`)
unless its part says otherwise; a `confidence: "0"` rule only reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RULES = Path(__file__).resolve().parent.parent / "src" / "bastion" / "waf" / "rules"
VERSION = "0.1.0"


def build(only: list[str] | None = None) -> dict[str, object]:
    rules: list[object] = []
    for path in sorted((RULES / "parts").glob("*.json")):
        if only and not any(name in path.stem for name in only):
            continue
        part = json.loads(path.read_text(encoding="utf-8"))
        for rule in part["rules"]:
            if "on_match" not in rule and rule.get("tags", {}).get("confidence") == "1":
                rule["on_match"] = ["block"]
            rules.append(rule)
    return {"version": "2.2", "metadata": {"rules_version": f"bastion-{VERSION}"}, "rules": rules}


def render(document: dict[str, object]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--out", type=Path, default=RULES / "default.json")
    args = parser.parse_args()
    text = render(build(args.only))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python scripts/build_rules.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(json.loads(text)['rules'])} rules)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
