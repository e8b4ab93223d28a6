"""The event log: valid JSON Lines, no secrets on disk, drops and errors counted, never raised."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.report import EventLog, Obfuscator
from bastion.report import eventlog as eventlog_module
from bastion.waf import load_ruleset
from tests.report import make_event, parameter

OBFUSCATOR = Obfuscator()


@pytest.fixture
def logs() -> Iterator[list[EventLog]]:
    """Event logs made by a test, closed after it so that no writer thread outlives it."""
    made: list[EventLog] = []
    yield made
    for log in made:
        log.close(timeout=5)


def open_log(logs: list[EventLog], destination: str | Path, **options: Any) -> EventLog:
    log = EventLog(str(destination), options.pop("obfuscator", OBFUSCATOR), **options)
    logs.append(log)
    return log


def read_lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text[:-1].split("\n")]


def value_of(event: dict[str, Any]) -> Any:
    """The value of the first parameter of the first trigger."""
    return event["triggers"][0]["rule_matches"][0]["parameters"][0]["value"]


def attack_event(n: int = 0) -> dict[str, Any]:
    return make_event([parameter(["q", 0], f"{n}' OR 1=1--", "' OR 1=")])


def report_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bastion.report"]


class GatedObfuscator:
    """An obfuscator that holds the writer thread until released: a slow disk, on demand.
    (It wraps one rather than subclassing: the Obfuscator is a compiled class.)"""

    def __init__(self) -> None:
        self._real = Obfuscator()
        self.entered = threading.Event()
        self.release = threading.Event()

    def redact_event(self, event: dict[str, Any]) -> dict[str, Any]:
        self.entered.set()
        assert self.release.wait(10)
        return self._real.redact_event(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_each_event_is_one_json_line(tmp_path: Path, logs: list[EventLog]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"before":true}\n', encoding="utf-8")  # appended to, never truncated
    log = open_log(logs, path)
    unicode_event = make_event([parameter(["q"], "é\u2028<script>", "<script>")])
    for event in (attack_event(1), attack_event(2), unicode_event):
        assert log.submit(event)
    assert log.flush()
    lines = read_lines(path)
    assert lines[0] == {"before": True}
    assert [value_of(line) for line in lines[1:]] == [
        "1' OR 1=1--",
        "2' OR 1=1--",
        "é\u2028<script>",
    ]
    assert lines[1]["http"]["client_ip"] == "203.0.113.7"
    assert log.stats == {
        "submitted": 3,
        "written": 3,
        "dropped_queue_full": 0,
        "dropped_rate_limited": 0,
        "write_errors": 0,
    }


def test_no_secret_reaches_the_file(tmp_path: Path, logs: list[EventLog]) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxIn0" + ".c2lnbmF0dXJlLXZhbHVl"
    api_key = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
    pem_body = "MIIEowIBAAKCAQEA7bq2Vz3fKxq9Yt"
    body = {
        "password": "hunter2' OR '1'='1",
        "comment": "mail alice@example.com <script>alert(1)</script>",
        "card": "4111 1111 1111 1111 <script>alert(2)</script>",
        "order": "4111 1111 1111 1112 <script>alert(3)</script>",
        "note": f"-----BEGIN PRIVATE KEY-----\n{pem_body}\n-----END PRIVATE KEY----- <script>x</script>",
        "json": f'{{"api_key": "{api_key}"}} <script>alert(4)</script>',
    }
    # Real engine events, so the highlights are the ones rules really produce. A rule fires
    # once per request, so each field is a request of its own.
    ruleset = load_ruleset()
    triggers: list[dict[str, Any]] = []
    for address, value in [
        ("server.request.query", {"q": ["1' OR 1=1--"]}),
        ("server.request.headers.no_cookies", {"user-agent": "sqlmap/1.7"}),
        *(("server.request.body", {key: text}) for key, text in body.items()),
    ]:
        triggers += ruleset.context().run({address: value}, timeout_us=5_000_000).events
    flagged = {
        p["key_path"][0] for e in triggers for m in e["rule_matches"] for p in m["parameters"]
    }
    assert {"q", "user-agent", *body} <= flagged
    event = make_event(
        [],
        url=f"https://shop.example/login?next=%2F&access_token={jwt}&q=1%27%20OR%201%3D1--",
        headers={
            "authorization": f"Bearer {jwt}",
            "x-api-key": api_key,
            "user-agent": "sqlmap/1.7",
        },
    )
    event["triggers"] = triggers
    path = tmp_path / "events.jsonl"
    log = open_log(logs, path)
    assert log.submit(event)
    assert log.flush()

    written = path.read_bytes()
    for secret in ("hunter2", "alice@example.com", "4111 1111 1111 1111", pem_body, api_key, jwt):
        assert secret.encode() not in written
        assert json.dumps(secret)[1:-1].encode() not in written
    for visible in (
        "1' OR 1=1--",
        "<script>alert(1)</script>",
        "4111 1111 1111 1112",
        "sqlmap/1.7",
    ):
        assert visible.encode() in written
    assert b"q=1%27%20OR%201%3D1--" in written


def test_stdout_and_stderr(logs: list[EventLog], capsys: pytest.CaptureFixture[str]) -> None:
    out, err = open_log(logs, "stdout"), open_log(logs, "stderr")
    assert out.submit(attack_event(1))
    assert err.submit(attack_event(2))
    assert out.flush() and err.flush()
    captured = capsys.readouterr()
    assert value_of(json.loads(captured.out)) == "1' OR 1=1--"
    assert value_of(json.loads(captured.err)) == "2' OR 1=1--"


def test_off_writes_nothing_but_counts(
    logs: list[EventLog], capsys: pytest.CaptureFixture[str]
) -> None:
    log = open_log(logs, "off", burst=2, rate_per_s=1e-6)
    assert [log.submit(attack_event()) for _ in range(3)] == [True, True, False]
    assert log.flush()
    assert capsys.readouterr() == ("", "")
    assert log.stats["submitted"] == 3
    assert log.stats["written"] == 0
    assert log.stats["dropped_rate_limited"] == 1


def test_rate_limit_drops_count_and_log_once(
    tmp_path: Path, logs: list[EventLog], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.jsonl"
    log = open_log(logs, path, burst=3, rate_per_s=1e-6)
    assert [log.submit(attack_event(n)) for n in range(6)] == [True] * 3 + [False] * 3
    assert log.flush()
    assert len(read_lines(path)) == 3
    assert log.stats["dropped_rate_limited"] == 3
    assert log.stats["submitted"] == 6
    records = report_records(caplog)
    assert len(records) == 1
    assert "rate limit" in records[0].getMessage()


def test_rate_limit_refills_with_time(
    tmp_path: Path, logs: list[EventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(eventlog_module, "monotonic", lambda: now[0])
    log = open_log(logs, tmp_path / "events.jsonl", burst=2, rate_per_s=10.0)
    assert [log.submit(attack_event()) for _ in range(3)] == [True, True, False]
    now[0] += 0.1  # one token back
    assert [log.submit(attack_event()) for _ in range(2)] == [True, False]
    now[0] += 60.0  # the bucket holds at most `burst`
    assert [log.submit(attack_event()) for _ in range(3)] == [True, True, False]


def test_queue_overflow_drops_count_and_log_once(
    tmp_path: Path, logs: list[EventLog], caplog: pytest.LogCaptureFixture
) -> None:
    gate = GatedObfuscator()
    path = tmp_path / "events.jsonl"
    log = open_log(logs, path, obfuscator=gate, queue_size=2)
    try:
        assert log.submit(attack_event(1))
        assert gate.entered.wait(10)  # the writer holds event 1; the queue is empty again
        assert log.submit(attack_event(2))
        assert log.submit(attack_event(3))
        assert not log.submit(attack_event(4))
        assert not log.submit(attack_event(5))
        assert not log.flush(timeout=0.05)  # still held
    finally:
        gate.release.set()
    assert log.flush()
    assert len(read_lines(path)) == 3
    assert log.stats["dropped_queue_full"] == 2
    records = report_records(caplog)
    assert len(records) == 1
    assert "queue full" in records[0].getMessage()


def test_removed_directory_is_a_counted_write_error(
    tmp_path: Path, logs: list[EventLog], caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    path = directory / "events.jsonl"
    log = open_log(logs, path)
    assert log.submit(attack_event(1)) and log.flush()
    shutil.rmtree(directory)
    for n in (2, 3):
        assert log.submit(attack_event(n))
        assert log.flush()
    assert log.stats["write_errors"] == 2
    assert log.stats["written"] == 1
    records = report_records(caplog)
    assert len(records) == 1
    assert "cannot write" in records[0].getMessage()

    directory.mkdir()  # the directory comes back: writing resumes in a new file
    assert log.submit(attack_event(4)) and log.flush()
    assert [value_of(line) for line in read_lines(path)] == ["4' OR 1=1--"]


def test_a_rotated_file_is_reopened(tmp_path: Path, logs: list[EventLog]) -> None:
    path = tmp_path / "events.jsonl"
    log = open_log(logs, path)
    assert log.submit(attack_event(1)) and log.flush()
    path.rename(tmp_path / "events.jsonl.1")  # what logrotate does
    assert log.submit(attack_event(2)) and log.flush()
    assert len(read_lines(tmp_path / "events.jsonl.1")) == 1
    assert len(read_lines(path)) == 1


def test_closed_stdout_is_a_counted_write_error(
    logs: list[EventLog], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stdout", closed)
    log = open_log(logs, "stdout")
    for n in range(2):
        assert log.submit(attack_event(n))
        assert log.flush()
    assert log.stats["write_errors"] == 2
    assert len(report_records(caplog)) == 1


def test_an_event_that_cannot_be_encoded_does_not_stop_the_others(
    tmp_path: Path, logs: list[EventLog], caplog: pytest.LogCaptureFixture
) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    path = tmp_path / "events.jsonl"
    log = open_log(logs, path)
    bad = attack_event(1)
    bad["extra"] = Unprintable()
    assert log.submit(bad)
    assert log.submit(attack_event(2))
    assert log.flush()
    assert len(read_lines(path)) == 1
    assert log.stats["write_errors"] == 1
    assert log.stats["written"] == 1
    assert len(report_records(caplog)) == 1


def test_close_flushes_is_idempotent_and_refuses_later_events(
    tmp_path: Path, logs: list[EventLog]
) -> None:
    path = tmp_path / "events.jsonl"
    log = open_log(logs, path)
    assert log.flush()  # nothing submitted yet
    for n in range(50):
        assert log.submit(attack_event(n))
    log.close()
    assert len(read_lines(path)) == 50
    log.close()
    assert not log.submit(attack_event())
    assert log.flush()
    assert len(read_lines(path)) == 50


def test_concurrent_submits_all_arrive(tmp_path: Path, logs: list[EventLog]) -> None:
    path = tmp_path / "events.jsonl"
    log = open_log(logs, path, queue_size=10_000, rate_per_s=1e9, burst=10_000)

    def submit_many(thread: int) -> None:
        for n in range(200):
            assert log.submit(make_event([parameter(["q"], f"{thread}-{n}")]))

    threads = [threading.Thread(target=submit_many, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.flush()
    values = {value_of(line) for line in read_lines(path)}
    assert values == {f"{t}-{n}" for t in range(8) for n in range(200)}
    assert log.stats["written"] == log.stats["submitted"] == 1600


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_writes_with_its_own_thread(tmp_path: Path, logs: list[EventLog]) -> None:
    path = tmp_path / "events.jsonl"
    log = open_log(logs, path)
    assert log.submit(attack_event(1)) and log.flush()  # the parent's writer thread is running
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            ok = log.submit(attack_event(2)) and log.flush(timeout=10)
            code = 0 if ok and log.stats["written"] == 1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert log.submit(attack_event(3)) and log.flush()  # the parent goes on as before
    values = [value_of(line) for line in read_lines(path)]
    assert values == ["1' OR 1=1--", "2' OR 1=1--", "3' OR 1=1--"]
    assert log.stats["written"] == 2


def test_pending_events_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    script = (
        "from bastion.report import EventLog, Obfuscator\n"
        f"log = EventLog({str(path)!r}, Obfuscator())\n"
        "for n in range(100):\n"
        "    log.submit({'n': n, 'http': {'url': '/login?password=hunter2'}})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    lines = read_lines(path)
    assert [line["n"] for line in lines] == list(range(100))
    assert lines[0]["http"]["url"] == "/login?password=<redacted>"


@pytest.mark.parametrize(
    ("destination", "options", "message"),
    [
        ("{tmp}/missing/events.jsonl", {}, "does not exist"),
        ("{tmp}", {}, "is a directory"),
        ("off", {"queue_size": 0}, "queue_size"),
        ("off", {"rate_per_s": 0}, "rate_per_s"),
        ("off", {"burst": 0}, "burst"),
    ],
)
def test_bad_configuration_is_a_value_error(
    tmp_path: Path, destination: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EventLog(destination.format(tmp=tmp_path), OBFUSCATOR, **options)
