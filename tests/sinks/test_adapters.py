"""A refused sink through the real adapters: a tiny Flask app called through its WSGI
interface, and a bare ASGI app. The response is the block response, also when the
application catches BlockedRequest and answers something of its own."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import flask
import pytest

from bastion.blocking import BlockedRequest
from bastion.contrib.asgi import BastionASGIMiddleware
from bastion.contrib.flask import protect_app
from bastion.protection import Protection
from tests.contrib.test_asgi import body_of
from tests.contrib.test_asgi import call as call_asgi
from tests.sinks.support import read_events, rule_ids


def make_shop(database: Path) -> flask.Flask:
    app = flask.Flask(__name__)

    def rows(product_id: str) -> list[Any]:
        with sqlite3.connect(database) as connection:
            return connection.execute(
                f"SELECT name FROM products WHERE id = {product_id}").fetchall()

    @app.get("/product")
    def product() -> Any:
        return {"rows": rows(flask.request.args["id"])}

    @app.get("/forgiving")
    def forgiving() -> Any:
        try:
            return {"rows": rows(flask.request.args["id"])}
        except BlockedRequest:
            return {"rows": [], "note": "the app caught it"}

    return app


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE products (id INTEGER, name TEXT)")
        connection.execute("INSERT INTO products VALUES (1, 'tea'), (2, 'secret stock')")
    return path


@pytest.mark.parametrize("route", ["/product", "/forgiving"])
def test_flask_answers_the_block_response(
    protection: Protection, database: Path, tmp_path: Path, route: str
) -> None:
    app = make_shop(database)
    protect_app(app, protection)
    client = app.test_client()
    assert client.get(f"{route}?id=1").json == {"rows": [["tea"]]}
    # The query in the URL: Werkzeug's `query_string=` leaves it out of RAW_URI.
    blocked = client.get(f"{route}?id=1%20OR%201=1", headers={"Accept": "application/json"})
    assert blocked.status_code == 403
    assert b"secret stock" not in blocked.data and b"security_response_id" in blocked.data
    [event] = read_events(protection, tmp_path)
    assert rule_ids(event) == ["bst-rasp-005"] and event["blocked"]
    assert event["http"]["status"] == 403


def asgi_shop(database: Path, catch: bool) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        product_id = scope["query_string"].decode().removeprefix("id=").replace("%20", " ")
        try:
            with sqlite3.connect(database) as connection:
                body = repr(connection.execute(
                    f"SELECT name FROM products WHERE id = {product_id}").fetchall()).encode()
        except BlockedRequest:
            if not catch:
                raise
            body = b"the app caught it"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("catch", [False, True], ids=["raised", "caught"])
def test_asgi_answers_the_block_response(
    protection: Protection, database: Path, catch: bool
) -> None:
    app = BastionASGIMiddleware(asgi_shop(database, catch), protection)
    status, sent = call_asgi(app, "/product?id=1")
    assert status == 200 and body_of(sent) == b"[('tea',)]"
    status, sent = call_asgi(app, "/product?id=1%20OR%201=1",
                             headers={"accept": "application/json"})
    assert status == 403 and b"security_response_id" in body_of(sent)
    assert b"secret stock" not in body_of(sent) and b"caught" not in body_of(sent)


def test_a_sink_in_a_worker_thread_of_the_request_is_checked(
    protection: Protection, database: Path
) -> None:
    """Async frameworks run sync code in threads with a copy of the context (asyncio.to_thread,
    Starlette's threadpool): the request's context reaches the sink there."""

    def query(product_id: str) -> bytes:
        with sqlite3.connect(database) as connection:
            return repr(connection.execute(
                f"SELECT name FROM products WHERE id = {product_id}").fetchall()).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        product_id = scope["query_string"].decode().removeprefix("id=").replace("%20", " ")
        body = await asyncio.to_thread(query, product_id)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    wrapped = BastionASGIMiddleware(app, protection)
    assert call_asgi(wrapped, "/p?id=1")[0] == 200
    assert call_asgi(wrapped, "/p?id=1%20OR%201=1")[0] == 403


def test_a_sink_reached_while_a_streamed_body_is_produced_is_checked(
    protection: Protection, tmp_path: Path
) -> None:
    """The body of a WSGI response can be a generator that runs after the view returned:
    what it opens is still the request's, and a traversal there is refused."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret")
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_text("public")
    app = flask.Flask(__name__)

    @app.get("/stream")
    def stream() -> flask.Response:
        name = flask.request.args["name"]

        def chunks() -> Any:
            yield "start\n"
            with open(f"{files}/{name}") as handle:
                yield handle.read()

        return flask.Response(chunks())

    protect_app(app, protection)
    client = app.test_client()
    assert client.get("/stream?name=a.txt").data == b"start\npublic"
    with pytest.raises(BlockedRequest):
        client.get("/stream?name=../secret.txt").data  # noqa: B018 (the body is streamed)
    [event] = read_events(protection, tmp_path)
    assert rule_ids(event) == ["bst-rasp-001"]
