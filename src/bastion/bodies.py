"""Request body parsing by content type, for inspection only.

The application parses its own body; this module parses a copy so that rules see the same
fields the application will. Every parser is defensive: hostile bodies (huge, deeply nested,
malformed, entity bombs) never raise, they degrade to inspecting the raw text.
"""

from __future__ import annotations

import json
import xml.parsers.expat
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

MAX_BODY_BYTES = 1 << 20  # bodies beyond this are inspected as truncated text
MAX_JSON_DEPTH = 128  # deeper JSON is inspected as text (the engine reads depth 20 anyway)
MAX_PARTS = 256


@dataclass
class ParsedBody:
    """What rules inspect: the structured body and the names of uploaded files."""

    value: object
    filenames: list[str] = field(default_factory=list)


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """Split `type/subtype; key=value` into the lower-case type and its parameters."""
    head, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return head.strip().lower(), params


def text_of(raw: bytes, charset: str = "utf-8") -> str:
    try:
        return raw.decode(charset or "utf-8", "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def form_fields(text: str) -> dict[str, list[str]]:
    """`a=1&a=2&b` as {"a": ["1", "2"], "b": [""]}, keeping blank and malformed pairs.

    What `urllib.parse.parse_qsl(keep_blank_values=True)` returns, at a third of its cost:
    this runs on every request's query string, and most parts need no decoding at all."""
    fields: dict[str, list[str]] = {}
    if not text:
        return fields
    for pair in text.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        fields.setdefault(key, []).append(value)
    return fields


def _json_depth_ok(text: str) -> bool:
    """Whether nesting stays within MAX_JSON_DEPTH, counted outside strings, in one pass."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_json(text: str) -> object:
    # Fewer openers than the limit cannot nest deeper than it: most bodies skip the scan.
    openers = text.count("{") + text.count("[")
    if openers > MAX_JSON_DEPTH and not _json_depth_ok(text):
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


class _XmlTree:
    """Builds {tag: {"@attr": value, "#text": [...], child: ...}} with expat, refusing DTDs.

    A document type declaration is where entity definitions live, so refusing it outright
    rules out entity expansion bombs and external entity reads without a further dependency.
    """

    def __init__(self) -> None:
        self.root: dict[str, object] = {}
        self._stack: list[dict[str, object]] = [self.root]

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        node: dict[str, object] = {f"@{k}": v for k, v in attributes.items()}
        parent = self._stack[-1]
        children = parent.setdefault(tag, [])
        if isinstance(children, list) and len(children) < MAX_PARTS:
            children.append(node)
        self._stack.append(node)

    def end(self, tag: str) -> None:
        if len(self._stack) > 1:
            self._stack.pop()

    def text(self, data: str) -> None:
        if data.strip():
            texts = self._stack[-1].setdefault("#text", [])
            if isinstance(texts, list) and len(texts) < MAX_PARTS:
                texts.append(data)


def _refuse(*_: object) -> int:
    raise ValueError("XML document type declarations are not accepted")


def parse_xml(raw: bytes) -> object:
    tree = _XmlTree()
    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = tree.start
    parser.EndElementHandler = tree.end
    parser.CharacterDataHandler = tree.text
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    try:
        parser.Parse(raw, True)
    except (ValueError, xml.parsers.expat.ExpatError, RecursionError):
        return text_of(raw)
    return tree.root


def parse_multipart(raw: bytes, boundary: str) -> ParsedBody:
    """multipart/form-data fields as {name: [values]}, and the uploaded file names."""
    fields: dict[str, list[str]] = {}
    filenames: list[str] = []
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    for part in raw.split(delimiter)[1 : MAX_PARTS + 1]:
        if part.startswith(b"--"):
            break
        head, _, content = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not _:
            head, _, content = part.lstrip(b"\n").partition(b"\n\n")
        disposition = ""
        for line in head.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        _, params = media_type("x;" + disposition.split(";", 1)[-1] if disposition else "x")
        field_name = params.get("name", "")
        if "filename" in params:
            # The application sees an upload as a file, not a field: its name is inspected,
            # its bytes (images, documents, any text at all) are not.
            filenames.append(params["filename"])
            continue
        body = content[:-2] if content.endswith(b"\r\n") else content.rstrip(b"\n")
        fields.setdefault(field_name, []).append(text_of(body))
    return ParsedBody(fields, filenames)


def parse_body(raw: bytes, content_type: str) -> ParsedBody:
    """The inspectable form of a body; unknown or broken encodings fall back to text."""
    raw = raw[:MAX_BODY_BYTES]
    kind, params = media_type(content_type)
    charset = params.get("charset", "utf-8")
    if kind == "application/x-www-form-urlencoded":
        return ParsedBody(form_fields(text_of(raw, charset)))
    if kind == "multipart/form-data" and params.get("boundary"):
        return parse_multipart(raw, params["boundary"])
    if kind == "application/json" or kind.endswith("+json"):
        return ParsedBody(parse_json(text_of(raw, charset)))
    if kind in ("application/xml", "text/xml") or kind.endswith("+xml"):
        return ParsedBody(parse_xml(raw))
    return ParsedBody(text_of(raw, charset))
