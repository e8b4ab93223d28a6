from __future__ import annotations

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
