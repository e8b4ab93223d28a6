"""End to end: real gunicorn and uvicorn servers on loopback, each app protected with
`bastion-run` (no code change), against the same app unprotected."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.e2e.attacks import ATTACKS, BENIGN, Sample
from tests.e2e.conftest import Deployment, deployment
from tests.e2e.servers import APPS, Reply, Server

VOLATILE_HEADERS = {"date", "server"}


@pytest.fixture(scope="module", params=list(APPS))
def app_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def plain(app_name: str) -> Iterator[Server]:
    server = Server(app_name, protected=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def blocking(app_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deployment(app_name, "block", tmp_path_factory)


@pytest.fixture(scope="module")
def monitoring(app_name: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    yield from deployment(app_name, "monitor", tmp_path_factory)


def send(server: Server, sample: Sample, extra: dict[str, str] | None = None) -> Reply:
    return server.request(sample.method, sample.target, sample.headers | (extra or {}),
                          sample.body)


def comparable(reply: Reply) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k.lower(), v) for k, v in reply.headers
                     if k.lower() not in VOLATILE_HEADERS)
    return reply.status, headers, reply.body


def wait_for(predicate: object, timeout: float = 5.0) -> float:
    """Seconds until predicate() held; fails the test after `timeout`."""
    assert callable(predicate)
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def test_benign_responses_are_byte_identical(plain: Server, blocking: Deployment) -> None:
    for sample in BENIGN:
        expected = comparable(send(plain, sample))
        assert expected[0] == 200, sample.name
        assert comparable(send(blocking.server, sample)) == expected, sample.name
    assert blocking.events() == []


def test_attacks_are_blocked_in_block_mode(blocking: Deployment) -> None:
    for sample in ATTACKS:
        reply = send(blocking.server, sample, {"Accept": "application/json"})
        assert reply.status == 403, sample.name
        assert reply.header("content-type") == "application/json", sample.name
        body = json.loads(reply.body)
        assert body["security_response_id"], sample.name


def test_block_page_follows_accept(blocking: Deployment) -> None:
    reply = send(blocking.server, ATTACKS[0], {"Accept": "text/html,*/*;q=0.8"})
    assert reply.status == 403
    assert (reply.header("content-type") or "").startswith("text/html")
    assert b"Request blocked" in reply.body


def test_attacks_pass_and_are_reported_in_monitor_mode(
    plain: Server, monitoring: Deployment
) -> None:
    for number, sample in enumerate(ATTACKS):
        # A benign marker tells the events apart: they are written when each response ends,
        # which is not always in the order the requests were sent.
        tagged = replace(sample, target=sample.target + ("&" if "?" in sample.target else "?")
                         + f"probe={number}")
        assert comparable(send(monitoring.server, tagged)) == comparable(send(plain, tagged)), \
            sample.name
    wait_for(lambda: len(monitoring.events()) >= len(ATTACKS))
    events = monitoring.events()
    assert len(events) == len(ATTACKS)
    by_probe = {event["http"]["url"].rpartition("probe=")[2]: event for event in events}
    for number, sample in enumerate(ATTACKS):
        event = by_probe[str(number)]
        assert event["blocked"] is False and event["mode"] == "monitor"
        addresses = {p["address"] for t in event["triggers"] for m in t["rule_matches"]
                     for p in m["parameters"]}
        assert sample.address in addresses, (sample.name, addresses)


def test_event_says_who_what_and_where(monitoring: Deployment) -> None:
    before = len(monitoring.events())
    monitoring.server.get(
        "/item/1%20UNION%20SELECT%20password%20FROM%20users",
        {"User-Agent": "evil-bot/1.0", "X-Forwarded-For": "198.51.100.23"},
    )
    wait_for(lambda: len(monitoring.events()) > before)
    event = monitoring.events()[-1]
    http = event["http"]
    assert http["client_ip"] == "198.51.100.23"
    assert http["user_agent"] == "evil-bot/1.0"
    assert http["method"] == "GET"
    assert http["status"] == 200
    assert http["url"].endswith("/item/1%20UNION%20SELECT%20password%20FROM%20users")
    assert http["route"] in ("/item/<item_id>", "/item/{item_id}", "item/<str:item_id>")
    rule_ids = [t["rule"]["id"] for t in event["triggers"]]
    assert any(rule.startswith("bst-sqli") for rule in rule_ids)
    parameters = [p for t in event["triggers"] for m in t["rule_matches"]
                  for p in m["parameters"]]
    assert any("UNION" in p["value"] and p["highlight"] for p in parameters)


def test_the_app_can_block_a_request(blocking: Deployment) -> None:
    reply = blocking.server.get("/refuse", {"Accept": "application/json"})
    assert reply.status == 403
    assert b"security_response_id" in reply.body


def test_deny_lists_block_and_the_allow_list_wins(blocking: Deployment) -> None:
    server = blocking.server
    denied = {"X-Forwarded-For": "198.51.100.7"}
    allowed = {"X-Forwarded-For": "198.51.100.9"}
    assert server.get("/search?q=shoes", denied).status == 200
    blocking.write_config({"blocked_ips": ["198.51.100.7"], "blocked_users": ["mallory"],
                           "allowed_ips": ["198.51.100.9"]})
    took = wait_for(lambda: server.get("/search?q=shoes", denied).status == 403, timeout=2.0)
    assert took <= 2.0
    assert server.get("/search?q=shoes", {"X-Forwarded-For": "198.51.100.8"}).status == 200
    assert server.get("/login-as?user=mallory").status == 403
    assert server.get("/login-as?user=alice").status == 200
    attack = ATTACKS[0]
    assert send(server, attack, allowed).status == 200  # the allow list wins over the rules
    assert send(server, attack).status == 403

    # A broken file changes nothing: the last good configuration stays in force.
    blocking.config_path.write_text('{"blocked_ips": ["198.51.100.7"')
    time.sleep(1.0)
    assert server.get("/search?q=shoes", denied).status == 403
    blocking.write_config({"blocked_ips": ["not-an-ip"]})
    time.sleep(1.0)
    assert server.get("/search?q=shoes", denied).status == 403
    assert send(server, attack, allowed).status == 200

    blocking.write_config({})
    wait_for(lambda: server.get("/search?q=shoes", denied).status == 200, timeout=2.0)
