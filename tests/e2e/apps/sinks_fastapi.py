"""A DELIBERATELY VULNERABLE FastAPI app (run by uvicorn) for the exploit-prevention end-to-end
tests: the same endpoints as sinks_flask.py, written the FastAPI way. Synchronous handlers run
in Starlette's thread pool (the request's context follows them there); the httpx fetch is
asynchronous. Nothing here is protected: `bastion-run` adds the protection.

The test sets SINKS_BASE, SINKS_SQLITE and SINKS_TABLE (see sinks_flask.py).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import urllib.request
from typing import Any

import httpx
import requests
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse, Response

from tests.services import MARIADB, POSTGRES

app = FastAPI()

FETCH_TIMEOUT_S = 5.0


def _base() -> str:
    return os.environ["SINKS_BASE"]


def _table() -> str:
    return os.environ["SINKS_TABLE"]


def connect(driver: str) -> Any:
    """A connection through `driver`, autocommit on, stacked statements accepted."""
    if driver == "sqlite3":
        return sqlite3.connect(os.environ["SINKS_SQLITE"], isolation_level=None)
    if driver == "psycopg":
        import psycopg

        return psycopg.connect(**POSTGRES, autocommit=True)
    if driver == "psycopg2":
        import psycopg2

        connection = psycopg2.connect(**POSTGRES)
        connection.autocommit = True
        return connection
    if driver == "pymysql":
        import pymysql
        from pymysql.constants import CLIENT

        return pymysql.connect(**MARIADB, autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)
    if driver == "MySQLdb":
        import MySQLdb

        params = dict(MARIADB, db=MARIADB["database"], passwd=MARIADB["password"])
        del params["database"], params["password"]
        return MySQLdb.connect(**params, autocommit=True)
    raise HTTPException(404)


@app.get("/health", response_class=PlainTextResponse)
def health() -> str:
    return "ok"


@app.get("/sql/{driver}/delete")
def sql_delete(driver: str, id: str) -> dict[str, int]:
    connection = connect(driver)
    try:
        # DELIBERATELY VULNERABLE: the id is pasted into the statement.
        statement = f"DELETE FROM {_table()} WHERE id = {id}"
        cursor = connection.cursor()
        if driver == "sqlite3":
            cursor.executescript(statement)  # sqlite3's execute() runs one statement only
        else:
            cursor.execute(statement)
        cursor.close()
        cursor = connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM {_table()}")
        (remaining,) = cursor.fetchone()
        return {"remaining": int(remaining)}
    finally:
        connection.close()


@app.get("/sql/{driver}/search")
def sql_search(driver: str, q: str) -> dict[str, list[list[int | str]]]:
    connection = connect(driver)
    try:
        cursor = connection.cursor()
        # DELIBERATELY VULNERABLE: the search text is pasted into a quoted literal.
        cursor.execute(f"SELECT id, name FROM {_table()} WHERE name LIKE '%{q}%' ORDER BY id")
        return {"rows": [[int(row[0]), str(row[1])] for row in cursor.fetchall()]}
    finally:
        connection.close()


@app.get("/file/read", response_class=PlainTextResponse)
def file_read(name: str) -> str:
    # DELIBERATELY VULNERABLE: the name is joined to the folder unchecked.
    with open(_base() + "/" + name, encoding="utf-8") as handle:
        return handle.read()


@app.get("/file/write")
def file_write(name: str, text: str = "") -> dict[str, int]:
    # DELIBERATELY VULNERABLE: the name is joined to the folder unchecked.
    with open(_base() + "/" + name, "w", encoding="utf-8") as handle:
        return {"written": handle.write(text)}


@app.get("/net/urllib")
def fetch_urllib(url: str) -> Response:
    # DELIBERATELY VULNERABLE: any URL the user gives is fetched (all of urllib's schemes).
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:
        return Response(answer.read(), media_type="text/plain")


@app.get("/net/requests")
def fetch_requests(url: str) -> Response:
    # DELIBERATELY VULNERABLE: any URL the user gives is fetched.
    answer = requests.get(url, timeout=FETCH_TIMEOUT_S)
    return Response(answer.content, media_type="text/plain")


@app.get("/net/httpx")
async def fetch_httpx(url: str) -> Response:
    # DELIBERATELY VULNERABLE: any URL the user gives is fetched.
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as client:
        answer = await client.get(url)
    return Response(answer.content, media_type="text/plain")


@app.get("/shell/system")
def shell_system(host: str) -> dict[str, int | str]:
    out = os.path.join(os.path.dirname(_base()), "system-out.txt")
    # DELIBERATELY VULNERABLE: the host is pasted into a shell command line.
    status = os.system(f"echo looked up {host} > {out}")
    with open(out, encoding="utf-8") as handle:
        return {"status": status, "output": handle.read()}


@app.get("/shell/run")
def shell_run(host: str) -> dict[str, int | str]:
    # DELIBERATELY VULNERABLE: the host is pasted into a shell command line.
    done = subprocess.run(f"echo looked up {host}", shell=True, capture_output=True, text=True,
                          check=False)
    return {"status": done.returncode, "output": done.stdout}


@app.get("/command")
def command(name: str, tool: str = "sort") -> dict[str, int | str]:
    # DELIBERATELY VULNERABLE: the user may name the program, and the file name is passed
    # where an option could go.
    done = subprocess.run([tool, name], cwd=_base(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)
    return {"status": done.returncode, "output": done.stdout}
