"""sqlite3's hooks stand aside once a query runs while no request is being handled and
nothing observes, and are back in place, checking, whenever a request's code may run
(sinks/sql.py, activity.py)."""

from __future__ import annotations

import io
import logging
import sqlite3
import threading
from typing import Any

import pytest

from bastion.activity import ACTIVITY, Activity
from bastion.blocking import BlockedRequest
from bastion.contrib.wsgi import BastionMiddleware
from bastion.protection import Protection
from bastion.sinks import sql
from tests.sinks.support import request

ATTACK = "1 OR 1=1"


@pytest.fixture(autouse=True)
def idle_process() -> None:
    """These tests start from a process that handles no request: an earlier test that left
    a WSGI body neither read to its end nor closed would keep the hooks in place."""
    assert not ACTIVITY.busy, "an earlier test left a request open (an unclosed WSGI body)"


def hooked(connection: sqlite3.Connection) -> bool:
    """Whether the connection's class carries its own execute (the hook) right now."""
    return "execute" in vars(type(connection))


def database() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE t (id INTEGER)")
    connection.execute("INSERT INTO t VALUES (1), (2)")
    return connection


def test_hooks_are_in_place_only_while_a_request_is_handled(protection: Protection) -> None:
    connection = database()
    cursor = connection.cursor()
    assert type(connection) is not sqlite3.Connection  # a hooked connection, standing aside
    assert not hooked(connection) and "execute" not in vars(type(cursor))
    assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)
    with request(protection, {"id": ATTACK}):
        assert hooked(connection) and "execute" in vars(type(cursor))
        with pytest.raises(BlockedRequest):
            connection.execute(f"DELETE FROM t WHERE id = {ATTACK}")
        with pytest.raises(BlockedRequest):
            cursor.execute(f"DELETE FROM t WHERE id = {ATTACK}")
    assert hooked(connection)  # in place until a query finds the process idle
    assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)
    assert not hooked(connection)


def test_a_request_still_running_keeps_them_when_another_ends(protection: Protection) -> None:
    connection = database()
    connection_lock = threading.Lock()
    inside, other_done = threading.Event(), threading.Event()
    outcome: list[Any] = []

    def long_request() -> None:
        with request(protection, {"id": ATTACK}):
            inside.set()
            other_done.wait(5)
            try:
                with connection_lock:
                    connection.execute(f"DELETE FROM t WHERE id = {ATTACK}")
                outcome.append("ran")
            except BlockedRequest:
                outcome.append("blocked")

    thread = threading.Thread(target=long_request)
    thread.start()
    assert inside.wait(5)
    with request(protection, {"q": "shoes"}), connection_lock:
        connection.execute("SELECT 1")
    with connection_lock:  # outside any request, while the other one is still handled
        assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)
    assert hooked(connection)
    other_done.set()
    thread.join(5)
    assert outcome == ["blocked"]
    assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)
    assert not hooked(connection)


def test_a_streamed_body_keeps_them_until_it_is_closed(protection: Protection) -> None:
    """A WSGI body produced after the application returned runs with its request current
    again (contrib/wsgi.py): its statements are checked, even when nothing else is handled
    in between."""
    connection = database()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])

        def chunks() -> Any:
            yield b"first\n"
            connection.execute("SELECT 1")  # no user input: runs
            yield b"second\n"
            connection.execute(f"DELETE FROM t WHERE id = {ATTACK}")
            yield b"never\n"

        return chunks()

    middleware = BastionMiddleware(app, protection)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "id=1+OR+1%3D1",
               "wsgi.input": io.BytesIO(b""), "REMOTE_ADDR": "203.0.113.9",
               "wsgi.url_scheme": "http", "SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    body = middleware(environ, lambda status, headers, exc_info=None: None)
    connection.execute("SELECT 2")  # between the application's return and the body
    assert hooked(connection)
    received = []
    with pytest.raises(BlockedRequest):
        for chunk in body:
            received.append(chunk)
    assert received == [b"first\n", b"second\n"]
    body.close()  # type: ignore[attr-defined]
    assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)
    assert not hooked(connection)


class Recorder:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def before(self, site: Any, addresses: Any, args: Any, kwargs: Any) -> object:
        self.statements.append(addresses["server.db.statement"])
        return None

    def after(self, handle: object, result: object, error: BaseException | None) -> None:
        pass


def test_an_observer_keeps_them_in_place_outside_requests() -> None:
    connection = database()
    recorder = Recorder()
    sql.WATCH.set(recorder)
    try:
        assert hooked(connection)
        connection.execute("SELECT 42")
    finally:
        sql.WATCH.set(None)
    connection.execute("SELECT 43")
    assert not hooked(connection)
    connection.execute("SELECT 44")
    assert recorder.statements == ["SELECT 42"]


def test_activity_counts_pairs_and_survives_a_failing_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    activity = Activity()
    seen: list[bool] = []
    activity.listen(lambda: seen.append(activity.busy))

    def broken() -> None:
        raise RuntimeError("listener fault")

    activity.listen(broken)
    with caplog.at_level(logging.ERROR, logger="bastion"):
        activity.enter()
        activity.enter()
        activity.leave()
        assert activity.busy
        activity.leave()
        activity.leave()  # unpaired: ignored
    assert not activity.busy
    assert seen == [False, True, False]
    assert sum("listener fault" in record.getMessage() for record in caplog.records) == 1
