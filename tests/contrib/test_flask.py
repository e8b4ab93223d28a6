"""The Flask adapter in process (Flask's test client): explicit protect_app, route and path
params after routing, BlockedRequest from a view."""

from __future__ import annotations

import json
from pathlib import Path

import flask

import bastion
from bastion.config import Settings
from bastion.contrib.flask import protect_app
from bastion.protection import Protection
from bastion.waf import load_ruleset

RULES = {
    "version": "2.2",
    "rules": [
        {"id": "t-param", "name": "path param marker", "tags": {"type": "t", "category": "t"},
         "conditions": [{"operator": "match_regex", "parameters": {
             "inputs": [{"address": "server.request.path_params"}], "regex": "^evil$"}}],
         "on_match": ["block"]},
    ],
}


def make_app(tmp_path: Path) -> tuple[flask.Flask, Protection]:
    protection = Protection(Settings(mode="block", event_log=str(tmp_path / "e.jsonl")),
                            load_ruleset(RULES))
    app = flask.Flask(__name__)

    @app.get("/item/<name>")
    def item(name: str) -> str:
        return f"item {name}"

    @app.get("/refuse")
    def refuse() -> str:
        bastion.block_request()
        return "not reached"

    protect_app(app, protection)
    protect_app(app, protection)  # idempotent: one middleware, one hook
    return app, protection


def test_path_params_are_inspected_after_routing(tmp_path: Path) -> None:
    app, protection = make_app(tmp_path)
    client = app.test_client()
    assert client.get("/item/fine").data == b"item fine"
    blocked = client.get("/item/evil", headers={"Accept": "application/json"})
    assert blocked.status_code == 403 and blocked.is_json
    protection.event_log.flush()
    [event] = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert event["http"]["route"] == "/item/<name>"
    parameters = event["triggers"][0]["rule_matches"][0]["parameters"]
    assert parameters[0]["address"] == "server.request.path_params"
    assert parameters[0]["key_path"] == ["name"]


def test_blocked_request_from_a_view_is_the_block_response(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    reply = app.test_client().get("/refuse", headers={"Accept": "text/html"})
    assert reply.status_code == 403 and b"Request blocked" in reply.data
    assert len(app.before_request_funcs[None]) == 1
