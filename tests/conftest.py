"""Session checks: the suite runs the build it means to run."""

from __future__ import annotations

import os

import pytest

from bastion import native


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = native.stale()
    if stale:
        pytest.exit(f"compiled modules older than their sources: {', '.join(stale)}; "
                    "run `make native` (or reinstall) first", returncode=3)
    if os.environ.get("BASTION_EXPECT_PURE") and native.compiled():
        pytest.exit("BASTION_EXPECT_PURE is set but compiled modules were imported: "
                    f"{', '.join(native.compiled())}", returncode=3)
