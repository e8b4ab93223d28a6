"""No false positives: legitimate sink calls built from user input, through the real hooks,
inside a request, in block mode.

Each call is what a careful application does with a user's value: a parameterised or safely
quoted query (searches full of quotes, apostrophes and SQL-looking words), a file name with
dots and unicode inside the upload folder, a URL whose host the application fixed (the user
chooses the path or the query), an argv or a shell-quoted line with the user's file name. Every
call must run and return the right result, be checked by a hook exactly once, and leave no
event. The core families (SQLite, files, network, processes) make well over 200 calls;
PostgreSQL and MariaDB add more where they run.
"""

from __future__ import annotations

import http.client
import os
import shlex
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.request import urlopen

import httpx
import pytest
import requests

from bastion.blocking import BlockedRequest
from bastion.protection import Protection
from tests import services
from tests.sinks.support import SINK_ADDRESSES, read_events, request, spy
from tests.sinks.test_network import Canary

# Search texts a user types: quotes, apostrophes, SQL words and punctuation, unicode. Safely
# quoted, each stays one string literal, however it looks.
SEARCHES = (
    "shoes", "running shoes", "O'Brien", "rock 'n' roll", "it's", "'quoted'", "'''",
    "Robert'); DROP TABLE Students;--", "admin'--", "' OR '1'='1", "1' OR 1=1 --",
    "x' + 'y", "l'été", "Müller", "日本語の本", "naïve café", "emoji 🎉 party", 'say "hi"',
    '"double"', "50% off", "100%", "under_score", "a;b", "1=1", "OR 1=1", "SELECT * FROM",
    "DROP TABLE users", "UNION SELECT", "--not a comment", "/* not a comment */", "#hashtag",
    "back\\slash", "C:\\Program Files\\", "tab\there", "new\nline", "semi; colon; list",
    "a,b,c", "(parens)", "[brackets]", "{braces}", "$dollar$", "$$", "`backtick`",
    "<b>bold</b>", "&amp;", "-- ", "1e3", "0x41", "NULL", "true",
)
# File names a user uploads or asks for, inside the upload folder.
FILE_NAMES = (
    "report.pdf", "photo.final.v2.jpg", "archive.tar.gz", "notes..txt", "..hidden", "...",
    ".env.example", "résumé.docx", "日本語.txt", "emoji-🎉.png", "with space.txt",
    "quote's.txt", 'dq"name.txt', "semi;colon.txt", "dollar$sign.txt", "percent%20.txt",
    "docs/inner.txt", "docs/./inner2.txt", "docs/../top.txt", "UPPER.TXT", "a-b_c~d.txt",
    "back\\slash.txt", "x" * 200 + ".txt", "v1..2.txt", "-dash-first.txt",
)
# Paths and queries a user adds to a URL whose host the application chose.
URL_PATHS = (
    "running-shoes", "item_42", "2024-05-01", "v1.2.3", "ABC123", "shoes/red", "a.b.c",
    "~alice", "..hidden", "café", "a b", "product-ÄÖÜ", "x" * 120, "en-US", "page.html",
)
URL_QUERIES = ("q=shoes&page=2", "sort=price&dir=desc", "tag=a&tag=b", "q=O'Brien",
               "q=1%3D1", "next=/account")
# Files a user names for a program, inside the upload folder.
PROCESS_FILES = ("report.txt", "notes v2.txt", "résumé.txt", "quote's.txt", "a.b.c.txt",
                 "data-2024.csv", "UPPER.TXT", "emoji🎉.txt", "semi;colon.txt", "$HOME.txt")
# Words a user searches for with grep: after `--`, even `-v` is a pattern.
GREP_WORDS = ("hello", "O'Brien", "a;b", "$(not run)", "-v", "--help", "`id`")
FILE_CONTENT = "hello\n"


@dataclass
class Env:
    """What the application's calls use: a SQLite database, an upload folder and a loopback
    HTTP server standing in for the API host the application talks to."""

    db: sqlite3.Connection
    uploads: Path
    api: Canary
    externals: dict[str, Any] = field(default_factory=dict)

    @property
    def api_base(self) -> str:
        return f"{self.api.base}/api"


@dataclass(frozen=True)
class Call:
    """One sink call of the application, with the request parameters it was built from."""

    what: str  # for failure messages
    params: Mapping[str, str]
    run: Callable[[Env], object]
    expect: Callable[[object], bool]


# ---------------------------------------------------------------- SQLite

def sql_literal(value: str) -> str:
    """A standard SQL string literal: quotes doubled (SQLite, PostgreSQL)."""
    return "'" + value.replace("'", "''") + "'"


def _one(env: Env, statement: str, *params: object) -> object:
    row = env.db.execute(statement, params).fetchone()
    return row[0] if row else None


def sqlite_calls() -> list[Call]:
    calls: list[Call] = []
    for q in SEARCHES:
        lit = sql_literal(q)
        calls += [
            Call(f"insert {q!r}", {"q": q},
                 lambda env, lit=lit: env.db.execute(
                     f"INSERT INTO notes (body) VALUES ({lit})").rowcount,
                 lambda got: got == 1),
            Call(f"select = {q!r}", {"q": q},
                 lambda env, lit=lit: _one(env, f"SELECT COUNT(*) FROM notes WHERE body = {lit}"),
                 lambda got: got == 1),
            Call(f"select LIKE {q!r}", {"q": q},
                 lambda env, q=q: _one(env, "SELECT COUNT(*) FROM notes WHERE body LIKE "
                                       + sql_literal(f"%{q}%")),
                 lambda got: isinstance(got, int) and got >= 1),
            Call(f"parameterised {q!r}", {"q": q},
                 lambda env, q=q: _one(env, "SELECT COUNT(*) FROM notes WHERE body = ?", q),
                 lambda got: got == 1),
        ]
    # Values the application validated (int(), a whitelist) before writing them in.
    for number, count in (("1", 1), ("42", 1), ("-7", 0), ("1000", 0), ("50", 1)):
        calls.append(Call(f"id = {number}", {"id": number},
                          lambda env, n=number: _one(
                              env, f"SELECT COUNT(*) FROM products WHERE id = {int(n)}"),
                          lambda got, count=count: got == count))
    for ids, count in (("3,5,8", 3), ("10,20", 2), ("7,7,7", 1), ("1,2,3,4,5,6,7,8,9", 9)):
        calls.append(Call(f"id IN {ids}", {"ids": ids},
                          lambda env, ids=ids: _one(
                              env, "SELECT COUNT(*) FROM products WHERE id IN ("
                              + ",".join(str(int(i)) for i in ids.split(",")) + ")"),
                          lambda got, count=count: got == count))
    for sort, direction, first in (("price", "DESC", 50), ("name", "ASC", 1), ("id", "DESC", 50),
                                   ("price", "ASC", 1)):
        assert sort in ("id", "name", "price") and direction in ("ASC", "DESC")
        calls.append(Call(f"ORDER BY {sort} {direction}", {"sort": sort, "dir": direction},
                          lambda env, s=sort, d=direction: _one(
                              env, f"SELECT id FROM products ORDER BY {s} {d} LIMIT 1"),
                          lambda got, first=first: got == first))
    for order, first in (("name DESC", 9), ("price DESC", 50), ("id ASC", 1)):
        calls.append(Call(f"ORDER BY {order}", {"order": order},
                          lambda env, o=order: _one(
                              env, f"SELECT id FROM products ORDER BY {o} LIMIT 1"),
                          lambda got, first=first: got == first))
    for limit in ("100", "250", "1000"):
        calls.append(Call(f"LIMIT {limit}", {"limit": limit},
                          lambda env, n=limit: len(env.db.execute(
                              f"SELECT id FROM products LIMIT {int(n)}").fetchall()),
                          lambda got: got == 50))
    return calls


# ---------------------------------------------------------------- files

def file_calls() -> list[Call]:
    calls: list[Call] = []
    for name in FILE_NAMES:
        params = {"name": name}

        def write(env: Env, name: str = name) -> int:
            with open(os.path.join(env.uploads, name), "w", encoding="utf-8") as handle:
                return handle.write(FILE_CONTENT)

        def read(env: Env, name: str = name) -> str:
            with open(f"{env.uploads}/{name}", encoding="utf-8") as handle:
                return handle.read()

        def read_bytes(env: Env, name: str = name) -> bytes:
            with open(env.uploads / name, "rb") as handle:
                return handle.read()

        calls += [
            Call(f"write {name!r}", params, write, lambda got: got == len(FILE_CONTENT)),
            Call(f"read {name!r}", params, read, lambda got: got == FILE_CONTENT),
            Call(f"read bytes {name!r}", params, read_bytes,
                 lambda got: got == FILE_CONTENT.encode()),
            Call(f"pathlib {name!r}", params,
                 lambda env, name=name: (env.uploads / name).read_text(encoding="utf-8"),
                 lambda got: got == FILE_CONTENT),
        ]
    return calls


# ---------------------------------------------------------------- network

def _urllib(url: str) -> bytes:
    with urlopen(url, timeout=5) as answer:
        body: bytes = answer.read()
        return body


def _http_client(env: Env, target: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", env.api.server_address[1], timeout=5)
    try:
        connection.request("GET", target)
        return connection.getresponse().read()
    finally:
        connection.close()


def network_calls() -> list[Call]:
    calls: list[Call] = []
    served: Callable[[object], bool] = lambda got: got == b"canary"  # noqa: E731
    for path in URL_PATHS:
        params = {"path": path}
        quoted = quote(path, safe="/~")
        calls += [
            Call(f"urllib /products/{path}", params,
                 lambda env, quoted=quoted: _urllib(f"{env.api_base}/products/{quoted}"), served),
            Call(f"requests ?q={path}", params,
                 lambda env, path=path: requests.get(f"{env.api_base}/search",
                                                     params={"q": path}, timeout=5).content,
                 served),
            Call(f"httpx /products/{path}", params,
                 lambda env, quoted=quoted: httpx.get(f"{env.api_base}/products/{quoted}",
                                                      timeout=5).content, served),
            Call(f"http.client /api/products/{path}", params,
                 lambda env, quoted=quoted: _http_client(env, f"/api/products/{quoted}"), served),
        ]
    for query in URL_QUERIES:
        params = {"query": query}
        calls += [
            Call(f"urllib ?{query}", params,
                 lambda env, query=query: _urllib(f"{env.api_base}/search?{query}"), served),
            Call(f"httpx ?{query}", params,
                 lambda env, query=query: httpx.get(f"{env.api_base}/search?{query}",
                                                    timeout=5).content, served),
        ]
    return calls


# ---------------------------------------------------------------- processes

def _run(env: Env, argv: list[str] | str, shell: bool = False) -> str:
    done = subprocess.run(argv, cwd=env.uploads, shell=shell, capture_output=True, text=True,
                          check=True, stdin=subprocess.DEVNULL)
    return done.stdout


def process_calls() -> list[Call]:
    calls: list[Call] = []
    size = f"{len(FILE_CONTENT.encode())} "
    for name in PROCESS_FILES:
        params = {"file": name}
        calls += [
            Call(f"wc -c {name!r}", params, lambda env, name=name: _run(env, ["wc", "-c", name]),
                 lambda got, name=name: got == f"{size}{name}\n"),
            Call(f"cat -- {name!r}", params,
                 lambda env, name=name: _run(env, ["cat", "--", name]),
                 lambda got: got == FILE_CONTENT),
            Call(f"ls {name!r}", params, lambda env, name=name: _run(env, ["ls", name]),
                 lambda got, name=name: got == f"{name}\n"),
            Call(f"sh: wc -c {name!r} quoted", params,
                 lambda env, name=name: _run(env, f"wc -c {shlex.quote(name)}", shell=True),
                 lambda got, name=name: got == f"{size}{name}\n"),
        ]
    for word in GREP_WORDS:
        calls.append(Call(f"grep -F -c -- {word!r}", {"word": word},
                          lambda env, word=word: subprocess.run(
                              ["grep", "-F", "-c", "--", word, "greppable.txt"], cwd=env.uploads,
                              capture_output=True, text=True, check=False).stdout,
                          lambda got: got == "1\n"))
    return calls


FAMILIES: dict[str, Callable[[], list[Call]]] = {
    "sqlite": sqlite_calls, "files": file_calls, "network": network_calls,
    "processes": process_calls,
}


# ---------------------------------------------------------------- running them

@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    db = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    db.executemany("INSERT INTO products VALUES (?, ?, ?)",
                   [(i, f"product {i}", i * 1.5) for i in range(1, 51)])
    uploads = tmp_path / "uploads"
    (uploads / "docs").mkdir(parents=True)
    for name in PROCESS_FILES:
        (uploads / name).write_text(FILE_CONTENT)
    (uploads / "greppable.txt").write_text("".join(f"{w}\n" for w in GREP_WORDS))
    api = Canary()
    thread = threading.Thread(target=api.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield Env(db, uploads, api)
    api.shutdown()
    api.server_close()
    db.close()


@dataclass
class Outcome:
    calls: int = 0
    carried: int = 0  # calls whose sink received a request value as sent
    problems: list[str] = field(default_factory=list)


def _sink_text(addresses: Mapping[str, object]) -> str:
    parts: list[str] = []
    for address in SINK_ADDRESSES:
        value = addresses.get(address)
        if isinstance(value, list):
            parts.extend(str(item) for item in value)
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)


def run_calls(protection: Protection, env: Env, calls: list[Call]) -> Outcome:
    """Each call in a request of its own, its parameters in the query string."""
    outcome = Outcome()
    for call in calls:
        outcome.calls += 1
        with request(protection, call.params) as ctx:
            seen = spy(ctx)
            try:
                got = call.run(env)
            except BlockedRequest:
                outcome.problems.append(f"{call.what}: blocked")
                continue
            except Exception as exc:  # the call itself failed: report which one
                outcome.problems.append(f"{call.what}: raised {exc!r}")
                continue
            events = list(ctx.events)
        if events:
            outcome.problems.append(f"{call.what}: reported {events}")
        if len(seen) != 1:
            outcome.problems.append(f"{call.what}: {len(seen)} sink checks, not 1: {seen}")
        if not call.expect(got):
            outcome.problems.append(f"{call.what}: wrong result {got!r}")
        if seen and any(value in _sink_text(seen[0]) for value in call.params.values()):
            outcome.carried += 1
    return outcome


def test_the_core_families_make_at_least_200_calls() -> None:
    counts = {name: len(make()) for name, make in FAMILIES.items()}
    assert sum(counts.values()) >= 200, counts


@pytest.mark.parametrize("family", list(FAMILIES))
def test_legitimate_calls_run_and_are_not_reported(
    protection: Protection, env: Env, tmp_path: Path, family: str
) -> None:
    calls = FAMILIES[family]()
    outcome = run_calls(protection, env, calls)
    assert outcome.problems == []
    assert outcome.calls == len(calls)
    # Most calls hand the user's value, as sent, to the check (the rest: bound parameters,
    # quotes doubled, names percent-encoded): the detectors really looked at it.
    assert outcome.carried >= len(calls) // 2, (outcome.carried, len(calls))
    assert read_events(protection, tmp_path) == []


# ---------------------------------------------------------------- PostgreSQL and MariaDB

def _external_calls(connection: Any, table: str, literal: Callable[[str], str],
                    marker: str) -> list[Call]:
    def query(statement: str, *params: object) -> Callable[[Env], object]:
        def run(env: Env) -> object:
            cursor = connection.cursor()
            try:
                cursor.execute(statement, params or None)
                return cursor.fetchone()[0] if cursor.description else cursor.rowcount
            finally:
                cursor.close()

        return run

    calls: list[Call] = []
    for q in SEARCHES:
        calls += [
            Call(f"insert {q!r}", {"q": q},
                 query(f"INSERT INTO {table} (body) VALUES ({literal(q)})"), lambda got: got == 1),
            Call(f"select = {q!r}", {"q": q},
                 query(f"SELECT COUNT(*) FROM {table} WHERE body = {literal(q)}"),
                 lambda got: got == 1),
            Call(f"parameterised {q!r}", {"q": q},
                 query(f"SELECT COUNT(*) FROM {table} WHERE body = {marker}", q),
                 lambda got: got == 1),
        ]
    return calls


def test_postgresql_calls_run_and_are_not_reported(
    protection: Protection, env: Env, tmp_path: Path
) -> None:
    connection = services.connect_postgres("psycopg")
    table = services.table_name("legit")
    cursor = connection.cursor()
    cursor.execute(f"CREATE TABLE {table} (id SERIAL PRIMARY KEY, body TEXT)")
    try:
        calls = _external_calls(connection, table, sql_literal, "%s")
        outcome = run_calls(protection, env, calls)
        assert outcome.problems == []
        assert outcome.carried >= len(calls) // 2
        assert read_events(protection, tmp_path) == []
    finally:
        cursor.execute(f"DROP TABLE {table}")
        connection.close()


def test_mariadb_calls_run_and_are_not_reported(
    protection: Protection, env: Env, tmp_path: Path
) -> None:
    pymysql = services.driver("pymysql")
    connection = services.connect_mariadb("pymysql")
    table = services.table_name("legit")
    cursor = connection.cursor()
    cursor.execute(f"CREATE TABLE {table} (id INTEGER AUTO_INCREMENT PRIMARY KEY, body TEXT) "
                   "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def literal(value: str) -> str:  # MySQL's own escaping: backslashes, not doubled quotes
        return "'" + str(pymysql.converters.escape_string(value)) + "'"

    try:
        calls = _external_calls(connection, table, literal, "%s")
        outcome = run_calls(protection, env, calls)
        assert outcome.problems == []
        assert outcome.carried >= len(calls) // 3
        assert read_events(protection, tmp_path) == []
    finally:
        cursor.execute(f"DROP TABLE {table}")
        connection.close()


# ---------------------------------------------------------------- known false positives

# Legitimate calls that are refused today: the user's value sits harmlessly where the
# application put it, but the same text is also the application's own SQL or program name
# elsewhere in the sink, and the detectors cannot tell which occurrence came from the user.
# Forgiving a harmful occurrence because a harmless one exists would let an attacker who
# controls two parameters (one pasted raw, one quoted) through, so these stay refused until
# the detectors know where the application inserted the value.
KNOWN_FALSE_POSITIVES = [
    Call("search for the keyword the app's statement also uses", {"q": "AND"},
         lambda env: _one(env, "SELECT COUNT(*) FROM products WHERE id > 0 AND name = "
                          + sql_literal("AND")), lambda got: got == 0),
    Call("grep for the word 'grep'", {"word": "grep"},
         lambda env: subprocess.run(["grep", "-F", "-c", "--", "grep", "greppable.txt"],
                                    cwd=env.uploads, capture_output=True, text=True,
                                    check=False).stdout, lambda got: got == "0\n"),
]


@pytest.mark.parametrize("call", KNOWN_FALSE_POSITIVES, ids=lambda call: call.what)
def test_known_false_positive(protection: Protection, env: Env, call: Call) -> None:
    problems = run_calls(protection, env, [call]).problems
    if problems == [f"{call.what}: blocked"]:
        pytest.xfail("the value is also the application's own text at a sensitive place in "
                     "the sink (see KNOWN_FALSE_POSITIVES)")
    assert problems == []
