"""The live configuration file: what it turns into, and the watcher's keep-the-last-good rule."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.protection import Protection
from bastion.remote.configfile import ConfigError, ConfigFileWatcher, changes_from
from bastion.waf import load_ruleset

ATTACK = {"server.request.query": {"q": ["1' UNION SELECT password FROM users--"]}}


@pytest.fixture(scope="module")
def base_rules() -> object:
    return load_ruleset()


def protection(base_rules: object, tmp_path: Path) -> Protection:
    settings = Settings(mode="block", event_log="off")
    return Protection(settings, base_rules)  # type: ignore[arg-type]


def verdict(made: Protection, ip: str, user: str | None = None, attack: bool = False) -> bool:
    """Whether the rules in force block this request."""
    ruleset = made.ruleset
    assert ruleset is not None
    addresses: dict[str, object] = {"http.client_ip": ip}
    if user is not None:
        addresses["usr.id"] = user
    if attack:
        addresses.update(ATTACK)
    return ruleset.context().run(addresses).blocking


def test_lists_become_rules_and_an_allow_exclusion() -> None:
    changes = changes_from({"blocked_ips": ["198.51.100.7", {"value": "2001:db8::/32",
                                                             "expiration": 0}],
                            "blocked_users": [42], "allowed_ips": ["10.0.0.1"]})
    assert {r["id"] for r in changes["custom_rules"]} == {"bastion-deny-ip", "bastion-deny-user"}
    assert [e["id"] for e in changes["exclusions"]] == ["bastion-allow-ip"]
    data = {d["id"]: d["data"] for d in changes["rules_data"]}
    assert data["bastion_blocked_users"] == [{"value": "42", "expiration": 0}]


@pytest.mark.parametrize("config, message", [
    ([], "JSON object"),
    ({"blocked_ip": []}, "unknown key"),
    ({"blocked_ips": "1.2.3.4"}, "must be a list"),
    ({"blocked_ips": ["1.2.3.999"]}, "blocked_ips[0]"),
    ({"blocked_users": [""]}, "blocked_users[0]"),
    ({"allowed_ips": [{"value": "1.2.3.4", "expiration": "soon"}]}, "expiration"),
])
def test_bad_documents_are_refused_with_their_place(config: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        changes_from(config)


def test_watcher_applies_changes_and_keeps_the_last_good_one(
    base_rules: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    made = protection(base_rules, tmp_path)
    path = tmp_path / "bastion.json"
    watcher = ConfigFileWatcher(made, str(path))
    assert watcher.check() is False  # no file yet: nothing to do, nothing said
    path.write_text(json.dumps({"blocked_ips": ["198.51.100.7"], "blocked_users": ["mallory"],
                                "allowed_ips": ["198.51.100.9"]}))
    assert watcher.check() is True
    assert verdict(made, "198.51.100.7")
    assert not verdict(made, "198.51.100.8")
    assert verdict(made, "198.51.100.8", user="mallory")
    assert verdict(made, "198.51.100.8", attack=True)
    assert not verdict(made, "198.51.100.9", attack=True)  # the allow list wins

    with caplog.at_level(logging.ERROR, logger="bastion"):
        for broken in ('{"blocked_ips": [', '{"exclusions": [{"no_id": 1}]}',
                       '{"blocked_ips": ["x"]}'):
            time.sleep(0.01)  # a new mtime
            path.write_text(broken)
            assert watcher.check() is False
            assert watcher.check() is False  # said once, not at every look
            assert verdict(made, "198.51.100.7")
    assert len([r for r in caplog.records if "not applied" in r.getMessage()]) == 3

    path.unlink()
    assert watcher.check() is False
    assert verdict(made, "198.51.100.7")  # a removed file keeps the last good one too
    path.write_text("{}")
    assert watcher.check() is True
    assert not verdict(made, "198.51.100.7")


def test_expired_entries_do_not_block(base_rules: object, tmp_path: Path) -> None:
    made = protection(base_rules, tmp_path)
    path = tmp_path / "bastion.json"
    path.write_text(json.dumps({"blocked_ips": [
        {"value": "198.51.100.7", "expiration": int(time.time()) - 10},
        {"value": "198.51.100.8", "expiration": int(time.time()) + 3600}]}))
    assert ConfigFileWatcher(made, str(path)).check()
    assert not verdict(made, "198.51.100.7")
    assert verdict(made, "198.51.100.8")
