"""Attack flows across services: a protected Flask service under gunicorn (A) calls a
protected FastAPI service under uvicorn (B), which queries a real PostgreSQL. Both export over
OTLP/HTTP to a receiver in this test, a real protocol peer that decodes what arrives with
opentelemetry-proto.

An attack on A makes one trace: A's server span, A's HTTP client span, B's server span and
B's database span, each under the one before (a framework may add internal spans between, as
FastAPI's own tracing does); and every attack event sits on the server span of the service
whose rules saw it, never on the client or database spans.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests import services
from tests.e2e.servers import Server, have
from tests.tracing.otlp import OTLPReceiver, ReceivedSpan

pytestmark = pytest.mark.skipif(not (have("gunicorn") and have("uvicorn")),
                                reason="gunicorn and uvicorn are needed")

INTERNAL, SERVER, CLIENT = 1, 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
XSS = "<script>alert(document.cookie)</script>"
SQLI = "' OR '1'='1"


@pytest.fixture(scope="module")
def collector() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def table() -> Iterator[str]:
    connection = services.connect_postgres("psycopg")
    name = services.table_name("flow")
    connection.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, name TEXT, status TEXT)")
    connection.execute(f"INSERT INTO {name} VALUES (1, 'ada', 'active'), (2, 'bob', 'active')")
    yield name
    connection.execute(f"DROP TABLE {name}")
    connection.close()


@pytest.fixture(scope="module")
def web(collector: OTLPReceiver, table: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Service A, calling service B; both started for the module."""
    workdir = tmp_path_factory.mktemp("attack-flow")

    def env(service: str) -> dict[str, str]:
        return {"BASTION_MODE": "monitor", "BASTION_OTLP_ENDPOINT": collector.url,
                "BASTION_SERVICE_NAME": service,
                "BASTION_EVENT_LOG": str(workdir / f"{service}.jsonl"),
                "OTEL_BSP_SCHEDULE_DELAY": "100"}  # export within 0.1 s rather than 5

    api = Server("uvicorn tests.e2e.apps.flow_api:app", protected=True,
                 log=workdir / "flow-api.log", env=env("flow-api") | {"FLOW_TABLE": table})
    api.start()
    try:
        front = Server("gunicorn tests.e2e.apps.flow_web:app", protected=True,
                       log=workdir / "flow-web.log",
                       env=env("flow-web") | {"FLOW_API_URL": f"http://127.0.0.1:{api.port}"})
        front.start()
        try:
            yield front
        finally:
            front.stop()
    finally:
        api.stop()


def one_trace(collector: OTLPReceiver, path: str) -> list[ReceivedSpan]:
    """The spans of the trace of A's request to `path`, once both services' server spans are
    in. Each service exports its spans in the order they ended, and its server span ends
    last, so by then each service has sent all it will send of the trace."""

    def server_span(spans: list[ReceivedSpan], service: str,
                    trace_id: str | None = None) -> ReceivedSpan | None:
        return next((s for s in spans if s.span.kind == SERVER
                     and s.resource.get("service.name") == service
                     and (trace_id is None or s.trace_id == trace_id)
                     and (trace_id is not None or s.attributes.get("url.path") == path)), None)

    def complete(spans: list[ReceivedSpan]) -> bool:
        front = server_span(spans, "flow-web")
        return front is not None and server_span(spans, "flow-api", front.trace_id) is not None

    spans = collector.wait_for(complete)
    front = server_span(spans, "flow-web")
    assert front is not None
    return [s for s in spans if s.trace_id == front.trace_id]


def by_role(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    """The trace's server and client spans named by what they are; fails on any such span
    more or less (internal spans of a framework are left out)."""
    roles: dict[str, ReceivedSpan] = {}
    for span in spans:
        service = span.resource["service.name"]
        if span.span.kind == INTERNAL:
            assert not span.span.events, span
            continue
        if span.span.kind == SERVER:
            role = f"{service} server"
        elif "db.system.name" in span.attributes:
            role = f"{service} database"
        else:
            role = f"{service} http client"
        assert role not in roles, f"two spans for {role}: {spans}"
        roles[role] = span
    assert sorted(roles) == ["flow-api database", "flow-api server", "flow-web http client",
                             "flow-web server"], spans
    return roles


def attack_rule_ids(span: ReceivedSpan) -> list[str]:
    return [next(kv.value.string_value for kv in event.attributes if kv.key == "bastion.rule.id")
            for event in span.span.events if event.name == "bastion.attack"]


def ancestors(span: ReceivedSpan, trace: list[ReceivedSpan]) -> list[str]:
    """The span ids above `span` in its trace, nearest first."""
    by_id = {s.span_id: s for s in trace}
    found: list[str] = []
    parent = span.parent_span_id
    while parent in by_id and parent not in found:
        found.append(parent)
        parent = by_id[parent].parent_span_id
    return found


def assert_one_chain(roles: dict[str, ReceivedSpan], trace: list[ReceivedSpan]) -> None:
    """A's server span is the root; A's client span its child; B's server span the client
    span's child; B's database span under B's server span."""
    front, client = roles["flow-web server"], roles["flow-web http client"]
    api, database = roles["flow-api server"], roles["flow-api database"]
    assert front.parent_span_id == ""
    assert client.parent_span_id == front.span_id
    assert api.parent_span_id == client.span_id
    assert api.span_id in ancestors(database, trace)
    assert len({span.trace_id for span in trace}) == 1


def test_an_attack_on_a_is_one_trace_through_b_to_its_database(
        web: Server, collector: OTLPReceiver, table: str) -> None:
    reply = web.get(f"/orders/1?note={quote(XSS)}", headers={"User-Agent": "flow-e2e/1"})
    assert reply.status == 200
    assert json.loads(reply.body)["customer"] == [{"id": 1, "name": "ada"}]

    trace = one_trace(collector, "/orders/1")
    roles = by_role(trace)
    assert_one_chain(roles, trace)
    front, api = roles["flow-web server"], roles["flow-api server"]
    assert front.span.name == "GET /orders/<int:customer_id>"
    assert api.span.name == "GET /customers/{customer_id}"
    client = roles["flow-web http client"]
    assert client.span.kind == CLIENT and client.span.name == "GET"

    database = roles["flow-api database"]
    assert database.span.kind == CLIENT and database.scope == "bastion"
    assert database.span.name == f"SELECT {services.POSTGRES['dbname']}"
    assert database.attributes == {
        "db.system.name": "postgresql", "db.system": "postgresql",
        "db.namespace": services.POSTGRES["dbname"], "db.operation.name": "SELECT",
        "db.query.text": f"SELECT id, name FROM {table} WHERE id = %s AND status = ?",
        "server.address": services.HOST, "server.port": services.POSTGRES["port"],
        "db.response.returned_rows": 1,
    }
    assert database.span.end_time_unix_nano > database.span.start_time_unix_nano

    # A's rules saw the attack: its event is on A's server span, and on no other span.
    assert front.attributes["bastion.event"] is True
    assert "xss" in front.attributes["bastion.rule.types"]
    assert attack_rule_ids(front)
    for span in trace:
        if span is not front:
            assert not span.span.events and "bastion.event" not in span.attributes, span


def test_an_attack_handed_on_to_b_is_seen_at_bs_database_call_on_bs_server_span(
        web: Server, collector: OTLPReceiver, table: str) -> None:
    """A passes the name on; B pastes it into its statement. B's exploit rule fires at the
    statement, in B's request: its event is on B's server span, the statement's span keeps
    only the sanitized text (monitor mode: the statement ran)."""
    reply = web.get(f"/lookup?name={quote(SQLI)}")
    assert reply.status == 200 and len(json.loads(reply.body)["customers"]) == 2

    trace = one_trace(collector, "/lookup")
    roles = by_role(trace)
    assert_one_chain(roles, trace)
    front, api = roles["flow-web server"], roles["flow-api server"]
    database = roles["flow-api database"]
    assert "bst-rasp-005" in attack_rule_ids(api)
    assert "bst-rasp-005" in api.attributes["bastion.rule.ids"]
    assert "bst-rasp-005" not in attack_rule_ids(front)  # A made no statement
    assert front.attributes["bastion.event"] is True  # A's own rules saw the input
    assert database.attributes["db.query.text"] == (
        f"SELECT id, name FROM {table} WHERE name = ? OR ?=?")
    assert not database.span.events and "bastion.event" not in database.attributes
    assert not roles["flow-web http client"].span.events
