"""Hostile requests: the engine answers, within its bounds, and never raises."""

from __future__ import annotations

import json
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.addresses import request_addresses
from bastion.waf import WafResult, load_ruleset

RULESET = load_ruleset()
REFERENCE_LIKE_TIMEOUT_US = 5000


def run_request(body: bytes, content_type: str) -> WafResult:
    addresses = request_addresses(
        "POST", "/api/items?x=1", [("Content-Type", content_type)], body, "203.0.113.7"
    )
    return RULESET.context().run(addresses, timeout_us=REFERENCE_LIKE_TIMEOUT_US)


def peak_memory_of_run(body: bytes, content_type: str) -> int:
    addresses = request_addresses("POST", "/", [("Content-Type", content_type)], body)
    tracemalloc.start()
    try:
        RULESET.context().run(addresses, timeout_us=REFERENCE_LIKE_TIMEOUT_US)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_one_megabyte_body_is_bounded() -> None:
    body = b"a=" + b"x" * (1 << 20)
    assert isinstance(run_request(body, "application/x-www-form-urlencoded"), WafResult)
    # Only 4096 characters of the value are inspected, whatever its size.
    assert peak_memory_of_run(body, "text/plain") < 8 << 20


def test_ten_thousand_deep_json_does_not_recurse() -> None:
    body = (b"[" * 10_000) + (b"]" * 10_000)
    assert isinstance(run_request(body, "application/json"), WafResult)
    nested = (b'{"a":' * 10_000) + b'"x"' + (b"}" * 10_000)
    assert isinstance(run_request(nested, "application/json"), WafResult)


def test_hundred_thousand_keys_are_cut_to_the_container_limit() -> None:
    body = json.dumps({f"k{i}": i for i in range(100_000)}).encode()
    assert isinstance(run_request(body, "application/json"), WafResult)
    form = b"&".join(b"k%d=v" % i for i in range(100_000))
    assert isinstance(run_request(form, "application/x-www-form-urlencoded"), WafResult)


def test_invalid_utf8_and_nul_bytes() -> None:
    for body in (b"\xff\xfe\xc3\x28 <script>\x00", b"a=\x00\x00%00%ff%c3%28", b"\xed\xa0\x80"):
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "application/json", "application/xml", "multipart/form-data"):
            assert isinstance(run_request(body, content_type), WafResult)
    ctx = RULESET.context()
    result = ctx.run({"server.request.query": {"\ud800": ["\udfff\x00<script>"]},
                      "server.request.headers.no_cookies": {"x": b"\xff\x00"}})
    assert isinstance(result, WafResult)


def test_xml_entities_are_never_expanded() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b"<lolz>&lol2;</lolz>")
    addresses = request_addresses("POST", "/", [("Content-Type", "application/xml")], bomb)
    # Refused as a document: inspected as the raw text instead, entity unexpanded.
    assert addresses["server.request.body"] == bomb.decode()


scalars = st.one_of(
    st.text(max_size=200), st.binary(max_size=200), st.integers(), st.floats(),
    st.booleans(), st.none(),
)
objects = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=8)
    | st.dictionaries(st.text(max_size=20), children, max_size=8),
    max_leaves=60,
)
address_names = st.sampled_from([
    "server.request.query", "server.request.body", "server.request.headers.no_cookies",
    "server.request.cookies", "server.request.uri.raw", "server.request.path_params",
    "http.client_ip", "usr.id", "server.request.method", "server.response.status",
    "server.request.body.filenames", "unknown.address",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(address_names, objects, max_size=4), min_size=1, max_size=3))
def test_fuzz_run_never_raises(batches: list[dict[str, object]]) -> None:
    ctx = RULESET.context()
    seen: set[str] = set()
    for addresses in batches:
        result = ctx.run(addresses, timeout_us=REFERENCE_LIKE_TIMEOUT_US)
        assert isinstance(result, WafResult)
        fired = {event["rule"]["id"] for event in result.events}
        assert not fired & seen, "a rule fired twice in one context"
        seen |= fired
