"""Shared by the sink tests: the bundled exploit-prevention rules, protections, requests."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bastion.config import Settings
from bastion.context import RequestContext
from bastion.protection import Protection
from bastion.waf import Ruleset, load_ruleset

SINK_ADDRESSES = ("server.db.statement", "server.io.fs.file", "server.io.net.url",
                  "server.sys.shell.cmd", "server.sys.exec.cmd")


def rasp_rules() -> Ruleset:
    """The bundled rules of the `rasp` module alone: the request's own rules (which would stop
    most of these attacks before the application runs) stay out of the way, so what is tested
    is the sink."""
    text = resources.files("bastion.waf").joinpath("rules/default.json").read_text("utf-8")
    document = json.loads(text)
    document["rules"] = [rule for rule in document["rules"]
                         if rule.get("tags", {}).get("module") == "rasp"]
    assert len(document["rules"]) >= 5
    return load_ruleset(document)


_RULES: list[Ruleset] = []


def make_protection(tmp_path: Path, mode: str = "block") -> Protection:
    if not _RULES:
        _RULES.append(rasp_rules())
    settings = Settings(mode=mode, event_log=str(tmp_path / "events.jsonl"))
    return Protection(settings, _RULES[0])


def read_events(protection: Protection, tmp_path: Path) -> list[dict[str, Any]]:
    protection.event_log.flush()
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@contextmanager
def request(protection: Protection, query: Mapping[str, str] | None = None,
            path: str = "/") -> Iterator[RequestContext]:
    """A started request with `query` as its query string, current while the block runs;
    finished (its event written) after it."""
    target = f"{path}?{urlencode(query)}" if query else path
    ctx = RequestContext(protection, "GET", target,
                         {"host": "shop.example", "accept": "application/json"}, "203.0.113.9")
    try:
        with ctx:
            assert ctx.start() is None, "the request itself must not be blocked"
            yield ctx
    finally:
        ctx.finish()


def spy(ctx: RequestContext) -> list[dict[str, object]]:
    """Every address mapping a sink hook looks at from now on, in order: those handed to
    `ctx.run`, and those its quiet look let pass without a run (a statement the SQLite hook
    passed after `quiet_sink` is recorded with its address alone)."""
    seen: list[dict[str, object]] = []
    run, quiet_call, quiet_sink = ctx.run, ctx.quiet_call, ctx.quiet_sink

    def recording(addresses: Mapping[str, object]) -> Any:
        if any(address in addresses for address in SINK_ADDRESSES):
            seen.append(dict(addresses))
        return run(addresses)

    def recording_call(addresses: Mapping[str, object]) -> bool:
        quiet = quiet_call(addresses)
        if quiet:
            seen.append(dict(addresses))
        return quiet

    def recording_sink(address: str, text: str) -> bool:
        quiet = quiet_sink(address, text)
        if quiet:
            seen.append({address: text})
        return quiet

    ctx.run = recording  # type: ignore[method-assign]
    ctx.quiet_call = recording_call  # type: ignore[method-assign]
    ctx.quiet_sink = recording_sink  # type: ignore[method-assign]
    return seen


def rule_ids(event: Mapping[str, Any]) -> list[str]:
    return [trigger["rule"]["id"] for trigger in event["triggers"]]


def count(connection: sqlite3.Connection) -> int:
    """The rows of the `memory` fixture's table `t`, counted outside any request."""
    return int(connection.execute("SELECT COUNT(*) FROM t").fetchone()[0])
