"""Export over OTLP/HTTP to a real receiver (decoded with opentelemetry-proto), and what a
dead or slow collector does to requests: nothing, beyond a bounded queue."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from bastion import tracing
from bastion.tracing.provider import exporting_processor, resolve, traces_url
from tests.e2e.servers import free_port
from tests.tracing.apps import Reply, flask_app, get, protection
from tests.tracing.otlp import OTLPReceiver, ReceivedSpan

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
REQUESTS = ["/search?q=shoes", "/search?q=1%27%20OR%201=1--%20password=hunter2", "/fail",
            "/search?q=<script>alert(1)</script>"]


def flush() -> None:
    assert tracing.flush()


def in_thread(work: Callable[[], None], timeout: float = 60.0) -> None:
    """Run `work`; fail (rather than hang) if it does not finish: a request that waited for
    a stalled collector would never finish."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "requests waited for the collector"
    if errors:
        raise errors[0]


def test_spans_are_exported_over_otlp_http_and_decode_as_sent(
        tmp_path: Path, receiver: OTLPReceiver) -> None:
    guard = protection(tmp_path, mode="block", otlp_endpoint=receiver.url,
                       service_name="checkout")
    tracing.configure(guard.settings)
    app = flask_app(guard)
    assert get(app, "/item/9?q=<script>alert(1)</script>&api_key=k3y",
               headers={"traceparent": TRACEPARENT, "User-Agent": "curl/8"}).status == 403
    flush()

    spans = receiver.wait_for(lambda spans: len(spans) == 1)
    assert receiver.paths == ["/v1/traces"]
    [received] = spans
    assert received.resource["service.name"] == "checkout"
    assert received.scope == "bastion"
    assert received.span.name == "GET"  # blocked before routing: no route to name it by
    assert received.span.kind == received.span.SPAN_KIND_SERVER
    assert received.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert received.parent_span_id == "b7ad6b7169203331"
    attributes = received.attributes
    assert attributes["http.response.status_code"] == 403
    assert attributes["bastion.event"] is True and attributes["bastion.blocked"] is True
    assert "xss" in attributes["bastion.rule.types"]
    assert attributes["url.query"].endswith("&api_key=<redacted>")
    assert attributes["user_agent.original"] == "curl/8"
    events = [e for e in received.span.events if e.name == "bastion.attack"]
    assert len(events) == len(attributes["bastion.rule.ids"]) >= 1


def test_an_endpoint_with_a_path_is_used_as_given() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("https://collector:4318/") == "https://collector:4318/v1/traces"
    assert traces_url("https://gw.example/otlp/v1/traces") == "https://gw.example/otlp/v1/traces"


def untraced_replies(tmp_path: Path) -> list[Reply]:
    app = flask_app(protection(tmp_path, mode="block", tracing=False))
    return [get(app, target) for target in REQUESTS]


def same(reply: Reply, expected: Reply) -> bool:
    """The same response, but for the ids that differ between any two requests."""
    if reply.status != expected.status or reply.headers.keys() != expected.headers.keys():
        return False
    return reply.body == expected.body or (reply.status == 403 and b"security_response_id"
                                           in reply.body)


def test_a_dead_collector_changes_no_response(tmp_path: Path) -> None:
    expected = untraced_replies(tmp_path)
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    guard = protection(tmp_path, mode="block", otlp_endpoint=nobody)
    tracing.configure(guard.settings, resolve(guard.settings, exporting_processor(
        nobody, queue_size=16, batch_size=16, timeout_s=1.0)))  # exports fail all along
    app = flask_app(guard)

    def requests() -> None:
        for _ in range(10):
            for target, reply in zip(REQUESTS, expected, strict=True):
                assert same(get(app, target), reply)

    in_thread(requests)
    assert [reply.status for reply in expected] == [200, 403, 503, 403]
    assert guard.errors == {}


def test_a_stalled_collector_adds_no_wait_and_its_queue_stays_bounded(
        tmp_path: Path, receiver: OTLPReceiver) -> None:
    queue, batch, sent = 8, 4, 60
    guard = protection(tmp_path, otlp_endpoint=receiver.url)
    tracing.configure(guard.settings, resolve(guard.settings, exporting_processor(
        receiver.url, queue_size=queue, batch_size=batch, timeout_s=120)))
    app = flask_app(guard)
    receiver.stall()  # the collector takes requests and does not answer

    def first_batch() -> None:
        for index in range(batch):
            assert get(app, f"/item/{index}").status == 200

    in_thread(first_batch)
    receiver.wait_for(lambda spans: len(spans) == batch)  # that export now hangs

    def the_rest() -> None:
        for index in range(batch, sent):
            assert get(app, f"/item/{index}").status == 200

    in_thread(the_rest)  # every request answered while the export hangs
    receiver.release()
    flush()

    received = receiver.spans()
    ids = {span.span_id for span in received}
    assert len(ids) == len(received)  # nothing sent twice
    # What waited for the collector was at most one queue (and the batch in flight); the
    # rest was dropped, not kept in memory.
    assert batch < len(received) <= batch + queue
    assert sorted(item_of(span) for span in received)[-1] == sent - 1  # the newest are kept


def item_of(span: ReceivedSpan) -> int:
    return int(span.attributes["url.path"].rsplit("/", 1)[1])

