"""What every hook shares: installing, the outside-a-request path, fail-open, one decision per
request, the stack in the event, and Bastion's own I/O staying out of the checks."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bastion
from bastion import sinks
from bastion.blocking import BlockedRequest
from bastion.config import Settings
from bastion.context import MAX_STACK_FRAMES, stack_frames
from bastion.protection import Protection
from bastion.remote.configfile import ConfigFileWatcher
from tests.contrib.failures import break_part
from tests.sinks.support import read_events, request, spy


def test_install_is_idempotent_and_uninstall_puts_the_originals_back() -> None:
    hooked_open, hooked_system = builtins.open, os.system
    sinks.install()
    assert builtins.open is hooked_open and io.open is hooked_open  # one hook for both names
    assert hooked_open.__bastion_original__.__name__ == "open"  # type: ignore[attr-defined]
    assert not hasattr(hooked_open.__bastion_original__, "__bastion_original__")  # type: ignore[attr-defined]
    sinks.uninstall()
    assert not hasattr(builtins.open, "__bastion_original__")
    assert io.open is builtins.open
    assert os.system is hooked_system.__bastion_original__  # type: ignore[attr-defined]
    assert sqlite3.connect is sqlite3.dbapi2.connect
    assert not hasattr(sqlite3.connect, "__bastion_original__")
    sinks.install()
    assert hasattr(builtins.open, "__bastion_original__")


def test_hooks_look_like_the_functions_they_wrap() -> None:
    assert builtins.open.__name__ == "open" and builtins.open.__doc__
    assert subprocess.Popen.__init__.__qualname__ == "Popen.__init__"


def test_outside_a_request_no_hook_evaluates_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def explode(*args: object) -> None:
        raise AssertionError("checked outside a request")

    monkeypatch.setattr("bastion.sinks.check.check", explode)
    (tmp_path / "f").write_text("x")
    with open(tmp_path / "f") as handle:
        assert handle.read() == "x"
    assert sqlite3.connect(":memory:").execute("SELECT 1 OR 1=1").fetchone() == (1,)
    assert os.system("true") == 0
    assert subprocess.run(["true"], check=True).returncode == 0


def test_engine_failure_lets_the_call_run_and_is_logged_once(
    protection: Protection, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE t (id INTEGER)")
    connection.execute("INSERT INTO t VALUES (1), (2)")
    with request(protection, {"id": "1 OR 1=1"}):
        message = break_part(monkeypatch, protection, "engine")
        connection.execute("DELETE FROM t WHERE id = 1 OR 1=1")
        open(tmp_path / "1 OR 1=1", "w").close()  # holds the input: the rules are asked
    assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    assert protection.errors["waf"] == 2
    assert sum(message in record.getMessage() for record in caplog.records) == 1


def test_once_blocked_every_later_sink_of_the_request_is_refused(
    protection: Protection, tmp_path: Path
) -> None:
    """The application may catch BlockedRequest and carry on: the request stays blocked."""
    connection = sqlite3.connect(":memory:")
    with request(protection, {"id": "1 OR 1=1"}) as ctx:
        with contextlib.suppress(BlockedRequest):  # the application swallows it
            connection.execute("SELECT 1 WHERE 1 = 1 OR 1=1")
        with pytest.raises(BlockedRequest):
            connection.execute("SELECT 2")
        with pytest.raises(BlockedRequest), open(tmp_path / "harmless", "w"):
            pass
    assert ctx.blocked is not None
    assert not (tmp_path / "harmless").exists()


def test_monitor_mode_event_carries_a_bounded_stack_without_bastion_frames(
    monitor: Protection, tmp_path: Path
) -> None:
    connection = sqlite3.connect(":memory:")

    def deep(levels: int) -> None:
        if levels:
            deep(levels - 1)
        else:
            connection.execute("SELECT 1 WHERE 1 = 1 OR 1=1")

    with request(monitor, {"id": "1 OR 1=1"}):
        deep(MAX_STACK_FRAMES + 10)
    [event] = read_events(monitor, tmp_path)
    stack = event["triggers"][0]["stack"]
    frames = stack["frames"]
    assert len(frames) == MAX_STACK_FRAMES and stack["dropped_frames"] > 0
    assert all(set(frame) == {"file", "line", "function"} for frame in frames)
    # Most recent call last: the innermost frames are kept, down to the call of the sink.
    assert frames[-1]["function"].endswith("deep") and frames[-1]["file"] == __file__
    bastion_dir = str(Path(bastion.__file__).parent)
    assert not any(frame["file"].startswith(bastion_dir) for frame in frames)


def test_stack_frames_name_the_caller_and_its_line() -> None:
    line, stack = sys._getframe().f_lineno, stack_frames(limit=3)
    assert stack["frames"][-1] == {"file": __file__, "line": line,
                                   "function": "test_stack_frames_name_the_caller_and_its_line"}
    assert len(stack["frames"]) == 3 and stack["dropped_frames"] > 0


def test_bastion_own_io_is_not_evaluated(
    protection: Protection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event log writer, the rules loader (pattern cache) and the config file watcher run
    in their own threads, which no request context reaches, even when they start during one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BASTION_PATTERN_CACHE", str(cache))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"version": "2.2", "rules": [{
        "id": "r1", "name": "r1", "tags": {"type": "t", "category": "c"},
        "conditions": [{"operator": "match_regex", "parameters": {
            "inputs": [{"address": "server.request.query"}], "regex": "own-io-[0-9]+"}}]}]}))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"blocked_ips": ["198.51.100.7"]}))
    with request(protection, {"id": "1"}) as ctx:
        seen = spy(ctx)
        loaded = Protection(Settings(rules=str(rules), event_log=str(tmp_path / "own.jsonl")),
                            background=True)
        assert loaded.wait_ready(60)
        watcher = ConfigFileWatcher(loaded, str(config), interval_s=0.05)
        watcher.start()
        deadline = time.monotonic() + 30
        while watcher.applied_digest is None and time.monotonic() < deadline:
            time.sleep(0.02)
        watcher.stop()
        loaded.event_log.submit({"id": "own-io", "triggers": []})
        assert loaded.event_log.flush()
        loaded.close()
    assert watcher.applied_digest is not None  # the watcher did read its file
    assert any(cache.iterdir())  # the loader did write its cache
    assert (tmp_path / "own.jsonl").read_text()  # the writer did write
    assert seen == []


@pytest.mark.parametrize(("value", "hooked"), [(None, True), ("false", False), ("true", True)])
def test_protect_installs_the_hooks_unless_turned_off(
    tmp_path: Path, value: str | None, hooked: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(BASTION_EVENT_LOG="off", BASTION_RULES=str(_tiny_rules(tmp_path)))
    if value is not None:
        env["BASTION_EXPLOIT_PREVENTION"] = value
    program = ("import builtins, bastion, sqlite3; bastion.protect(); "
               "print(hasattr(builtins.open, '__bastion_original__'), "
               "hasattr(sqlite3.connect, '__bastion_original__'))")
    child = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                           text=True, timeout=120, check=True)
    assert child.stdout.split() == [str(hooked), str(hooked)]


def _tiny_rules(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"version": "2.2", "rules": []}))
    return path


def test_a_hook_failure_is_logged_once_per_family(
    protection: Protection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "bastion")
    with request(protection, {"x": "y"}):
        for _ in range(3):
            with pytest.raises(TypeError):
                os.system(12345)  # type: ignore[arg-type]  # os.system's own TypeError
    assert protection.errors == {"exploit prevention (shell)": 3}
    assert len([r for r in caplog.records if "exploit prevention" in r.getMessage()]) == 1


def test_with_checks_off_a_hook_inside_a_request_runs_the_call_unexamined(
    protection: Protection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exploit prevention off but tracing on: the hooks stay for the datastore spans and ask
    the rules nothing."""
    def explode(*args: object) -> None:
        raise AssertionError("checked with exploit prevention off")

    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE t (id INTEGER)")
    connection.execute("INSERT INTO t VALUES (1), (2)")
    monkeypatch.setattr(sinks.check.CHECKING, "on", False)
    monkeypatch.setattr("bastion.sinks.check.check", explode)
    with request(protection, {"id": "1 OR 1=1"}):
        connection.execute("DELETE FROM t WHERE id = 1 OR 1=1")
    assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
