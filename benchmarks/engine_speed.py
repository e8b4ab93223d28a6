"""Engine speed: one benign browser request and one attack request, Bastion beside libddwaf.

usage: python benchmarks/engine_speed.py [--rules FILE] [--n 5000] [--rounds 5]

Both engines get the same addresses (about 10 headers, 3 query parameters, 2 cookies for the
benign request) in the same process. Bastion runs its bundled rules (or --rules); libddwaf,
the reference C++ engine, runs through ddtrace's Python binding with ddtrace's bundled rules, and
only when ddtrace is importable: install it in a separate benchmark virtualenv, it is never a
dependency of Bastion. Each figure is the median over rounds of the mean time per request,
context creation included.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bastion.waf import load_ruleset

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0 Safari/537.36")

BENIGN: dict[str, Any] = {
    "server.request.method": "GET",
    "server.request.uri.raw": "/catalog/search?q=running+shoes&size=42&sort=price",
    "server.request.headers.no_cookies": {
        "host": "shop.example.com",
        "user-agent": UA,
        "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "accept-language": "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
        "accept-encoding": "gzip, deflate, br",
        "referer": "https://shop.example.com/catalog?page=2",
        "connection": "keep-alive",
        "upgrade-insecure-requests": "1",
        "sec-fetch-mode": "navigate",
        "cache-control": "max-age=0",
    },
    "server.request.query": {"q": ["running shoes"], "size": ["42"], "sort": ["price"]},
    "server.request.cookies": {"session": ["3f2a9c1e8b7d4a60"], "theme": ["dark"]},
    "http.client_ip": "203.0.113.7",
}


def attack_request() -> dict[str, Any]:
    attack = json.loads(json.dumps(BENIGN))
    attack["server.request.uri.raw"] = "/catalog/search?q=1%27%20UNION%20SELECT%20password..."
    attack["server.request.query"]["q"] = ["1' UNION SELECT password FROM users--"]
    return attack


def measure(run_one: Callable[[], object], n: int, rounds: int) -> float:
    """Median over rounds of the mean microseconds per call."""
    for _ in range(min(n, 500)):
        run_one()
    figures = []
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        for _ in range(n):
            run_one()
        figures.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(figures)


def bastion_runner(rules: str | None, addresses: dict[str, Any]) -> Callable[[], object]:
    ruleset = load_ruleset(rules)

    def run_one() -> object:
        return ruleset.context().run(addresses, timeout_us=100_000)

    return run_one


def libddwaf_runner(addresses: dict[str, Any]) -> Callable[[], object] | None:
    try:
        import ddtrace.appsec
        from ddtrace.appsec._ddwaf.waf import DDWaf
    except ImportError:
        return None
    rules = (Path(ddtrace.appsec.__file__).parent / "rules.json").read_bytes()
    waf = DDWaf(rules, b"", b"")

    def run_one() -> object:
        return waf.run(waf._at_request_start(), addresses, 100.0)

    return run_one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", help="Bastion rule file (default: bundled rules)")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    attack = attack_request()
    ours_benign = bastion_runner(args.rules, BENIGN)
    ours_attack = bastion_runner(args.rules, attack)
    fired = [e["rule"]["id"] for e in ours_attack().events]  # type: ignore[attr-defined]
    clean = [e["rule"]["id"] for e in ours_benign().events]  # type: ignore[attr-defined]
    rows = [("bastion", measure(ours_benign, args.n, args.rounds),
             measure(ours_attack, args.n, args.rounds))]
    peer_benign, peer_attack = libddwaf_runner(BENIGN), libddwaf_runner(attack)
    if peer_benign is not None and peer_attack is not None:
        rows.append(("libddwaf (ddtrace)", measure(peer_benign, args.n, args.rounds),
                     measure(peer_attack, args.n, args.rounds)))

    print(f"bastion rules: {args.rules or 'bundled default'}; benign fired {clean or 'nothing'}; "
          f"attack fired {fired}")
    print(f"{'engine':20} {'benign us/req':>14} {'attack us/req':>14}")
    for name, benign, attack_time in rows:
        print(f"{name:20} {benign:14.1f} {attack_time:14.1f}")
    ours = rows[0]
    print(f"\nbastion attack/benign ratio: {ours[2] / ours[1]:.2f} (target <= 2)")
    if len(rows) > 1:
        print(f"bastion/libddwaf benign ratio: {ours[1] / rows[1][1]:.2f} (target <= 0.20)")
    else:
        print("libddwaf: n/a (ddtrace is not importable in this environment)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
