from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion import sinks
from bastion.protection import Protection
from tests.sinks.support import make_protection


@pytest.fixture(autouse=True)
def hooks() -> Iterator[None]:
    """The sinks hooked for the test, the originals back after it."""
    sinks.install()
    yield
    sinks.uninstall()


@pytest.fixture
def protection(tmp_path: Path) -> Iterator[Protection]:
    made = make_protection(tmp_path, "block")
    yield made
    made.close()


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[Protection]:
    made = make_protection(tmp_path, "monitor")
    yield made
    made.close()


@pytest.fixture
def memory() -> Iterator[sqlite3.Connection]:
    """An SQLite database in memory: table `t`, rows 1 'a' and 2 'b' (see support.count)."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    yield connection
    connection.close()
