"""Detection quality on the shared corpora: share of requests flagged, per corpus and category.

usage: python benchmarks/detection.py [--rules FILE] [--corpus DIR] [--misses CATEGORY]
                                      [--false-positives] [--json]

Prints the figures the project is judged on (CRS attacks at paranoia 1-2 by category, CRS
must-not-fire cases, libinjection SQLi/XSS and its false-positive list) beside the reference
engine's figures from the corpus README. `--misses sqli` lists the attacks of a category that
no rule flagged; `--false-positives` lists benign requests that fired and which rule fired.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from bastion.addresses import request_addresses
from bastion.waf import Ruleset, load_ruleset

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "corpus"

# (label, source, category or None for all, expect_attack, paranoia levels, target, reference)
HEADLINES = [
    ("crs sqli attacks (PL1-2)", "crs", "sqli", True, (1, 2), ">= 80%", 18.5),
    ("crs xss attacks (PL1-2)", "crs", "xss", True, (1, 2), ">= 80%", 42.7),
    ("crs lfi attacks (PL1-2)", "crs", "lfi", True, (1, 2), ">= 80%", 22.7),
    ("crs rfi attacks (PL1-2)", "crs", "rfi", True, (1, 2), ">= 80%", None),
    ("crs rce attacks (PL1-2)", "crs", "rce", True, (1, 2), ">= 80%", 8.0),
    ("crs java attacks (PL1-2)", "crs", "java", True, (1, 2), ">= 80%", 41.3),
    ("crs php attacks (PL1-2)", "crs", "php", True, (1, 2), ">= 80%", 28.9),
    ("crs generic attacks (PL1-2)", "crs", "generic", True, (1, 2), "", 23.6),
    ("crs must-not-fire cases (all)", "crs", None, False, None, "<= 3%", 4.1),
    ("libinjection sqli", "libinjection", "sqli", True, None, ">= 97%", 98.1),
    ("libinjection xss", "libinjection", "xss", True, None, ">= 95%", 92.8),
    ("libinjection false-positive list", "libinjection", "benign", False, None, "<= 1.5%", 1.7),
]


def record_addresses(record: dict[str, object]) -> dict[str, object]:
    headers = record.get("headers") or {}
    assert isinstance(headers, dict)
    query = str(record.get("query") or "")
    target = str(record.get("path") or "/") + (f"?{query}" if query else "")
    body = str(record.get("body") or "").encode("utf-8", "surrogateescape")
    return request_addresses(
        str(record.get("method") or "GET"), target, headers.items(), body, "203.0.113.7"
    )


def load_corpus(corpus: Path) -> list[dict[str, object]]:
    records = []
    for name in ("crs.jsonl", "libinjection.jsonl"):
        with (corpus / name).open(encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records


def evaluate(ruleset: Ruleset, records: list[dict[str, object]]) -> list[list[str]]:
    """For each record, the ids of the rules that fired."""
    fired = []
    for count, record in enumerate(records, 1):
        if count % 5000 == 0:
            print(f"  {count}/{len(records)} requests...", file=sys.stderr, flush=True)
        result = ruleset.context().run(record_addresses(record), timeout_us=1_000_000)
        fired.append([event["rule"]["id"] for event in result.events])
    return fired


def headline_rows(
    records: list[dict[str, object]], fired: list[list[str]]
) -> list[dict[str, object]]:
    rows = []
    for label, source, category, expect, levels, target, reference in HEADLINES:
        picked = [
            i for i, r in enumerate(records)
            if r["source"] == source and r["expect_attack"] is expect
            and (category is None or r["category"] == category)
            and (levels is None or r.get("paranoia") in levels)
        ]
        flagged = sum(1 for i in picked if fired[i])
        rows.append({
            "label": label, "records": len(picked), "flagged": flagged,
            "percent": 100.0 * flagged / len(picked) if picked else 0.0,
            "target": target, "reference": reference,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", help="rule file (default: bundled rules)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--misses", metavar="CATEGORY", help="list unflagged attacks")
    parser.add_argument("--false-positives", action="store_true", help="list benign hits")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    ruleset = load_ruleset(args.rules)
    loaded = time.perf_counter()
    records = load_corpus(args.corpus)
    fired = evaluate(ruleset, records)
    elapsed = time.perf_counter() - loaded
    rows = headline_rows(records, fired)

    # The CRS corpus labels some identical requests both ways (an attack for one rule's test,
    # "must not fire" for another's): say how many of the flagged benign rows those are.
    def request_key(record: dict[str, object]) -> str:
        return json.dumps([record.get(k) for k in ("method", "path", "query", "body", "headers")],
                          sort_keys=True)

    attack_keys = {request_key(r) for r in records if r["source"] == "crs" and r["expect_attack"]}
    contradicted = [
        i for i, r in enumerate(records)
        if r["source"] == "crs" and not r["expect_attack"] and request_key(r) in attack_keys
    ]
    mnf_total = sum(1 for r in records if r["source"] == "crs" and not r["expect_attack"])
    contradicted_flagged = sum(1 for i in contradicted if fired[i])

    by_category: dict[tuple[str, str, bool], list[int]] = defaultdict(lambda: [0, 0])
    for record, ids in zip(records, fired, strict=True):
        key = (str(record["source"]), str(record["category"]), bool(record["expect_attack"]))
        by_category[key][0] += 1
        by_category[key][1] += bool(ids)

    if args.json:
        print(json.dumps({"headlines": rows, "categories": [
            {"source": s, "category": c, "expect_attack": e, "records": n, "flagged": f}
            for (s, c, e), (n, f) in sorted(by_category.items())
        ]}, indent=2))
        return 0

    print(f"rules: {args.rules or 'bundled default'}  ({len(ruleset.rules)} active rules, "
          f"loaded in {loaded - started:.2f}s; {len(records)} requests in {elapsed:.1f}s)")
    print(f"\n{'headline':38} {'flagged':>16} {'target':>8} {'reference':>10}")
    for row in rows:
        reference = f"{row['reference']:.1f}%" if row["reference"] is not None else "-"
        print(f"{row['label']:38} {row['percent']:6.1f}% of {row['records']:5} "
              f"{row['target']:>8} {reference:>10}")
    mnf_flagged = next(r["flagged"] for r in rows if r["label"].startswith("crs must-not-fire"))
    clean_total = mnf_total - len(contradicted)
    clean_share = 100.0 * (int(mnf_flagged) - contradicted_flagged) / clean_total
    print(f"\nof the {mnf_total} CRS must-not-fire cases, {len(contradicted)} are the very same "
          f"request as a CRS attack case; {contradicted_flagged} of those fired. Without them: "
          f"{clean_share:.1f}% of {clean_total} flagged.")
    print(f"\n{'source':13} {'category':10} {'kind':8} {'flagged':>16}")
    for (source, category, expect), (count, flagged) in sorted(by_category.items()):
        kind = "attack" if expect else "benign"
        print(f"{source:13} {category:10} {kind:8} {100.0 * flagged / count:6.1f}% of {count:5}")

    if args.misses:
        print(f"\nmissed {args.misses} attacks (PL1-2 for crs):")
        for record, ids in zip(records, fired, strict=True):
            if (record["category"] == args.misses and record["expect_attack"] and not ids
                    and record.get("paranoia") in (1, 2, None)):
                print(" ", record["id"], record["method"], record["path"], record["query"],
                      repr(record["body"])[:200])
    if args.false_positives:
        print("\nbenign requests flagged:")
        for record, ids in zip(records, fired, strict=True):
            if not record["expect_attack"] and ids:
                print(" ", record["id"], ids, record["path"], record["query"],
                      repr(record["body"])[:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
