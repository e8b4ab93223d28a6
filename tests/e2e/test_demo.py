"""`bastion demo` as a user runs it: the shop starts, attacks are blocked, events are written."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

from tests.e2e.servers import BIN, Server


class Demo(Server):
    """`bastion demo` itself, started and awaited like the other servers."""

    def __init__(self, events: Path, log: Path) -> None:
        super().__init__("flask", protected=False, log=log)
        self.events = events

    def command(self) -> list[str]:
        return [str(BIN / "bastion"), "demo", "--port", str(self.port),
                "--events", str(self.events)]


def test_bastion_demo_serves_the_shop_and_blocks_attacks(tmp_path: Path) -> None:
    events, log = tmp_path / "events.jsonl", tmp_path / "demo.log"
    demo = Demo(events, log).start()
    try:
        assert demo.get("/search?q=shoes").status == 200
        dump = "/search?q=" + quote("' UNION SELECT id, username, password FROM users--")
        assert demo.get(dump).status == 403
        assert demo.get("/search?q=" + quote("<script>alert(1)</script>")).status == 403
        login = demo.request("POST", "/login", {
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
        demo.stop()
    output = log.read_text()
    assert f"http://127.0.0.1:{demo.port}" in output and "curl -i" in output
    assert str(events) in output
