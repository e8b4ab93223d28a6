"""`bastion demo` as a user runs it: the shop starts, attacks are blocked, events are written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from tests.e2e.servers import BIN, REPO, Server, free_port


def test_bastion_demo_serves_the_shop_and_blocks_attacks(tmp_path: Path) -> None:
    port = free_port()
    events = tmp_path / "events.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO / "src")
    process = subprocess.Popen(
        [str(BIN / "bastion"), "demo", "--port", str(port), "--events", str(events)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    probe = Server("flask", protected=False)
    probe.port = port
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if probe.get("/health").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.2)
        assert probe.get("/search?q=shoes").status == 200
        dump = "/search?q=" + quote("' UNION SELECT id, username, password FROM users--")
        assert probe.get(dump).status == 403
        assert probe.get("/search?q=" + quote("<script>alert(1)</script>")).status == 403
        login = probe.request("POST", "/login", {
            "Content-Type": "application/x-www-form-urlencoded"},
            b"username=admin%27--&password=x")
        assert login.status == 403
        deadline = time.monotonic() + 5
        while not events.exists() or events.read_text().count("\n") < 3:
            assert time.monotonic() < deadline, "events were not written"
            time.sleep(0.1)
        text = events.read_text()
        lines = text[: text.rfind("\n") + 1].splitlines()  # complete lines only
        assert all(json.loads(line)["blocked"] for line in lines)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert f"http://127.0.0.1:{port}" in output and "curl -i" in output
    assert str(events) in output
