"""A real deployment: gunicorn (forking workers) under `bastion-run`, exporting over OTLP/HTTP
to a receiver on loopback. The spans arrive from the worker, decode with opentelemetry-proto,
continue the caller's trace, and an attack is exported even when the caller sampled it out."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bastion.waf import load_ruleset
from tests.e2e.servers import Server, have
from tests.tracing.otlp import OTLPReceiver, ReceivedSpan

pytestmark = pytest.mark.skipif(not have("gunicorn"), reason="gunicorn is not installed")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SAMPLED = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
SAMPLED_OUT = "00-5bf92f3577b34da6a3ce929d0e0e4736-10f067aa0ba902b7-00"


@pytest.fixture(scope="module")
def collector() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def server(collector: OTLPReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    load_ruleset()  # compiled once into the disk cache the server then reads
    workdir = tmp_path_factory.mktemp("gunicorn-tracing")
    deployment = Server("flask", protected=True, log=workdir / "server.log", env={
        "BASTION_MODE": "block",
        "BASTION_EVENT_LOG": str(workdir / "events.jsonl"),
        "BASTION_OTLP_ENDPOINT": collector.url,
        "BASTION_SERVICE_NAME": "shop-e2e",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s rather than 5
    })
    deployment.start()
    yield deployment
    deployment.stop()


def server_span(collector: OTLPReceiver, trace_id: str) -> ReceivedSpan:
    def found(spans: list[ReceivedSpan]) -> bool:
        return any(s.trace_id == trace_id for s in spans)

    [span] = [s for s in collector.wait_for(found) if s.trace_id == trace_id]
    return span


def test_a_benign_request_continues_the_callers_trace(
        server: Server, collector: OTLPReceiver) -> None:
    reply = server.get("/item/42?color=red", headers={"traceparent": SAMPLED,
                                                      "baggage": "tenant=acme",
                                                      "User-Agent": "e2e/1"})
    assert reply.status == 200 and json.loads(reply.body) == {"item": "42"}

    span = server_span(collector, TRACE_ID)
    assert span.resource["service.name"] == "shop-e2e"
    assert span.scope == "bastion"
    assert span.span.name == "GET /item/<item_id>"
    assert span.parent_span_id == "00f067aa0ba902b7"
    assert span.attributes == {
        "http.request.method": "GET", "http.route": "/item/<item_id>",
        "http.response.status_code": 200, "url.scheme": "http", "url.path": "/item/42",
        "url.query": "color=red", "server.address": "127.0.0.1", "server.port": server.port,
        "client.address": "127.0.0.1", "user_agent.original": "e2e/1",
    }


def test_an_attack_the_caller_sampled_out_is_exported_with_its_security_attributes(
        server: Server, collector: OTLPReceiver) -> None:
    reply = server.get("/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E"
                       "&password=hunter2", headers={"traceparent": SAMPLED_OUT,
                                                     "Accept": "application/json"})
    assert reply.status == 403
    event_id = json.loads(reply.body)["security_response_id"]

    span = server_span(collector, SAMPLED_OUT.split("-")[1])
    attributes = span.attributes
    assert attributes["bastion.event"] is True and attributes["bastion.blocked"] is True
    assert attributes["bastion.kept"] is True  # sampled out upstream, kept for the attack
    assert attributes["bastion.event.id"] == event_id
    assert attributes["http.response.status_code"] == 403
    assert "xss" in attributes["bastion.rule.types"]
    assert span.parent_span_id == "10f067aa0ba902b7"
    events = [e for e in span.span.events if e.name == "bastion.attack"]
    assert len(events) == len(attributes["bastion.rule.ids"])
    assert "hunter2" not in str(span.span)
    assert attributes["url.query"].endswith("&password=<redacted>")
