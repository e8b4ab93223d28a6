"""SQL sinks against real databases: SQLite, PostgreSQL 15 (psycopg 3 and psycopg2) and
MariaDB (PyMySQL and mysqlclient). PostgreSQL and MariaDB come from scripts/services.sh;
without them those cases skip (fail under CI).

The canary is the table itself: the application deletes the row the user names, an attack
turns that into a tautology, and a refused statement leaves every row in place.
"""

from __future__ import annotations

import asyncio
import importlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bastion.blocking import BlockedRequest
from bastion.protection import Protection
from tests import services
from tests.sinks.support import count, read_events, request, rule_ids, spy

ATTACK = "1 OR 1=1"


@dataclass
class Database:
    driver: str
    system: str
    connection: Any
    table: str
    placeholder: str

    def rows(self) -> int:
        """Counted outside any request."""
        cursor = self.connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM {self.table}")
        (count,) = cursor.fetchone()
        cursor.close()
        return int(count)

    def delete(self, user_id: str) -> None:
        """The vulnerable code: the user's id pasted into the statement."""
        cursor = self.connection.cursor()
        cursor.execute(f"DELETE FROM {self.table} WHERE id = {user_id}")
        cursor.close()


def connect(driver: str) -> Any:
    if driver == "sqlite3":
        return sqlite3.connect(":memory:", isolation_level=None)
    if driver in ("psycopg", "psycopg2"):
        return services.connect_postgres(driver)
    return services.connect_mariadb(driver)


SYSTEMS = {"sqlite3": "sqlite", "psycopg": "postgresql", "psycopg2": "postgresql",
           "pymysql": "mysql", "MySQLdb": "mysql"}


@pytest.fixture(params=list(SYSTEMS))
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    driver: str = request.param
    connection = connect(driver)
    database = Database(driver, SYSTEMS[driver], connection, services.table_name(),
                        "?" if driver == "sqlite3" else "%s")
    cursor = connection.cursor()
    cursor.execute(f"CREATE TABLE {database.table} (id INTEGER PRIMARY KEY, name TEXT)")
    cursor.execute(f"INSERT INTO {database.table} (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    cursor.close()
    yield database
    cursor = connection.cursor()
    cursor.execute(f"DROP TABLE {database.table}")
    cursor.close()
    connection.close()


def test_injected_tautology_is_refused_before_it_runs(protection: Protection,
                                                      db: Database) -> None:
    with request(protection, {"id": ATTACK}) as ctx, pytest.raises(BlockedRequest):
        db.delete(ATTACK)
    assert db.rows() == 3
    assert ctx.blocked is not None and ctx.blocked.status == 403


def test_a_plain_id_deletes_its_row(protection: Protection, db: Database) -> None:
    with request(protection, {"id": "2"}) as ctx:
        db.delete("2")
    assert db.rows() == 2 and not ctx.events


def test_bound_parameters_are_data(protection: Protection, db: Database) -> None:
    attack = "x' OR 'a'='a"
    with request(protection, {"name": attack}) as ctx:
        cursor = db.connection.cursor()
        cursor.execute(f"DELETE FROM {db.table} WHERE name = {db.placeholder}", (attack,))
        cursor.close()
    assert db.rows() == 3 and not ctx.events


def test_each_call_is_one_evaluation_with_the_dialect(protection: Protection,
                                                      db: Database) -> None:
    insert = f"INSERT INTO {db.table} (id, name) VALUES ({db.placeholder}, {db.placeholder})"
    select = f"SELECT name FROM {db.table} WHERE id = 1"
    # The table's name as a request value: the statements hold user input, so the rules
    # look at them (a statement without any is passed after a quick look, see quiet_sink).
    with request(protection, {"table": db.table}) as ctx:
        seen = spy(ctx)
        cursor = db.connection.cursor()
        cursor.execute(select)
        cursor.fetchall()
        # PyMySQL and mysqlclient run a multi-row INSERT through their own execute(): the
        # application made one call, so it is one evaluation.
        cursor.executemany(insert, [(10, "x"), (11, "y"), (12, "z")])
        cursor.close()
    assert seen == [{"server.db.statement": select, "server.db.system": db.system},
                    {"server.db.statement": insert, "server.db.system": db.system}]
    assert db.rows() == 6


def test_monitor_mode_runs_the_statement_and_reports_the_stack(
    monitor: Protection, db: Database, tmp_path: Path
) -> None:
    with request(monitor, {"id": ATTACK}):
        db.delete(ATTACK)
    assert db.rows() == 0
    [event] = read_events(monitor, tmp_path)
    assert rule_ids(event) == ["bst-rasp-005"] and not event["blocked"]
    trigger = event["triggers"][0]
    assert trigger["rule_matches"][0]["parameters"][0]["value"].endswith(f"id = {ATTACK}")
    functions = [frame["function"] for frame in trigger["stack"]["frames"]]
    assert "Database.delete" in functions
    assert "test_monitor_mode_runs_the_statement_and_reports_the_stack" in functions


def test_outside_a_request_statements_run_unchecked(db: Database) -> None:
    db.delete(ATTACK)
    assert db.rows() == 0


# ---------------------------------------------------------------- sqlite3


def test_sqlite_connection_shortcuts_are_checked(protection: Protection,
                                                 memory: sqlite3.Connection) -> None:
    with request(protection, {"id": ATTACK}):
        with pytest.raises(BlockedRequest):
            memory.execute(f"DELETE FROM t WHERE id = {ATTACK}")
        with pytest.raises(BlockedRequest):
            memory.executescript(f"DELETE FROM t WHERE id = {ATTACK};")
        with pytest.raises(BlockedRequest):
            memory.executemany(f"DELETE FROM t WHERE id = {ATTACK} AND name = ?", [("a",)])
        with pytest.raises(BlockedRequest):
            memory.cursor().executescript(f"DELETE FROM t WHERE id = {ATTACK};")
    assert count(memory) == 2


def test_sqlite_factories_of_the_application_are_kept(protection: Protection) -> None:
    class AppConnection(sqlite3.Connection):
        def shout(self) -> str:
            return "connection"

    class AppCursor(sqlite3.Cursor):
        def shout(self) -> str:
            return "cursor"

    connection = sqlite3.connect(":memory:", factory=AppConnection)
    positional = sqlite3.connect(":memory:", 5.0, 0, None, True, AppConnection)
    assert isinstance(connection, AppConnection) and connection.shout() == "connection"
    assert isinstance(positional, AppConnection)
    cursor = connection.cursor(AppCursor)
    assert isinstance(cursor, AppCursor) and cursor.shout() == "cursor"
    assert isinstance(connection.cursor(factory=AppCursor), AppCursor)
    with request(protection, {"id": ATTACK}):
        for made in (cursor, connection.cursor(), positional.cursor(), connection):
            with pytest.raises(BlockedRequest):
                made.execute(f"SELECT {ATTACK}")


def test_sqlite_connect_through_dbapi2_is_hooked(protection: Protection) -> None:
    """SQLAlchemy's pysqlite dialect calls `sqlite3.dbapi2.connect`."""
    connection = sqlite3.dbapi2.connect(":memory:")
    with request(protection, {"id": ATTACK}), pytest.raises(BlockedRequest):
        connection.execute(f"SELECT {ATTACK}")


def test_sqlalchemy_ends_in_the_hooked_driver(protection: Protection, tmp_path: Path) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'orm.db'}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        connection.execute(sqlalchemy.text("INSERT INTO t VALUES (1), (2)"))
    with request(protection, {"id": ATTACK}), pytest.raises(BlockedRequest), \
            engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"DELETE FROM t WHERE id = {ATTACK}"))
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT COUNT(*) FROM t")).scalar() == 2
    engine.dispose()


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_table() -> Iterator[tuple[Any, str]]:
    connection = services.connect_postgres("psycopg")
    table = services.table_name()
    connection.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')")
    yield connection, table
    connection.execute(f"DROP TABLE {table}")
    connection.close()


def pg_rows(connection: Any, table: str) -> int:
    return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_psycopg_composed_and_bytes_statements_are_read(
    protection: Protection, pg_table: tuple[Any, str]
) -> None:
    from psycopg import sql

    connection, table = pg_table
    with request(protection, {"id": ATTACK}) as ctx:
        seen = spy(ctx)
        # A literal stays a literal, however it reads.
        connection.execute(sql.SQL("SELECT {} FROM {}").format(sql.Literal(ATTACK),
                                                             sql.Identifier(table)))
        with pytest.raises(BlockedRequest):
            connection.execute(sql.SQL("DELETE FROM {} WHERE id = " + ATTACK).format(
                sql.Identifier(table)))
    assert seen[0]["server.db.statement"] == f"SELECT '{ATTACK}' FROM \"{table}\""
    with request(protection, {"id": ATTACK}), pytest.raises(BlockedRequest):
        connection.execute(f"DELETE FROM {table} WHERE id = {ATTACK}".encode())
    assert pg_rows(connection, table) == 2


def test_psycopg_server_and_client_cursors_are_checked(
    protection: Protection, pg_table: tuple[Any, str]
) -> None:
    import psycopg

    connection, table = pg_table
    statement = f"SELECT name FROM {table} WHERE id = {ATTACK}"
    with request(protection, {"id": ATTACK}):
        with pytest.raises(BlockedRequest), connection.transaction():
            connection.cursor(name="named").execute(statement)
        with pytest.raises(BlockedRequest):
            psycopg.ClientCursor(connection).execute(statement)
        with pytest.raises(BlockedRequest):
            list(connection.cursor().stream(statement))


def test_psycopg_async_cursors_are_checked(protection: Protection,
                                           pg_table: tuple[Any, str]) -> None:
    _, table = pg_table

    async def scenario() -> tuple[list[dict[str, object]], int]:
        connection = await services.connect_postgres_async()
        try:
            with request(protection, {"id": ATTACK}) as ctx:
                seen = spy(ctx)
                cursor = connection.cursor()
                await cursor.execute(f"SELECT name FROM {table} WHERE id = 1")
                with pytest.raises(BlockedRequest):
                    await cursor.execute(f"DELETE FROM {table} WHERE id = {ATTACK}")
                with pytest.raises(BlockedRequest):
                    await connection.execute(f"DELETE FROM {table} WHERE id = {ATTACK}")
            cursor = await connection.execute(f"SELECT COUNT(*) FROM {table}")
            row = await cursor.fetchone()
            return seen, int(row[0])
        finally:
            await connection.close()

    seen, rows = asyncio.run(scenario())
    assert rows == 2 and len(seen) == 3
    assert seen[0] == {"server.db.statement": f"SELECT name FROM {table} WHERE id = 1",
                       "server.db.system": "postgresql"}


def test_psycopg2_cursor_factories_and_composed(protection: Protection,
                                                pg_table: tuple[Any, str]) -> None:
    psycopg2 = services.driver("psycopg2")
    from psycopg2 import extras, sql

    _, table = pg_table

    class AppConnection(psycopg2.extensions.connection):  # type: ignore[misc,name-defined]
        marker = "app"

    connection = services.connect_postgres("psycopg2", connection_factory=AppConnection,
                                           cursor_factory=extras.RealDictCursor)
    try:
        assert isinstance(connection, AppConnection)
        cursor = connection.cursor()
        assert isinstance(cursor, extras.RealDictCursor)
        cursor.execute(f"SELECT name FROM {table} WHERE id = 1")
        assert cursor.fetchone() == {"name": "a"}
        statement = sql.SQL("DELETE FROM {} WHERE id = " + ATTACK).format(sql.Identifier(table))
        with request(protection, {"id": ATTACK}):
            with pytest.raises(BlockedRequest):
                cursor.execute(statement)
            with pytest.raises(BlockedRequest):
                connection.cursor(cursor_factory=extras.DictCursor).execute(statement)
            with pytest.raises(BlockedRequest):
                connection.cursor("named", extras.NamedTupleCursor).execute(statement)
    finally:
        connection.close()
    assert pg_rows(pg_table[0], table) == 2


# ---------------------------------------------------------------- MariaDB


@pytest.mark.parametrize("driver", ["pymysql", "MySQLdb"])
def test_mysql_dict_cursors_and_bytes_are_checked(protection: Protection, driver: str) -> None:
    services.driver(driver)  # skips when the driver is not installed
    # mysqlclient imports its cursors module only once a connection is made: import it here
    dict_cursor = importlib.import_module(f"{driver}.cursors").DictCursor
    connection = services.connect_mariadb(driver, cursorclass=dict_cursor)
    table = services.table_name()
    try:
        cursor = connection.cursor()
        cursor.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
        cursor.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')")
        with request(protection, {"id": ATTACK}):
            with pytest.raises(BlockedRequest):
                cursor.execute(f"DELETE FROM {table} WHERE id = {ATTACK}")
            with pytest.raises(BlockedRequest):
                cursor.execute(f"DELETE FROM {table} WHERE id = {ATTACK}".encode())
        cursor.execute(f"SELECT name FROM {table} WHERE id = 2")
        assert cursor.fetchone() == {"name": "b"}
        cursor.execute(f"DROP TABLE {table}")
    finally:
        connection.close()


def test_a_statement_clean_in_one_request_is_checked_again_in_the_next(
    protection: Protection, memory: sqlite3.Connection
) -> None:
    """The application may write the same text itself; what matters is whether this
    request's input made it."""
    statement = f"SELECT name FROM t WHERE id = {ATTACK}"
    with request(protection, {"page": "1"}) as ctx:
        assert len(memory.execute(statement).fetchall()) == 2
    assert not ctx.events
    with request(protection, {"id": ATTACK}), pytest.raises(BlockedRequest):
        memory.execute(statement)
