"""Engine speed: one benign browser request and one attack request, Bastion beside libddwaf.

usage: python benchmarks/engine_speed.py [--rules FILE] [--n 5000] [--rounds 5]

Both engines get the same addresses (about 10 headers, 3 query parameters, 2 cookies for the
benign request) in the same process. Bastion runs its bundled rules (or --rules); libddwaf,
the reference C++ engine, runs through ddtrace's Python binding with ddtrace's bundled rules, and
only when ddtrace is importable: install it in a separate benchmark virtualenv, it is never a
dependency of Bastion. Each figure is the median over rounds of the mean time per request,
context creation included.

Bastion remembers request parts that came out clean (waf/verdicts.py), so the benchmark runs
each request kind three ways: the same request again and again (everything remembered after the
first), "fresh values" (the headers repeat, as one browser's do, but every search, cookie and
URI is new: the realistic case), and "nothing remembered" (the engine's full work on every part).
A last row is a JSON API call: the same headers, a body of 20 order lines, every value new.
libddwaf gets the same sequence of requests in each row.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bastion import native
from bastion.waf import Ruleset, load_ruleset
from bastion.waf.verdicts import CleanParts

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


_WORDS = ("running", "shoes", "trail", "jacket", "wool", "socks", "blue", "kids", "sale",
          "waterproof", "boots", "café", "größe", "tent", "lamp")


def fresh_requests(count: int, attack: bool = False, seed: int = 7) -> list[dict[str, Any]]:
    """`count` browser requests that share their headers, as one browser's requests do, but
    each with its own search, page size, sort order, session cookie and URI: no value of the
    query or the cookies repeats, so nothing there can be remembered from an earlier run."""
    rng = random.Random(seed)
    requests = []
    for number in range(count):
        words = " ".join(rng.sample(_WORDS, rng.randint(1, 3)))
        search = f"{words} {number}"
        if attack:
            search = f"{number}' UNION SELECT password FROM users--"
        size, sort = str(rng.randint(30, 48)), rng.choice(("price", "name", "rating", "new"))
        request = json.loads(json.dumps(BENIGN))
        request["server.request.query"] = {"q": [search], "size": [size], "sort": [sort]}
        request["server.request.cookies"]["session"] = [f"{rng.getrandbits(64):016x}"]
        request["server.request.uri.raw"] = (
            f"/catalog/search?{urlencode({'q': search, 'size': size, 'sort': sort})}"
        )
        requests.append(request)
    return requests


def json_requests(count: int, seed: int = 11) -> list[dict[str, Any]]:
    """`count` JSON API calls of the same browser: a POST whose body is an order of 20 lines
    (sku, quantity, note), every value of it new, as no two orders are alike."""
    rng = random.Random(seed)
    requests = []
    for number in range(count):
        request = json.loads(json.dumps(BENIGN))
        request["server.request.method"] = "POST"
        request["server.request.uri.raw"] = "/api/orders"
        request["server.request.query"] = {}
        request["server.request.body"] = {"order": number, "items": [
            {"sku": f"{rng.choice('ABCDEFGH')}-{rng.randint(1000, 99999)}",
             "qty": rng.randint(1, 9),
             "note": f"{' '.join(rng.sample(_WORDS, 2))} {rng.randint(1, 1000)}"}
            for _ in range(20)]}
        requests.append(request)
    return requests


def measure(run_one: Callable[[], object], n: int, rounds: int, warm: int = 500) -> float:
    """Median over rounds of the mean microseconds per call."""
    for _ in range(warm):
        run_one()
    figures = []
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        for _ in range(n):
            run_one()
        figures.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(figures)


Runner = Callable[[], object]


def cycling(requests: list[dict[str, Any]], run: Callable[[dict[str, Any]], object]) -> Runner:
    """A runner that takes the requests in turn, one per call."""
    position = itertools.count()
    size = len(requests)
    return lambda: run(requests[next(position) % size])


def bastion_run(ruleset: Ruleset) -> Callable[[dict[str, Any]], object]:
    return lambda addresses: ruleset.context().run(addresses, timeout_us=100_000)


def libddwaf_run() -> Callable[[dict[str, Any]], object] | None:
    try:
        import ddtrace.appsec
        from ddtrace.appsec._ddwaf.waf import DDWaf
    except ImportError:
        return None
    rules = (Path(ddtrace.appsec.__file__).parent / "rules.json").read_bytes()
    waf = DDWaf(rules, b"", b"")
    return lambda addresses: waf.run(waf._at_request_start(), addresses, 100.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", help="Bastion rule file (default: bundled rules)")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    total = 500 + args.n * args.rounds  # every call of a "fresh" scenario gets its own values
    attack = attack_request()
    scenarios = [
        ("benign, repeated", [BENIGN], "remember"),
        ("benign, fresh values", fresh_requests(total), "remember"),
        ("benign, nothing remembered", [BENIGN], "forget"),
        ("attack, fresh values", fresh_requests(total, attack=True), "remember"),
        ("attack, nothing remembered", [attack], "forget"),
        ("JSON API call, fresh values", json_requests(total), "remember"),
    ]
    ours = load_ruleset(args.rules)
    forgetful = load_ruleset(args.rules)
    forgetful.clean_parts = CleanParts(0)
    fired = [e["rule"]["id"] for e in forgetful.context().run(attack).events]
    quiet = [e["rule"]["id"] for e in forgetful.context().run(BENIGN).events]
    peer = libddwaf_run()
    print(native.summary())
    print(f"bastion rules: {args.rules or 'bundled default'}; benign fired {quiet or 'nothing'}; "
          f"attack fired {fired}")
    print(f"{'request':28} {'bastion us/req':>15} {'libddwaf us/req':>16} {'ratio':>6}")
    figures: dict[str, float] = {}
    for name, requests, memory in scenarios:
        ruleset = ours if memory == "remember" else forgetful
        figures[name] = mine = measure(cycling(requests, bastion_run(ruleset)), args.n,
                                       args.rounds)
        theirs = (measure(cycling(requests, peer), args.n, args.rounds)
                  if peer is not None else None)
        shown = f"{theirs:16.1f} {mine / theirs:6.2f}" if theirs else f"{'n/a':>16} {'':>6}"
        print(f"{name:28} {mine:15.1f} {shown}")
    print("\nratio: bastion / libddwaf (target <= 0.20 on benign requests)")
    for kind in ("fresh values", "nothing remembered"):
        print(f"attack/benign, {kind}: "
              f"{figures['attack, ' + kind] / figures['benign, ' + kind]:.2f} (target <= 2)")
    if peer is None:
        print("libddwaf: n/a (ddtrace is not importable in this environment)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
