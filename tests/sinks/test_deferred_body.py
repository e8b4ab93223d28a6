"""A body the rules found clean before, byte for byte, is not parsed again when it comes back
(RequestContext.start); its values must still reach the sinks' checks, and rules that read
the body whole must still see it."""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bastion.blocking import BlockedRequest
from bastion.config import Settings
from bastion.context import RequestContext
from bastion.protection import Protection
from bastion.waf import load_ruleset
from tests.sinks.support import count

BODY = json.dumps({"order": 7, "id": "1 OR 1=1"}).encode()
HEADERS = {"host": "shop.example", "content-type": "application/json"}


def rules(*extra: dict[str, Any]) -> dict[str, Any]:
    """The bundled exploit-prevention rules, a rule that reads the body's values and never
    matches them (so that the body is read, found clean and remembered, as the bundled
    request rules do with a benign body), and `extra`."""
    text = resources.files("bastion.waf").joinpath("rules/default.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    document["rules"] = [rule for rule in document["rules"]
                         if rule.get("tags", {}).get("module") == "rasp"]
    document["rules"].append({
        "id": "reads-body", "name": "reads the body", "tags": {"type": "test",
                                                             "category": "attack_attempt"},
        "conditions": [{"operator": "match_regex", "parameters": {
            "inputs": [{"address": "server.request.body"}], "regex": "^never matched here$"}}],
    })
    document["rules"].extend(extra)
    return document


def protection_with(document: dict[str, Any], tmp_path: Path) -> Protection:
    settings = Settings(mode="block", event_log=str(tmp_path / "events.jsonl"))
    return Protection(settings, load_ruleset(document))


def post(protection: Protection, db: sqlite3.Connection) -> RequestContext:
    """The vulnerable application: the body's id pasted into a DELETE."""
    ctx = RequestContext(protection, "POST", "/items/delete", dict(HEADERS), "203.0.113.9")
    try:
        with ctx:
            assert ctx.start(BODY) is None, "the request itself must not be blocked"
            identifier = json.loads(BODY)["id"]
            with pytest.raises(BlockedRequest):
                db.execute(f"DELETE FROM t WHERE id = {identifier}")
    finally:
        ctx.finish()
    return ctx


def test_a_body_known_clean_is_left_unparsed_yet_its_values_reach_the_sink(
        tmp_path: Path, memory: sqlite3.Connection) -> None:
    protection = protection_with(rules(), tmp_path)
    try:
        first = post(protection, memory)
        assert first._deferred_body is None  # new: parsed and read
        again = post(protection, memory)  # the same bytes: known clean, left unparsed...
        assert count(memory) == 2  # ...and still stopped at the database, as the first was
        assert again.blocked is not None and again.blocked.status == 403
    finally:
        protection.close()


def test_a_body_known_clean_and_no_sink_is_never_parsed(tmp_path: Path) -> None:
    protection = protection_with(rules(), tmp_path)
    try:
        for expected in (None, (BODY,)):
            ctx = RequestContext(protection, "POST", "/items", dict(HEADERS), "203.0.113.9")
            with ctx:
                assert ctx.start(BODY) is None
                deferred = ctx._deferred_body
                assert (deferred and deferred[:1]) == expected
            ctx.finish()
    finally:
        protection.close()


def test_a_body_a_rule_reads_whole_is_parsed_every_time(tmp_path: Path) -> None:
    """An `exists` condition on the body needs it on each request, known clean or not."""
    debug = {
        "id": "debug-flag", "name": "a debug key in the body",
        "tags": {"type": "test", "category": "attack_attempt"},
        "conditions": [{"operator": "exists", "parameters": {
            "inputs": [{"address": "server.request.body", "key_path": ["order"]}]}}],
    }
    protection = protection_with(rules(debug), tmp_path)
    try:
        for _ in range(2):
            ctx = RequestContext(protection, "POST", "/items", dict(HEADERS), "203.0.113.9")
            with ctx:
                ctx.start(BODY)
                assert ctx._deferred_body is None
                assert [e["rule"]["id"] for e in ctx.events] == ["debug-flag"]
            ctx.finish()
    finally:
        protection.close()
