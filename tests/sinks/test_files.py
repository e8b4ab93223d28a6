"""File sinks: `open`, `io.open`, `os.open` and pathlib, against real files in a temp dir.

The canary is a secret file next to the application's directory: an attack names it with
`../`, and the application opens what it is given for writing, which would empty it.
"""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bastion.blocking import BlockedRequest
from bastion.protection import Protection
from tests.sinks.support import read_events, request, rule_ids, spy

SECRET = "the secret"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The application's upload directory, with the secret one level up."""
    (tmp_path / "secret.txt").write_text(SECRET)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    return uploads


def write_with_open(path: str) -> None:
    with open(path, "w") as handle:
        handle.write("overwritten")


def write_with_io_open(path: str) -> None:
    with io.open(path, "w") as handle:  # noqa: UP020 - the io name is what is tested
        handle.write("overwritten")


def write_with_os_open(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"overwritten")
    os.close(fd)


def write_with_pathlib(path: str) -> None:
    pathlib.Path(path).write_text("overwritten")


def write_with_bytes_path(path: str) -> None:
    with open(os.fsencode(path), "wb") as handle:
        handle.write(b"overwritten")


WRITERS: list[Callable[[str], None]] = [
    write_with_open, write_with_io_open, write_with_os_open, write_with_pathlib,
    write_with_bytes_path,
]


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__)
def test_traversal_is_refused_before_the_file_is_opened(
    protection: Protection, base: Path, write: Callable[[str], None]
) -> None:
    name = "../secret.txt"
    with request(protection, {"name": name}) as ctx, pytest.raises(BlockedRequest):
        write(f"{base}/{name}")
    assert (base.parent / "secret.txt").read_text() == SECRET
    assert ctx.blocked is not None and ctx.blocked.status == 403


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__)
def test_a_name_inside_the_directory_is_written(
    protection: Protection, base: Path, write: Callable[[str], None]
) -> None:
    with request(protection, {"name": "notes.txt"}) as ctx:
        write(f"{base}/notes.txt")
    assert (base / "notes.txt").read_text() == "overwritten"
    assert ctx.blocked is None and not ctx.events


@pytest.mark.parametrize("read", [
    lambda p: pathlib.Path(p).read_text(),
    lambda p: pathlib.Path(p).read_bytes().decode(),
    lambda p: pathlib.Path(p).open().read(),  # noqa: SIM115 - refused before it opens
], ids=["read_text", "read_bytes", "Path.open"])
def test_pathlib_reads_reach_the_hook(
    protection: Protection, base: Path, read: Callable[[str], str]
) -> None:
    with request(protection, {"name": "../secret.txt"}), pytest.raises(BlockedRequest):
        read(f"{base}/../secret.txt")


def test_each_open_is_one_evaluation_of_its_path(protection: Protection, base: Path) -> None:
    target = base / "a.txt"
    target.write_text("a")
    with request(protection, {"name": "a.txt"}) as ctx:
        seen = spy(ctx)
        open(target).close()
        pathlib.Path(target).read_text()
        os.close(os.open(os.fsencode(target), os.O_RDONLY))
        # An opener calling os.open is part of the same open: still one evaluation.
        open(target, opener=lambda path, flags: os.open(path, flags)).close()
    assert seen == [{"server.io.fs.file": str(target)}] * 4


def test_a_file_descriptor_opens_nothing_new_and_is_not_evaluated(
    protection: Protection, base: Path
) -> None:
    fd = os.open(base / "fd.txt", os.O_WRONLY | os.O_CREAT)
    with request(protection, {"name": "x"}) as ctx:
        seen = spy(ctx)
        with open(fd, "w") as handle:
            handle.write("via fd")
    assert seen == []
    assert (base / "fd.txt").read_text() == "via fd"


def test_monitor_mode_opens_the_file_and_reports_the_stack(
    monitor: Protection, base: Path, tmp_path: Path
) -> None:
    with request(monitor, {"name": "../secret.txt"}), open(f"{base}/../secret.txt") as handle:
        content = handle.read()
    assert content == SECRET
    [event] = read_events(monitor, tmp_path)
    assert rule_ids(event) == ["bst-rasp-001"] and not event["blocked"]
    frames = event["triggers"][0]["stack"]["frames"]
    assert frames[-1]["function"] == "test_monitor_mode_opens_the_file_and_reports_the_stack"
    assert frames[-1]["file"] == __file__


def test_an_argument_the_hook_cannot_read_is_reported_once_and_the_call_runs(
    protection: Protection, caplog: pytest.LogCaptureFixture
) -> None:
    odd: Any = object()
    with request(protection, {"name": "x"}):
        for _ in range(2):
            # open's own error: the call ran unchanged.
            with pytest.raises(TypeError), open(odd):
                pass
    assert protection.errors == {"exploit prevention (file)": 2}
    logged = [r for r in caplog.records if "exploit prevention (file)" in r.getMessage()]
    assert len(logged) == 1
