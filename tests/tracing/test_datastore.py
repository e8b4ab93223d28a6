"""Datastore spans from the exploit-prevention hooks: one client span per statement, against
real SQLite, PostgreSQL 15 (psycopg 3 and psycopg2) and MariaDB (PyMySQL and mysqlclient):
timing, system, database, the statement sanitized (never raw), row counts, and errors with
their type, a message without the statement's data, and the stack."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bastion import sinks, tracing
from bastion.config import Settings
from bastion.protection import Protection
from bastion.sinks import sql
from bastion.tracing.provider import resolve
from tests import services
from tests.sinks.support import rasp_rules
from tests.tracing.apps import flask_app, get, protection
from tests.tracing.conftest import AppTracing

SECRET = "hunter2-7f3a"
SLEEP_S = 0.05


@pytest.fixture(autouse=True)
def hooks() -> Iterator[None]:
    sinks.install()
    yield
    sinks.uninstall()


@pytest.fixture
def traced(app_tracing: AppTracing) -> AppTracing:
    """Tracing on, into the application's provider (its spans recorded in memory)."""
    assert tracing.configure(Settings(tracing=True))
    return app_tracing


@dataclass
class Database:
    driver: str
    connection: Any
    table: str
    product: str  # db.system.name
    namespace: str | None
    port: int | None
    placeholder: str

    def run(self, statement: str, params: Any = None) -> Any:
        """One statement through a fresh cursor; the cursor, for its results."""
        cursor = self.connection.cursor()
        if params is None:
            cursor.execute(statement)
        else:
            cursor.execute(statement, params)
        return cursor

    def sleep(self) -> str:
        if self.driver == "sqlite3":
            return f"SELECT sleep_ms({int(SLEEP_S * 1000)})"
        if self.product == "postgresql":
            return f"SELECT pg_sleep({SLEEP_S})"
        return f"SELECT SLEEP({SLEEP_S})"


DRIVERS = ["sqlite3", "psycopg", "psycopg2", "pymysql", "MySQLdb"]


def sleep_ms(ms: int) -> int:
    time.sleep(ms / 1000)
    return 0


def connect(driver: str) -> Database:
    table = services.table_name()
    if driver == "sqlite3":
        connection = sqlite3.connect(":memory:", isolation_level=None)
        connection.create_function("sleep_ms", 1, sleep_ms)
        return Database(driver, connection, table, "sqlite", None, None, "?")
    if driver in ("psycopg", "psycopg2"):
        connection = services.connect_postgres(driver)
        return Database(driver, connection, table, "postgresql", services.POSTGRES["dbname"],
                        services.POSTGRES["port"], "%s")
    connection = services.connect_mariadb(driver)
    return Database(driver, connection, table, "mariadb", services.MARIADB["database"],
                    services.MARIADB["port"], "%s")


@pytest.fixture(params=DRIVERS)
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A table of three rows, made before tracing is on (its statements make no span)."""
    database = connect(request.param)
    database.run(f"CREATE TABLE {database.table} (id INTEGER PRIMARY KEY, name TEXT)").close()
    database.run(f"INSERT INTO {database.table} (id, name) VALUES (1, 'a'), (2, 'b'), "
                 "(3, 'c')").close()
    yield database
    database.run(f"DROP TABLE {database.table}").close()
    database.connection.close()


def client_spans(app: AppTracing) -> list[ReadableSpan]:
    return [span for span in app.spans() if span.kind is SpanKind.CLIENT]


def everything_said(span: ReadableSpan) -> str:
    """All the span tells a backend, as one text."""
    return json.dumps([span.name, dict(span.attributes or {}), span.status.description,
                       [[e.name, dict(e.attributes or {})] for e in span.events]])


# ---------------------------------------------------------------- spans of statements


def test_a_statement_gets_one_client_span_with_its_database_and_timing(
        db: Database, traced: AppTracing) -> None:
    """Outside any request (a worker's job): the span still comes."""
    before = time.time_ns()
    db.run(db.sleep()).close()
    after = time.time_ns()

    [span] = client_spans(traced)
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "bastion"
    assert span.name == ("SELECT" if db.namespace is None else f"SELECT {db.namespace}")
    assert span.start_time is not None and span.end_time is not None
    assert before <= span.start_time and span.end_time <= after
    assert span.end_time - span.start_time >= SLEEP_S * 1e9
    attributes = dict(span.attributes or {})
    expected: dict[str, Any] = {"db.system.name": db.product, "db.system": db.product,
                                "db.operation.name": "SELECT",
                                "db.query.text": db.sleep().split("(")[0] + "(?)"}
    if db.namespace is not None:
        expected.update({"db.namespace": db.namespace, "server.address": services.HOST,
                         "server.port": db.port})
    attributes.pop("db.response.returned_rows", None)  # SQLite does not know it
    assert attributes == expected
    assert span.status.status_code is StatusCode.UNSET and not span.events


def test_the_statement_is_sanitized_never_raw_and_rows_are_counted(
        db: Database, traced: AppTracing) -> None:
    select = (f"SELECT name FROM {db.table} /* by {SECRET} */ WHERE name <> '{SECRET}' "
              "AND id IN (1, 2, 3) ORDER BY id")
    assert [row[0] for row in db.run(select).fetchall()] == ["a", "b", "c"]
    db.run(f"DELETE FROM {db.table} WHERE id = {db.placeholder} OR name = '{SECRET}'",
           (2,)).close()

    read, delete = client_spans(traced)
    assert read.attributes is not None and delete.attributes is not None
    assert read.attributes["db.query.text"] == (
        f"SELECT name FROM {db.table} WHERE name <> ? AND id IN (?) ORDER BY id")
    assert delete.attributes["db.query.text"] == (
        f"DELETE FROM {db.table} WHERE id = {db.placeholder} OR name = ?")
    assert delete.attributes["db.operation.name"] == "DELETE"
    assert delete.attributes["bastion.db.affected_rows"] == 1
    if db.driver == "sqlite3":  # SQLite counts rows as they are fetched, after the span
        assert "db.response.returned_rows" not in read.attributes
    else:
        assert read.attributes["db.response.returned_rows"] == 3
    assert not any(SECRET in everything_said(span) for span in (read, delete))


def test_executemany_is_one_span_of_a_batch(db: Database, traced: AppTracing) -> None:
    """PyMySQL and mysqlclient run each set through their own execute(): still one span."""
    cursor = db.connection.cursor()
    cursor.executemany(f"UPDATE {db.table} SET name = {db.placeholder} WHERE id = "
                       f"{db.placeholder}", [("x", 1), ("y", 2), ("z", 3)])
    cursor.close()

    [span] = client_spans(traced)
    assert span.attributes is not None
    assert span.attributes["db.operation.name"] == "BATCH UPDATE"
    assert span.attributes["db.operation.batch.size"] == 3
    assert span.attributes["bastion.db.affected_rows"] == 3


# ---------------------------------------------------------------- errors


ERRORS = {
    # A table that is not there; a syntax error the server quotes back from where it stopped.
    "missing table": "SELECT name FROM missing_{table} WHERE name = '{secret}'",
    "syntax": "SELECT name FROM {table} WHERE FROM name = '{secret}' AND id = 12345678",
}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_an_error_marks_the_span_with_its_type_safe_message_and_stack(
        db: Database, traced: AppTracing, kind: str) -> None:
    statement = ERRORS[kind].format(table=db.table, secret=SECRET)

    def application_query() -> None:
        db.run(statement)

    with pytest.raises(services.driver(db.driver).Error) as raised:
        application_query()
    error = raised.value

    [span] = client_spans(traced)
    type_name = f"{type(error).__module__}.{type(error).__qualname__}"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == type_name
    assert span.attributes["db.response.status_code"]
    [event] = span.events
    assert event.name == "exception" and event.attributes is not None
    assert event.attributes["exception.type"] == type_name
    message = str(event.attributes["exception.message"])
    assert message and span.status.description == message
    if kind == "missing table":  # what went wrong is still said
        assert f"missing_{db.table}" in message
    stack = str(event.attributes["exception.stacktrace"])
    assert stack.startswith("Traceback (most recent call last):\n")
    assert stack.endswith(f"{type_name}: {message}\n")
    assert "in application_query" in stack and f'File "{__file__}"' in stack
    assert "bastion/sinks" not in stack and "bastion/tracing" not in stack
    # The statement's data is nowhere: not in the text, not in what the server quoted back.
    said = everything_said(span)
    assert SECRET not in said and "12345678" not in said
    # ...though the server quoted it back in the application's own exception, untouched:
    # PostgreSQL's context line always, MariaDB from where a syntax error stopped it.
    quoted_back = db.product == "postgresql" or (db.product == "mariadb" and kind == "syntax")
    assert (SECRET[:6] in str(error)) is quoted_back
    assert SECRET[:6] not in said


def test_an_error_of_a_python_driver_shows_the_drivers_frames(traced: AppTracing) -> None:
    connection = services.connect_mariadb("pymysql")
    try:
        with pytest.raises(services.driver("pymysql").Error):
            connection.cursor().execute("SELECT * FROM no_such_table_here")
    finally:
        connection.close()
    [span] = client_spans(traced)
    stack = str(span.events[0].attributes["exception.stacktrace"])  # type: ignore[index]
    assert "pymysql/cursors.py" in stack and "raise_mysql_exception" in stack


# ---------------------------------------------------------------- inside a request


def vulnerable_view(connection: sqlite3.Connection) -> Callable[[], Any]:
    def view() -> Any:
        from flask import request

        rows = connection.execute(
            f"SELECT name FROM items WHERE id = {request.args['id']}").fetchall()
        return {"names": [row[0] for row in rows]}

    return view


def items() -> sqlite3.Connection:
    """Made before tracing is on: these statements make no span."""
    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("INSERT INTO items VALUES (1, 'boots'), (2, 'socks')")
    return connection


def sink_rules_only(tmp_path: Path, mode: str) -> Protection:
    """Only the exploit-prevention rules, so that the request's own rules do not stop the
    attack before its statement is made."""
    return Protection(Settings(mode=mode, tracing=True, event_log=str(tmp_path / "events.jsonl")),
                      rasp_rules())


def test_in_a_request_the_span_is_the_server_spans_child_and_the_attack_stays_on_the_server_span(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    connection = items()
    guard = sink_rules_only(tmp_path, "monitor")  # the injected statement runs
    tracing.configure(guard.settings)
    app = flask_app(guard, vulnerable_view(connection))
    reply = get(app, "/call?id=1%20OR%201=1")
    assert reply.status == 200 and json.loads(reply.body) == {"names": ["boots", "socks"]}

    [server] = [s for s in app_tracing.spans() if s.kind is SpanKind.SERVER]
    [client] = client_spans(app_tracing)
    assert client.parent is not None and server.context is not None
    assert client.parent.span_id == server.context.span_id
    assert client.context is not None and client.context.trace_id == server.context.trace_id
    assert client.attributes is not None
    assert client.attributes["db.query.text"] == "SELECT name FROM items WHERE id = ? OR ?=?"
    # The exploit check saw the statement (its rule fired) and said so on the server span.
    assert server.attributes is not None
    assert server.attributes["bastion.rule.ids"] == ("bst-rasp-005",)
    [event] = server.events
    assert event.attributes is not None and event.attributes["bastion.rule.id"] == "bst-rasp-005"
    assert not client.events


def test_a_statement_the_rules_refuse_never_runs_and_gets_no_span(
        tmp_path: Path, app_tracing: AppTracing) -> None:
    connection = items()
    guard = sink_rules_only(tmp_path, "block")
    tracing.configure(guard.settings)
    app = flask_app(guard, vulnerable_view(connection))
    assert get(app, "/call?id=1%20OR%201=1").status == 403
    assert client_spans(app_tracing) == []
    [server] = [s for s in app_tracing.spans() if s.kind is SpanKind.SERVER]
    assert server.attributes is not None and server.attributes["bastion.blocked"] is True
    assert get(app, "/call?id=2").status == 200
    [client] = client_spans(app_tracing)
    assert client.attributes is not None
    assert client.attributes["db.query.text"] == "SELECT name FROM items WHERE id = ?"


def test_an_attacked_request_that_was_sampled_out_keeps_its_statements(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    connection = items()
    guard = protection(tmp_path)
    exported = InMemorySpanExporter()
    tracing.configure(guard.settings, resolve(guard.settings, SimpleSpanProcessor(exported)))
    app = flask_app(guard, vulnerable_view(connection))

    assert get(app, "/call?id=2").status == 200  # benign: sampled out with its statement
    assert exported.get_finished_spans() == ()
    assert get(app, "/call?id=1%20OR%201=1").status == 200
    spans = sorted(exported.get_finished_spans(), key=lambda span: span.kind.name)
    assert [span.kind for span in spans] == [SpanKind.CLIENT, SpanKind.SERVER]
    client = spans[0]
    assert client.attributes is not None and client.attributes["bastion.kept"] is True
    assert client.context is not None and client.context.trace_flags.sampled


# ---------------------------------------------------------------- drivers and layers


def test_async_psycopg_statements_are_spans_of_the_current_span(traced: AppTracing) -> None:
    async def job() -> list[tuple[int]]:
        connection = await services.connect_postgres_async()
        try:
            with trace.get_tracer("worker").start_as_current_span("nightly job"):
                cursor = await connection.execute("SELECT generate_series(1, %s)", (4,))
                rows: list[tuple[int]] = await cursor.fetchall()
                with pytest.raises(services.driver("psycopg").Error):
                    await connection.execute(f"SELECT '{SECRET}'::integer")
                return rows
        finally:
            await connection.close()

    assert asyncio.run(job()) == [(1,), (2,), (3,), (4,)]
    [job_span] = [s for s in traced.spans() if s.name == "nightly job"]
    ok, failed = client_spans(traced)
    assert ok.attributes is not None
    assert ok.attributes["db.query.text"] == "SELECT generate_series(?, %s)"
    assert ok.attributes["db.response.returned_rows"] == 4
    assert ok.parent is not None and job_span.context is not None
    assert ok.parent.span_id == job_span.context.span_id
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["db.response.status_code"] == "22P02"
    assert SECRET not in everything_said(failed)


def test_sqlalchemy_statements_are_traced_through_the_driver(
        traced: AppTracing, tmp_path: Path) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'orm.db'}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        connection.execute(sqlalchemy.text("INSERT INTO t VALUES (:id, :v)"),
                           [{"id": 1, "v": SECRET}, {"id": 2, "v": "b"}])
        found = connection.execute(sqlalchemy.text(f"SELECT id FROM t WHERE v = '{SECRET}'"))
        assert found.scalar() == 1
    engine.dispose()

    texts = [span.attributes["db.query.text"] for span in client_spans(traced)
             if span.attributes and span.attributes["db.operation.name"] != "PRAGMA"]
    assert texts == ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
                     "INSERT INTO t VALUES (?, ?)", "SELECT id FROM t WHERE v = ?"]


# ---------------------------------------------------------------- on, off, failing


def test_with_tracing_off_statements_make_no_span_and_the_hooks_are_empty(
        db: Database, traced: AppTracing) -> None:
    assert sql.WATCH.observer is not None
    tracing.shutdown()
    assert sql.WATCH.observer is None
    assert len(db.run(f"SELECT id FROM {db.table}").fetchall()) == 3
    assert client_spans(traced) == []


def test_a_failure_of_datastore_tracing_never_changes_the_statement(
        traced: AppTracing, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("endpoint reader broke")

    monkeypatch.setattr(sql, "endpoint", broken)
    caplog.set_level(logging.ERROR, "bastion")
    connection = sqlite3.connect(":memory:")
    for _ in range(3):
        assert connection.execute("SELECT 40 + 2").fetchone() == (42,)
    assert client_spans(traced) == []
    assert sum("datastore tracing" in r.getMessage() for r in caplog.records) == 1


def test_long_statements_are_cut_before_they_are_sanitized(traced: AppTracing) -> None:
    from bastion.tracing.datastore import MAX_STATEMENT_CHARS

    connection = sqlite3.connect(":memory:")
    values = ", ".join(f"('{SECRET}{i}')" for i in range(MAX_STATEMENT_CHARS // 10))
    connection.execute("CREATE TABLE t (v TEXT)")
    connection.execute(f"INSERT INTO t VALUES {values}")
    insert = client_spans(traced)[-1]
    assert insert.attributes is not None
    text = str(insert.attributes["db.query.text"])
    assert text.startswith("INSERT INTO t VALUES (?)") and text.endswith(" …")
    assert len(text) <= MAX_STATEMENT_CHARS and SECRET not in text
