"""The export processor: spans encoded as they end, posted in batches to a real OTLP receiver
(decoded with opentelemetry-proto), bounded when the collector does not keep up."""

from __future__ import annotations

import logging
import time

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanContext, TraceFlags

from bastion.tracing.batching import ENCODE_EVERY, EncodingBatchProcessor
from bastion.tracing.otlpwire import OTLPHTTPExporter
from bastion.tracing.provider import (
    BATCH_BYTES,
    QUEUE_BYTES,
    QUEUE_SIZE,
    exporting_processor,
    schedule_delay_s,
    traces_url,
)
from tests.tracing.otlp import OTLPReceiver


def processor(receiver: OTLPReceiver, *, queue_size: int = 64, batch_size: int = 4,
              delay_s: float = 60.0, timeout_s: float = 5.0, batch_bytes: int = BATCH_BYTES,
              queue_bytes: int = QUEUE_BYTES, encode_every: int = 1) -> EncodingBatchProcessor:
    """A processor that encodes each span as it ends unless told otherwise: the tests of the
    queue and the batches see each span there at once (the holding has tests of its own)."""
    exporter = OTLPHTTPExporter(traces_url(receiver.url), timeout_s=timeout_s)
    return EncodingBatchProcessor(exporter, queue_size=queue_size, batch_size=batch_size,
                                  schedule_delay_s=delay_s, batch_bytes=batch_bytes,
                                  queue_bytes=queue_bytes, encode_every=encode_every)


def provider(batching: EncodingBatchProcessor, service: str = "shop",
             **options: object) -> TracerProvider:
    made = TracerProvider(resource=Resource.create({"service.name": service}),
                          **options)  # type: ignore[arg-type]
    made.add_span_processor(batching)
    return made


def end_spans(made: TracerProvider, names: list[str], scope: str = "bastion") -> None:
    tracer = made.get_tracer(scope, "1.0")
    for name in names:
        tracer.start_span(name).end()


def test_spans_arrive_once_in_order_grouped_by_resource_and_scope(
        receiver: OTLPReceiver) -> None:
    batching = processor(receiver, batch_size=3)
    web, api = provider(batching, "web"), provider(batching, "api")
    end_spans(web, ["a", "b"])
    end_spans(api, ["c"], scope="app")
    end_spans(web, ["d", "e"], scope="app")
    assert batching.force_flush()

    received = receiver.wait_for(lambda spans: len(spans) == 5)
    assert [span.span.name for span in received] == ["a", "b", "c", "d", "e"]
    assert [(span.resource["service.name"], span.scope) for span in received] == [
        ("web", "bastion"), ("web", "bastion"), ("api", "app"), ("web", "app"), ("web", "app")]
    assert len({span.span_id for span in received}) == 5


def test_a_full_batch_goes_without_waiting_for_the_delay(receiver: OTLPReceiver) -> None:
    batching = processor(receiver, batch_size=4, delay_s=60.0)
    end_spans(provider(batching), ["1", "2", "3", "4", "5"])
    received = receiver.wait_for(lambda spans: len(spans) >= 4, timeout=10.0)
    assert [span.span.name for span in received] == ["1", "2", "3", "4"]  # "5" waits
    time.sleep(0.2)
    assert len(receiver.spans()) == 4


def test_a_batch_is_bounded_in_bytes_too_and_goes_when_they_are_reached(
        receiver: OTLPReceiver) -> None:
    # Spans of about 1 KB each, batches of at most 2.5 KB: two spans a post, without waiting
    # for the (long) delay, whatever the count limit says; the last two (2 KB) wait for it.
    batching = processor(receiver, batch_size=100, batch_bytes=2500, delay_s=60.0)
    tracer = provider(batching).get_tracer("bastion")
    for name in "abcdef":
        tracer.start_span(name, attributes={"payload": name * 1000}).end()
    received = receiver.wait_for(lambda spans: len(spans) >= 4, timeout=10.0)
    assert [span.span.name for span in received] == list("abcd")
    time.sleep(0.2)
    assert len(receiver.spans()) == 4

    assert batching.force_flush()
    assert [span.span.name for span in receiver.spans()] == list("abcdef")
    assert [len(request.resource_spans[0].scope_spans[0].spans)
            for request in receiver.requests] == [2, 2, 2]


def test_a_span_larger_than_a_batch_goes_alone(receiver: OTLPReceiver) -> None:
    batching = processor(receiver, batch_size=100, batch_bytes=500, delay_s=60.0)
    tracer = provider(batching).get_tracer("bastion")
    tracer.start_span("big", attributes={"payload": "x" * 2000}).end()
    [received] = receiver.wait_for(lambda spans: len(spans) == 1, timeout=10.0)
    assert received.span.name == "big"


def test_a_partial_batch_goes_when_the_delay_passes(receiver: OTLPReceiver) -> None:
    batching = processor(receiver, batch_size=100, delay_s=0.2)
    end_spans(provider(batching), ["lonely"])
    [received] = receiver.wait_for(lambda spans: len(spans) == 1, timeout=10.0)
    assert received.span.name == "lonely"


def test_spans_are_held_until_a_group_of_them_ended_then_encoded_together(
        receiver: OTLPReceiver) -> None:
    batching = processor(receiver, batch_size=4, encode_every=4, delay_s=60.0)
    made = provider(batching)
    end_spans(made, ["1", "2", "3"])
    assert not batching._queue  # held as they are, not yet encoded
    end_spans(made, ["4"])  # the fourth: all four encoded, a full batch, posted
    received = receiver.wait_for(lambda spans: len(spans) >= 4, timeout=10.0)
    assert [span.span.name for span in received] == ["1", "2", "3", "4"]


def test_held_spans_go_when_the_delay_passes_or_at_a_flush(receiver: OTLPReceiver) -> None:
    quiet = processor(receiver, batch_size=100, encode_every=16, delay_s=0.2)
    end_spans(provider(quiet), ["lonely"])
    [received] = receiver.wait_for(lambda spans: len(spans) == 1, timeout=10.0)
    assert received.span.name == "lonely"

    flushed = processor(receiver, batch_size=100, encode_every=16, delay_s=60.0)
    end_spans(provider(flushed), ["a", "b", "c"])
    assert flushed.force_flush()
    assert [span.span.name for span in receiver.spans()] == ["lonely", "a", "b", "c"]


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this value")


def _ended(name: str, value: object) -> ReadableSpan:
    """An ended span as a provider hands it over, with an attribute value of any kind (the
    SDK's own spans turn unknown values into text before an encoder sees them)."""
    context = SpanContext(trace_id=0x1234, span_id=len(name) + 1, is_remote=False,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return ReadableSpan(name=name, context=context,
                        attributes={"value": value},  # type: ignore[dict-item]
                        resource=Resource.create({"service.name": "shop"}),
                        start_time=1, end_time=2)


def test_a_held_span_that_cannot_be_encoded_is_dropped_alone_and_said_once(
        receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture) -> None:
    batching = processor(receiver, batch_size=100, encode_every=3, delay_s=60.0)
    with caplog.at_level(logging.WARNING, logger="bastion"):
        for name in ("before", "broken", "after", "broken", "last", "end"):
            batching.on_end(_ended(name, _Unprintable() if name == "broken" else name))
    assert batching.force_flush()
    names = [span.span.name for span in receiver.spans()]
    assert names == ["before", "after", "last", "end"]
    assert sum("could not be encoded" in r.getMessage() for r in caplog.records) == 1


def test_unsampled_spans_are_not_sent(receiver: OTLPReceiver) -> None:
    batching = processor(receiver)
    end_spans(provider(batching, sampler=ALWAYS_OFF), ["dropped by the sampler"])
    end_spans(provider(batching), ["sampled"])
    assert batching.force_flush()
    assert [span.span.name for span in receiver.wait_for(lambda spans: len(spans) >= 1)] == [
        "sampled"]


def test_a_full_queue_drops_the_oldest_and_says_so_once(
        receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture) -> None:
    batching = processor(receiver, queue_size=4, batch_size=4, timeout_s=60.0)
    made = provider(batching)
    receiver.stall()
    end_spans(made, ["0", "1", "2", "3"])  # a full batch: its post now hangs
    receiver.wait_for(lambda spans: len(spans) == 4)
    with caplog.at_level(logging.WARNING, logger="bastion"):
        end_spans(made, [str(i) for i in range(4, 20)])
    assert batching.dropped == 12  # 16 spans for 4 places
    assert sum("export queue is full" in r.getMessage() for r in caplog.records) == 1
    receiver.release()
    assert batching.force_flush()
    names = [span.span.name for span in receiver.spans()]
    assert names == ["0", "1", "2", "3", "16", "17", "18", "19"]  # the newest were kept


def test_the_queue_is_bounded_in_bytes_too(receiver: OTLPReceiver) -> None:
    # Spans of about 1 KB and room for 3 KB: large spans (an error's stack) cannot hold more
    # memory than that while the collector hangs, whatever the count allows.
    batching = processor(receiver, queue_size=100, batch_size=1, timeout_s=60.0,
                         queue_bytes=3500)
    tracer = provider(batching).get_tracer("bastion")
    receiver.stall()
    tracer.start_span("first", attributes={"payload": "x" * 1000}).end()  # its post hangs
    receiver.wait_for(lambda spans: len(spans) == 1)
    for number in range(10):
        tracer.start_span(str(number), attributes={"payload": "x" * 1000}).end()
    assert batching.dropped == 7
    assert batching._queued_bytes <= 3500
    receiver.release()
    assert batching.force_flush()
    names = [span.span.name for span in receiver.spans()]
    assert names == ["first", "7", "8", "9"]  # the newest were kept


def test_shutdown_sends_what_is_queued_and_takes_no_more(receiver: OTLPReceiver) -> None:
    batching = processor(receiver, batch_size=50)
    made = provider(batching)
    end_spans(made, ["queued"])
    batching.shutdown()
    end_spans(made, ["too late"])
    assert [span.span.name for span in receiver.spans()] == ["queued"]


@pytest.mark.parametrize(("value", "expected"), [
    (None, 5.0), ("100", 0.1), (" 2500 ", 2.5), ("0", 5.0), ("-3", 5.0), ("soon", 5.0)])
def test_the_schedule_delay_comes_from_opentelemetrys_variable(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        value: str | None, expected: float) -> None:
    if value is None:
        monkeypatch.delenv("OTEL_BSP_SCHEDULE_DELAY", raising=False)
    else:
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", value)
    with caplog.at_level(logging.WARNING, logger="bastion"):
        assert schedule_delay_s() == expected
    said = any("OTEL_BSP_SCHEDULE_DELAY" in r.getMessage() for r in caplog.records)
    assert said == (value is not None and expected == 5.0)


def test_batch_and_queue_sizes_come_from_opentelemetrys_variables(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "many")
    with caplog.at_level(logging.WARNING, logger="bastion"):
        batching = exporting_processor("http://127.0.0.1:9")
    try:
        assert isinstance(batching, EncodingBatchProcessor)
        assert (batching._batch_size, batching._queue_size) == (100, QUEUE_SIZE)
        assert batching._encode_every == ENCODE_EVERY
        assert [r.getMessage() for r in caplog.records] == [
            f"bastion: OTEL_BSP_MAX_QUEUE_SIZE='many' is not a number of spans; {QUEUE_SIZE} "
            "is used"]
    finally:
        batching.shutdown()


def test_a_flush_waits_for_a_stalled_post_no_longer_than_asked(receiver: OTLPReceiver) -> None:
    batching = processor(receiver, queue_size=8, batch_size=2, timeout_s=60.0)
    made = provider(batching)
    receiver.stall()
    end_spans(made, ["0", "1"])  # a full batch: its post hangs
    receiver.wait_for(lambda spans: len(spans) == 2)
    end_spans(made, ["2"])
    started = time.monotonic()
    assert not batching.force_flush(timeout_millis=300)
    assert time.monotonic() - started < 5.0
    receiver.release()
    assert batching.force_flush()
    assert [span.span.name for span in receiver.spans()] == ["0", "1", "2"]
