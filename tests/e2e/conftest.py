"""Servers for the end-to-end tests: one per (application, setup), started once per module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.waf import load_ruleset
from tests.e2e.servers import Server


@pytest.fixture(scope="session", autouse=True)
def compiled_rules() -> None:
    """Compile the bundled rules once here: the servers then load them from the disk cache
    instead of each compiling them (which takes long on a fresh machine)."""
    load_ruleset()


class Deployment:
    """A protected server with its event log and live configuration file."""

    def __init__(self, app: str, mode: str, workdir: Path) -> None:
        self.events_path = workdir / "events.jsonl"
        self.config_path = workdir / "bastion.json"
        self.config_path.write_text("{}")
        self.server = Server(app, protected=True, log=workdir / "server.log", env={
            "BASTION_MODE": mode,
            "BASTION_EVENT_LOG": str(self.events_path),
            "BASTION_CONFIG_FILE": str(self.config_path),
            "BASTION_CONFIG_POLL_INTERVAL": "0.2",
        })

    def events(self) -> list[dict[str, object]]:
        if not self.events_path.exists():
            return []
        text = self.events_path.read_text()
        # The writer may be in the middle of a line: read only the complete ones.
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

    def write_config(self, config: object) -> None:
        # Write then rename: the watcher never sees half a file.
        temp = self.config_path.with_suffix(".tmp")
        temp.write_text(json.dumps(config))
        temp.replace(self.config_path)


def deployment(app: str, mode: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    made = Deployment(app, mode, tmp_path_factory.mktemp(f"{app}-{mode}"))
    made.server.start()
    try:
        yield made
    finally:
        made.server.stop()
