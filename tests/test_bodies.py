"""Body parsing gives rules the fields the application will see, and never raises."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from bastion.bodies import form_fields, parse_body


def test_form_json_xml_multipart_and_text() -> None:
    assert parse_body(b"a=1&a=2&b=%3Cx%3E", "application/x-www-form-urlencoded").value == {
        "a": ["1", "2"], "b": ["<x>"]}
    assert parse_body(b'{"a": [1, {"b": "c"}]}', "application/json; charset=utf-8").value == {
        "a": [1, {"b": "c"}]}
    xml = parse_body(b'<r id="7"><n>hi</n></r>', "application/xml").value
    assert xml == {"r": [{"@id": "7", "n": [{"#text": ["hi"]}]}]}
    multipart = (b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.php\"\r\n"
                 b"Content-Type: text/plain\r\n\r\n<?php x\r\n--XyZ\r\n"
                 b"Content-Disposition: form-data; name=\"t\"\r\n\r\nhello\r\n--XyZ--\r\n")
    parsed = parse_body(multipart, "multipart/form-data; boundary=XyZ")
    assert parsed.value == {"t": ["hello"]}  # file contents are not fields
    assert parsed.filenames == ["a.php"]
    assert parse_body(b"plain", "").value == "plain"


def test_broken_bodies_fall_back_to_text() -> None:
    assert parse_body(b'{"a": ', "application/json").value == '{"a": '
    assert parse_body(b"<a><b></a>", "text/xml").value == "<a><b></a>"
    assert parse_body(b"\xff\xfe", "application/json").value == "\ufffd\ufffd"


@given(st.text(alphabet="ab=&%+;2F0x é\x00", max_size=40))
def test_form_fields_read_what_parse_qsl_reads(text: str) -> None:
    expected: dict[str, list[str]] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        expected.setdefault(key, []).append(value)
    assert form_fields(text) == expected
