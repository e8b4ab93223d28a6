"""A DELIBERATELY VULNERABLE Flask app (run by gunicorn) for the exploit-prevention end-to-end
tests: one endpoint per sink kind pastes a query parameter into a SQL statement, a path, a URL,
a shell line or an argv. Nothing here is protected: `bastion-run` adds the protection.

The test sets where things are: SINKS_BASE (the folder files are served from, its parent
holds what must stay out of reach), SINKS_SQLITE (a SQLite file), SINKS_TABLE (the canary
table in every database). PostgreSQL and MariaDB credentials are tests/services.py's.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import urllib.request
from typing import Any

import httpx
import requests
from flask import Flask, Response, abort, jsonify, request

from tests.services import MARIADB, POSTGRES

app = Flask(__name__)

FETCH_TIMEOUT_S = 5.0


def _base() -> str:
    return os.environ["SINKS_BASE"]


def _table() -> str:
    return os.environ["SINKS_TABLE"]


def connect(driver: str) -> Any:
    """A connection through `driver`, autocommit on; the MySQL drivers accept stacked
    statements (mysqlclient does by default), as many applications' settings do."""
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
    abort(404)


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/sql/<driver>/delete")
def sql_delete(driver: str) -> Response:
    connection = connect(driver)
    try:
        # DELIBERATELY VULNERABLE: the id is pasted into the statement.
        statement = f"DELETE FROM {_table()} WHERE id = {request.args['id']}"
        cursor = connection.cursor()
        if driver == "sqlite3":
            cursor.executescript(statement)  # sqlite3's execute() runs one statement only
        else:
            cursor.execute(statement)
        cursor.close()
        cursor = connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM {_table()}")
        (remaining,) = cursor.fetchone()
        return jsonify(remaining=int(remaining))
    finally:
        connection.close()


@app.get("/sql/<driver>/search")
def sql_search(driver: str) -> Response:
    connection = connect(driver)
    try:
        cursor = connection.cursor()
        # DELIBERATELY VULNERABLE: the search text is pasted into a quoted literal.
        cursor.execute(f"SELECT id, name FROM {_table()} "
                       f"WHERE name LIKE '%{request.args['q']}%' ORDER BY id")
        return jsonify(rows=[[int(row[0]), str(row[1])] for row in cursor.fetchall()])
    finally:
        connection.close()


@app.get("/file/read")
def file_read() -> Response:
    # DELIBERATELY VULNERABLE: the name is joined to the folder unchecked.
    with open(_base() + "/" + request.args["name"], encoding="utf-8") as handle:
        return Response(handle.read(), mimetype="text/plain")


@app.get("/file/write")
def file_write() -> Response:
    # DELIBERATELY VULNERABLE: the name is joined to the folder unchecked.
    with open(_base() + "/" + request.args["name"], "w", encoding="utf-8") as handle:
        written = handle.write(request.args.get("text", ""))
    return jsonify(written=written)


@app.get("/net/urllib")
def fetch_urllib() -> Response:
    # DELIBERATELY VULNERABLE: any URL the user gives is fetched (all of urllib's schemes).
    with urllib.request.urlopen(request.args["url"], timeout=FETCH_TIMEOUT_S) as answer:
        return Response(answer.read(), mimetype="text/plain")


@app.get("/net/requests")
def fetch_requests() -> Response:
    # DELIBERATELY VULNERABLE: any URL the user gives is fetched.
    answer = requests.get(request.args["url"], timeout=FETCH_TIMEOUT_S)
    return Response(answer.content, mimetype="text/plain")


@app.get("/net/httpx")
def fetch_httpx() -> Response:
    # DELIBERATELY VULNERABLE: any URL the user gives is fetched.
    answer = httpx.get(request.args["url"], timeout=FETCH_TIMEOUT_S)
    return Response(answer.content, mimetype="text/plain")


@app.get("/shell/system")
def shell_system() -> Response:
    out = os.path.join(os.path.dirname(_base()), "system-out.txt")
    # DELIBERATELY VULNERABLE: the host is pasted into a shell command line.
    status = os.system(f"echo looked up {request.args['host']} > {out}")
    with open(out, encoding="utf-8") as handle:
        return jsonify(status=status, output=handle.read())


@app.get("/shell/run")
def shell_run() -> Response:
    # DELIBERATELY VULNERABLE: the host is pasted into a shell command line.
    done = subprocess.run(f"echo looked up {request.args['host']}", shell=True,
                          capture_output=True, text=True, check=False)
    return jsonify(status=done.returncode, output=done.stdout)


@app.get("/command")
def command() -> Response:
    # DELIBERATELY VULNERABLE: the user may name the program, and the file name is passed
    # where an option could go.
    argv = [request.args.get("tool", "sort"), request.args["name"]]
    done = subprocess.run(argv, cwd=_base(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, check=False)
    return jsonify(status=done.returncode, output=done.stdout)
