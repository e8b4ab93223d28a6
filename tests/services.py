"""Connections to the real backing services of the tests (started by scripts/services.sh).

A test that needs a service or a driver that is not there is skipped with the reason, except
under CI (`CI=true`), where it fails: CI must run them all. Credentials are the ones
scripts/services.sh sets up.
"""

from __future__ import annotations

import importlib
import os
import socket
import uuid
from types import ModuleType
from typing import Any, NoReturn

import pytest

HOST = "127.0.0.1"
POSTGRES: dict[str, Any] = {"host": HOST, "port": 5432, "user": "bastion", "password": "bastion",
            "dbname": "bastion_test"}
MARIADB: dict[str, Any] = {"host": HOST, "port": 3306, "user": "bastion", "password": "bastion",
           "database": "bastion_test"}
REDIS: dict[str, Any] = {"host": HOST, "port": 6379}


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: every service test must run)")
    pytest.skip(reason)


def driver(name: str) -> ModuleType:
    """Import a database driver, or skip (fail under CI) when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"driver {name} is not installed ({exc})")


def require(service: str, port: int) -> None:
    """Skip (fail under CI) unless something listens on HOST:port."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return
    except OSError as exc:
        unavailable(f"{service} is not running on {HOST}:{port} ({exc}); "
                    "start it with scripts/services.sh")


def connect_postgres(driver_name: str = "psycopg", **options: Any) -> Any:
    """A connection to PostgreSQL through `psycopg` (3) or `psycopg2`, autocommit on."""
    module = driver(driver_name)
    require("PostgreSQL", int(POSTGRES["port"]))
    if driver_name == "psycopg2":
        connection = module.connect(**POSTGRES, **options)
        connection.autocommit = True
        return connection
    return module.connect(**POSTGRES, autocommit=True, **options)


async def connect_postgres_async(**options: Any) -> Any:
    """An async psycopg (3) connection, autocommit on."""
    module = driver("psycopg")
    require("PostgreSQL", int(POSTGRES["port"]))
    return await module.AsyncConnection.connect(**POSTGRES, autocommit=True, **options)


def connect_mariadb(driver_name: str = "pymysql", **options: Any) -> Any:
    """A connection to MariaDB through `pymysql` or `MySQLdb` (mysqlclient), autocommit on."""
    module = driver(driver_name)
    require("MariaDB", int(MARIADB["port"]))
    params = dict(MARIADB)
    if driver_name == "MySQLdb":
        params["db"] = params.pop("database")
        params["passwd"] = params.pop("password")
    return module.connect(**params, autocommit=True, **options)


def table_name(prefix: str = "t") -> str:
    """A table name no other test (or test run) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
