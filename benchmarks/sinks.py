"""Cost of the exploit-prevention hooks: SQLite queries and an open() of a small file, each
unhooked, hooked outside a request, and hooked inside one, side by side.

usage: python benchmarks/sinks.py [--rules FILE] [--n 20000] [--rounds 7]

"Inside" runs in a started RequestContext of a benign request (three query parameters) with
the bundled rules (or --rules). A hook first looks for the user's parameters in the call's
statement or path (RequestContext.quiet_sink); only a call that holds one goes to the rules,
which remember a call they found clean until the parameters change. Rows: a one-row query and
a 50-row page, the same statement on every call (as an application's parameterised
statements are); a new statement text on every call without user input; and a new text on
every call that holds the request's search term (the full check, every time). The rules' own
evaluation of the sink address (`ctx.run`, without the quiet look) is printed too. Each figure
is the median over rounds of the mean time per call; the ways alternate within a round so
that drift hits them alike. Targets: outside <= 1.05x, inside <= 1.5x.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bastion import sinks
from bastion.config import Settings
from bastion.context import RequestContext
from bastion.protection import Protection
from bastion.waf import load_ruleset

QUERY = "SELECT name FROM items WHERE id = ?"
SEARCH = "running shoes"  # the benchmark request's search term
TARGETS = {"outside": 1.05, "inside": 1.5}


def mean_us(call: Callable[[], object], n: int) -> float:
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - started) / n * 1e6
    finally:
        gc.enable()


PAGE = "SELECT id, name FROM items WHERE id > ? ORDER BY name LIMIT 50"


def sqlite_query(connection: sqlite3.Connection) -> Callable[[], object]:
    return lambda: connection.execute(QUERY, (42,)).fetchone()


def sqlite_page(connection: sqlite3.Connection) -> Callable[[], object]:
    """A page of a listing: what a view typically asks of its database."""
    return lambda: connection.execute(PAGE, (100,)).fetchall()


def sqlite_new_statements(connection: sqlite3.Connection) -> Callable[[], object]:
    """A different statement text on every call (the id written into it), so nothing of an
    earlier call can be remembered: the full cost of a check."""
    numbers = itertools.count()
    return lambda: connection.execute(
        f"SELECT name FROM items WHERE id = {next(numbers) % 1000}").fetchone()


def sqlite_user_input(connection: sqlite3.Connection) -> Callable[[], object]:
    """A new statement text on every call that holds the request's search term, as string-
    built SQL does: the rules check each one in full."""
    numbers = itertools.count()
    return lambda: connection.execute(
        f"SELECT name FROM items WHERE name = '{SEARCH}' AND id = {next(numbers) % 1000}"
    ).fetchone()


def open_file(path: Path) -> Callable[[], object]:
    def read() -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    return read


def database(connect: Callable[..., sqlite3.Connection]) -> sqlite3.Connection:
    connection = connect(":memory:")
    connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    connection.executemany("INSERT INTO items VALUES (?, ?)",
                           [(i, f"item {i:04d}") for i in range(1000)])
    return connection


def request_context(protection: Protection) -> RequestContext:
    ctx = RequestContext(protection, "GET", "/catalog/search?q=running+shoes&size=42&sort=price",
                         {"host": "shop.example.com", "accept": "text/html"}, "203.0.113.7")
    if ctx.start() is not None:
        raise SystemExit("the benchmark's benign request was blocked")
    return ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", help="a rule file instead of the bundled rules")
    parser.add_argument("--n", type=int, default=20000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    ruleset = load_ruleset(args.rules) if args.rules else load_ruleset()
    protection = Protection(Settings(mode="block", event_log="off"), ruleset)
    ctx = request_context(protection)
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    small = workdir / "small.txt"
    small.write_bytes(b"x" * 128)

    sinks.uninstall()
    plain_db = database(sqlite3.connect)
    plain = {"SQLite query": sqlite_query(plain_db), "SQLite page (50 rows)": sqlite_page(plain_db),
             "SQLite, new text": sqlite_new_statements(plain_db),
             "SQLite, user input": sqlite_user_input(plain_db),
             "open() small file": open_file(small)}
    sinks.install()
    hooked_db = database(sqlite3.connect)  # now the hooked connect()
    hooked = {"SQLite query": sqlite_query(hooked_db),
              "SQLite page (50 rows)": sqlite_page(hooked_db),
              "SQLite, new text": sqlite_new_statements(hooked_db),
              "SQLite, user input": sqlite_user_input(hooked_db),
              "open() small file": open_file(small)}
    texts = itertools.count()
    rules_only = {
        "SQLite query": lambda: ctx.run({"server.db.statement": QUERY,
                                         "server.db.system": "sqlite"}),
        "SQLite page (50 rows)": lambda: ctx.run({"server.db.statement": PAGE,
                                                  "server.db.system": "sqlite"}),
        "SQLite, new text": lambda: ctx.run({
            "server.db.statement": f"SELECT name FROM items WHERE id = {next(texts) % 1000}",
            "server.db.system": "sqlite"}),
        "SQLite, user input": lambda: ctx.run({
            "server.db.statement":
                f"SELECT name FROM items WHERE name = '{SEARCH}' AND id = {next(texts) % 1000}",
            "server.db.system": "sqlite"}),
        "open() small file": lambda: ctx.run({"server.io.fs.file": str(small)}),
    }

    results: dict[str, dict[str, list[float]]] = {
        name: {"unhooked": [], "outside": [], "inside": [], "rules": []} for name in plain}
    for name in plain:
        for call in (plain[name], hooked[name]):  # warm up both, and the thread's scratch
            mean_us(call, 1000)
        with ctx:
            mean_us(hooked[name], 1000)
        for _ in range(args.rounds):
            for way, call, inside in (("unhooked", plain[name], False),
                                      ("outside", hooked[name], False),
                                      ("inside", hooked[name], True),
                                      ("rules", rules_only[name], True)):
                scope: Any = ctx if inside else nullcontext()
                with scope:
                    results[name][way].append(mean_us(call, args.n))
    sinks.uninstall()

    print(f"{'per call (us)':<22}{'unhooked':>10}{'outside':>10}{'ratio':>8}"
          f"{'inside':>10}{'ratio':>8}{'rules':>10}")
    for name, ways in results.items():
        base = statistics.median(ways["unhooked"])
        outside = statistics.median(ways["outside"])
        inside = statistics.median(ways["inside"])
        rules = statistics.median(ways["rules"])
        print(f"{name:<22}{base:>10.2f}{outside:>10.2f}{outside / base:>7.2f}x"
              f"{inside:>10.2f}{inside / base:>7.2f}x{rules:>10.2f}")
    print(f"targets: outside <= {TARGETS['outside']}x, inside <= {TARGETS['inside']}x; "
          "'rules' is ctx.run on the sink address alone")


if __name__ == "__main__":
    main()
