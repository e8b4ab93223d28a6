"""Tokenizer-based XSS detection.

A value is dangerous when, pasted into an HTML page, it makes the browser run script.  The
browser decides that with its HTML tokenizer, so we run a (simplified but faithful) HTML5
tokenizer over the value and judge the tokens it produces: script-capable tags, event-handler
attributes, URL attributes carrying a script scheme, and CSS that can run code.

Because we do not know where the application will echo the value, the tokenizer is started in
several contexts: plain text (data state) and inside unquoted, single-quoted and double-quoted
attribute values.  A value that only works after breaking out of an attribute is judged after the
break.  Two context-free checks complete the picture: the whole value used as a URL
(``javascript:...``) and the value breaking out of a JavaScript string into a call.

Everything is hand-written scanning in linear time: no regular expressions, no backtracking.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import NamedTuple

__all__ = [
    "CTX_ATTR_DOUBLE",
    "CTX_ATTR_SINGLE",
    "CTX_ATTR_UNQUOTED",
    "CTX_DATA",
    "Token",
    "decode_entities",
    "is_xss",
    "tokenize",
]

# Starting contexts of the tokenizer.
CTX_DATA = 0
CTX_ATTR_UNQUOTED = 1
CTX_ATTR_SINGLE = 2
CTX_ATTR_DOUBLE = 3

# Token kinds.
START_TAG = "start"
END_TAG = "end"
ATTR = "attr"
COMMENT = "comment"
BOGUS = "bogus"
DOCTYPE = "doctype"

_WS = " \t\n\f\r"
_TAG_NAME_END = " \t\n\f\r/>"
_ATTR_NAME_END = " \t\n\f\r/>="
_UNQUOTED_END = " \t\n\f\r>"
_MAX_DEPTH = 2


class Token(NamedTuple):
    """One tokenizer event; ``tag`` is the enclosing tag name for attributes ('' if unknown)."""

    kind: str
    name: str
    value: str | None
    pos: int
    tag: str


# Elements that run script, load active content or documents, or change how the rest of the
# page is parsed or submitted.  Their mere presence in user input is an injection.
_DANGEROUS_TAGS = frozenset(
    {
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math",
        "style", "base", "link", "meta", "form", "isindex", "xml", "import", "vmlframe",
        "handler", "listener", "noscript", "portal", "layer", "ilayer", "bgsound", "xss",
        "template", "plaintext", "xmp", "noembed", "noframes",
    }
)

# Events of the DOM and of legacy browsers; ``on`` + one of these is an event handler.
_EVENTS = frozenset(
    """
    abort activate afterprint afterscriptexecute afterupdate animationcancel animationend
    animationiteration animationstart auxclick beforeactivate beforecopy beforecut
    beforedeactivate beforeeditfocus beforeinput beforematch beforepaste beforeprint
    beforescriptexecute beforetoggle beforeunload beforeupdate begin blur bounce cancel canplay
    canplaythrough cellchange change click close command contextlost contextmenu
    contextrestored controlselect copy cuechange cut dataavailable datasetchanged
    datasetcomplete dblclick deactivate drag dragdrop dragend dragenter dragexit dragleave
    dragover dragstart drop durationchange emptied encrypted end ended error errorupdate
    filterchange finish focus focusin focusout formchange formdata forminput fullscreenchange
    fullscreenerror gotpointercapture hashchange help input invalid keydown keypress keyup
    languagechange layoutcomplete load loadeddata loadedmetadata loadend loadstart losecapture
    lostpointercapture message messageerror mousedown mouseenter mouseleave mousemove mouseout
    mouseover mouseup mousewheel move moveend movestart mozfullscreenchange offline online
    orientationchange overflow overflowchanged pagehide pageshow paste pause play playing
    pointercancel pointerdown pointerenter pointerleave pointerlockchange pointermove
    pointerout pointerover pointerrawupdate pointerup popstate progress propertychange
    ratechange readystatechange rejectionhandled repeat reset resize resizeend resizestart
    rowenter rowexit rowsdelete rowsinserted scroll scrollend search securitypolicyviolation
    seeked seeking select selectionchange selectstart show slotchange stalled start storage
    submit suspend timeout timeupdate toggle touchcancel touchend touchmove touchstart
    transitioncancel transitionend transitionrun transitionstart unhandledrejection unload
    underflow visibilitychange volumechange waiting webkitanimationend
    webkitanimationiteration webkitanimationstart webkittransitionend wheel zoom
    """.split()
)

# Attributes whose value the browser treats as a URL (or a list of them).
_URL_ATTRS = frozenset(
    {
        "href", "src", "action", "formaction", "data", "lowsrc", "dynsrc", "background",
        "poster", "codebase", "cite", "longdesc", "usemap", "ping", "srcset", "manifest",
        "profile", "archive", "classid", "icon", "to", "from", "values", "by", "value",
        "folder", "xmlns", "datasrc", "src2", "code", "movie", "target", "location",
    }
)

_SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "livescript", "mocha", "jscript"})

# data: URLs that never run script wherever they are loaded.
_SAFE_DATA_MIME_PREFIXES = (
    "image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/bmp",
    "image/x-icon", "image/vnd.microsoft.icon", "image/avif", "image/apng", "audio/", "video/",
    "font/", "application/font", "application/x-font", "text/plain", "text/csv",
    "application/pdf", "application/octet-stream",
)

# Named character references that matter for hiding a scheme, a tag or a call.
_NAMED_REFS: dict[str, str] = {
    "tab": "\t", "newline": "\n", "colon": ":", "lpar": "(", "rpar": ")", "sol": "/",
    "bsol": "\\", "period": ".", "quot": '"', "apos": "'", "grave": "`", "lt": "<", "gt": ">",
    "amp": "&", "nbsp": "\xa0", "equals": "=", "semi": ";", "comma": ",", "excl": "!",
    "num": "#", "percnt": "%", "plus": "+", "lsqb": "[", "lbrack": "[", "rsqb": "]",
    "rbrack": "]", "lcub": "{", "lbrace": "{", "rcub": "}", "rbrace": "}", "ast": "*",
    "midast": "*", "dollar": "$", "quest": "?", "commat": "@", "hyphen": "-", "dash": "-",
    "lowbar": "_", "verbar": "|", "vert": "|", "hat": "^", "space": " ",
}
# Legacy references the browser also decodes without a trailing semicolon.
_LEGACY_REFS = frozenset({"amp", "lt", "gt", "quot", "nbsp"})

_JS_OPERATORS = ";,+-*/%|&^?:<>=!~)}]"
# Globals and sinks whose call after a string break is the classic payload.
_JS_SINKS = frozenset(
    {
        "alert", "prompt", "confirm", "eval", "function", "settimeout", "setinterval",
        "execscript", "fetch", "import", "atob", "open", "print", "document", "window",
        "location", "top", "self", "parent", "frames", "globalthis", "this", "constructor",
        "xmlhttprequest", "navigator", "string", "unescape", "decodeuricomponent", "console",
        "require", "process", "new",
    }
)


def decode_entities(value: str) -> str:
    """Decode HTML character references the way a browser does inside attribute values."""
    amp = value.find("&")
    if amp < 0:
        return value
    out: list[str] = []
    n = len(value)
    i = 0
    while amp >= 0:
        out.append(value[i:amp])
        j = amp + 1
        decoded: str | None = None
        if j < n and value[j] == "#":
            j += 1
            hexa = j < n and value[j] in "xX"
            if hexa:
                j += 1
            start = j
            digits = "0123456789abcdefABCDEF" if hexa else "0123456789"
            while j < n and value[j] in digits:
                j += 1
            if j > start:
                text = value[start:j].lstrip("0")[:8] or "0"
                code = int(text, 16 if hexa else 10)
                if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    decoded = "\ufffd"
                else:
                    decoded = chr(code)
                if j < n and value[j] == ";":
                    j += 1
        else:
            start = j
            while j < n and value[j].isascii() and value[j].isalnum():
                j += 1
            name = value[start:j].lower()
            if j < n and value[j] == ";" and name in _NAMED_REFS:
                decoded = _NAMED_REFS[name]
                j += 1
            elif name in _LEGACY_REFS:
                decoded = _NAMED_REFS[name]
        if decoded is None:
            out.append("&")
            i = amp + 1
        else:
            out.append(decoded)
            i = j
        amp = value.find("&", i)
    out.append(value[i:])
    return "".join(out)


def tokenize(value: str, context: int = CTX_DATA) -> Iterator[Token]:
    """Yield tags, attributes and comments as an HTML5 tokenizer would see them.

    ``context`` says where the value starts: in text, or inside an attribute value of an
    unknown tag.  Text is skipped (it cannot run script); a tag cut off by the end of the value
    is still reported, since the page around the injection would complete it.
    """
    s = value
    n = len(s)
    i = 0
    tag = ""
    in_end_tag = False
    # Finish the attribute value we were dropped into, then continue inside that tag.
    if context == CTX_ATTR_UNQUOTED:
        while i < n and s[i] not in _UNQUOTED_END:
            i += 1
        if i >= n:
            return
        if s[i] == ">":
            i += 1
            yield from _data(s, i)
            return
    elif context in (CTX_ATTR_SINGLE, CTX_ATTR_DOUBLE):
        j = s.find("'" if context == CTX_ATTR_SINGLE else '"')
        if j < 0:
            return
        i = j + 1
    else:
        yield from _data(s, 0)
        return
    # Inside the tag after the value: attribute list of an unknown tag.
    i = yield from _attributes(s, i, tag, in_end_tag)
    if i < n:
        yield from _data(s, i)


def _data(s: str, i: int) -> Generator[Token, None, None]:
    """Data state: skip text to the next '<' and dispatch on what follows it."""
    n = len(s)
    while True:
        lt = s.find("<", i)
        if lt < 0 or lt + 1 >= n:
            return
        i = lt + 1
        c = s[i]
        if c.isascii() and c.isalpha():
            i = yield from _tag(s, i, lt, False)
        elif c == "/":
            i += 1
            if i >= n:
                return
            c = s[i]
            if c.isascii() and c.isalpha():
                i = yield from _tag(s, i, lt, True)
            elif c == ">":
                i += 1
            else:
                i = yield from _bogus(s, i, lt)
        elif c == "!":
            i += 1
            if s.startswith("--", i):
                i = yield from _comment(s, i + 2, lt)
            elif s[i : i + 7].lower() == "doctype":
                end = s.find(">", i)
                end = n if end < 0 else end
                yield Token(DOCTYPE, s[i + 7 : end].strip(_WS), None, lt, "")
                i = end + 1
            else:
                i = yield from _bogus(s, i, lt)
        elif c == "?":
            i = yield from _bogus(s, i, lt)
        # Anything else: the '<' was text; keep scanning after it.


def _tag(s: str, i: int, lt: int, end: bool) -> Generator[Token, None, int]:
    """Tag name state, then the attribute list; returns the index after the tag."""
    n = len(s)
    j = i
    while j < n and s[j] not in _TAG_NAME_END:
        j += 1
    name = s[i:j].lower()
    yield Token(END_TAG if end else START_TAG, name, None, lt, name)
    i = yield from _attributes(s, j, name, end)
    return i


def _attributes(s: str, i: int, tag: str, end: bool) -> Generator[Token, None, int]:
    """Before/after attribute name and value states; returns the index after '>'."""
    n = len(s)
    while True:
        # Before attribute name.
        while i < n and (s[i] in _WS or s[i] == "/"):
            i += 1
        if i >= n:
            return n
        if s[i] == ">":
            return i + 1
        # Attribute name ('=' as the first character belongs to the name).
        start = i
        if s[i] == "=":
            i += 1
        while i < n and s[i] not in _ATTR_NAME_END:
            i += 1
        name = s[start:i]
        # After attribute name.
        while i < n and s[i] in _WS:
            i += 1
        if i >= n or s[i] != "=":
            if not end:
                yield Token(ATTR, name, None, start, tag)
            continue
        i += 1
        # Before attribute value.
        while i < n and s[i] in _WS:
            i += 1
        if i >= n:
            if not end:
                yield Token(ATTR, name, "", start, tag)
            return n
        q = s[i]
        if q in "\"'":
            close = s.find(q, i + 1)
            if close < 0:
                close = n
            val = s[i + 1 : close]
            i = close + 1
        elif q == ">":
            val = ""
        else:
            j = i
            while j < n and s[j] not in _UNQUOTED_END:
                j += 1
            val = s[i:j]
            i = j
        if not end:
            yield Token(ATTR, name, val, start, tag)


def _comment(s: str, i: int, lt: int) -> Generator[Token, None, int]:
    """Comment states after '<!--'; '-->', '--!>' and the abrupt '<!-->' / '<!--->' end it."""
    n = len(s)
    if s.startswith(">", i):
        yield Token(COMMENT, "", None, lt, "")
        return i + 1
    if s.startswith("->", i):
        yield Token(COMMENT, "", None, lt, "")
        return i + 2
    a = s.find("-->", i)
    b = s.find("--!>", i)
    if a < 0 and b < 0:
        yield Token(COMMENT, s[i:], None, lt, "")
        return n
    if a < 0 or (0 <= b < a):
        yield Token(COMMENT, s[i:b], None, lt, "")
        return b + 4
    yield Token(COMMENT, s[i:a], None, lt, "")
    return a + 3


def _bogus(s: str, i: int, lt: int) -> Generator[Token, None, int]:
    """Bogus comment ('<?...>', '<!x...>', '</1...>'): everything up to the next '>'."""
    end = s.find(">", i)
    if end < 0:
        end = len(s)
    yield Token(BOGUS, s[i:end], None, lt, "")
    return end + 1


# ---------------------------------------------------------------------------------------------
# Judging


def _local_tag_name(name: str) -> str:
    """Element name as legacy parsers matched it: namespace prefix and NULs dropped."""
    if "\x00" in name:
        name = name.replace("\x00", "")
    colon = name.rfind(":")
    if colon >= 0:
        name = name[colon + 1 :]
    j = 0
    while j < len(name) and name[j].isascii() and name[j].isalnum():
        j += 1
    return name[:j]


def _strip_url(value: str, limit: int) -> str:
    """Drop what URL parsing ignores (leading C0/space, embedded tab/CR/LF, NUL); lower-case."""
    out: list[str] = []
    started = False
    for ch in value:
        if not started:
            if ch <= " " or ch == "\xa0" or ch == "`":
                continue
            started = True
        if ch in "\t\n\r\x00":
            continue
        out.append(ch)
        if len(out) >= limit:
            break
    return "".join(out).lower()


def _url_danger(value: str, strict: bool) -> str | None:
    """Scheme check of an (entity-decoded) URL; ``strict`` wants code after the scheme too."""
    url = _strip_url(value, 64)
    colon = url.find(":")
    if colon <= 0 or colon > 12:
        return None
    scheme = url[:colon]
    rest = url[colon + 1 :]
    if scheme in _SCRIPT_SCHEMES:
        if not strict:
            return scheme + ":"
        if rest[:1] not in ("", " ") or any(ch in rest for ch in "(`=\\[;"):
            return scheme + ":"
        return None
    if scheme == "data":
        mime = rest
        for k, ch in enumerate(mime):
            if ch in ",;":
                mime = mime[:k]
                break
        mime = mime.strip()
        if strict:
            if mime.startswith(
                ("text/html", "image/svg", "application/xhtml", "text/xml", "application/xml",
                 "text/javascript", "application/javascript", "application/ecmascript",
                 "application/x-shockwave", "text/xsl", "text/vbscript")
            ):
                return "data:" + mime
            return None
        if mime.startswith(_SAFE_DATA_MIME_PREFIXES) and "svg" not in mime:
            return None
        return "data:" + mime
    return None


def _css_normalize(value: str) -> str:
    """Undo CSS comments and backslash escapes, drop whitespace, lower-case."""
    out: list[str] = []
    n = len(value)
    i = 0
    while i < n:
        ch = value[i]
        if ch == "/" and value.startswith("*", i + 1):
            end = value.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch == "\\":
            j = i + 1
            k = j
            while k < n and k - j < 6 and value[k] in "0123456789abcdefABCDEF":
                k += 1
            if k > j:
                code = int(value[j:k], 16)
                out.append(chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
                           else "\ufffd")
                if k < n and value[k] in _WS:
                    k += 1
                i = k
            else:
                if j < n and value[j] not in "\n\r\f":
                    out.append(value[j])
                i = j + 1
            continue
        if ch not in _WS and ch != "\x00":
            out.append(ch)
        i += 1
    return "".join(out).lower()


def _css_danger(value: str) -> str | None:
    """CSS that can run script (IE expressions/behaviors, XBL bindings, script URLs)."""
    css = _css_normalize(value)
    for needle in ("expression(", "behavior:", "-moz-binding", "javascript:", "vbscript:",
                   "@import"):
        if needle in css:
            return needle
    return None


def _judge_attr(tok: Token, strict: bool, depth: int) -> str | None:
    """Event handlers, script URLs, dangerous CSS and nested documents in one attribute."""
    name = tok.name.lower()
    if "\x00" in name:
        name = name.replace("\x00", "")
    value = tok.value
    if name.startswith("on") and value is not None and value.strip(_WS):
        event = name[2:]
        if event in _EVENTS:
            return name + "="
        if len(event) >= 3 and event.isascii() and event.isalpha() and (
            not strict or any(ch in value for ch in "(`=")
        ):
            return name + "="
    if not value:
        return None
    colon = name.rfind(":")
    local = name[colon + 1 :] if colon >= 0 else name
    decoded = decode_entities(value)
    if local == "style":
        found = _css_danger(decoded)
        if found:
            return found
    if local == "srcdoc" and depth < _MAX_DEPTH and "<" in decoded:
        found = _scan(decoded, CTX_DATA, depth + 1)
        if found:
            return "srcdoc=" + found
    url_attr = local in _URL_ATTRS
    found = _url_danger(decoded, strict or not url_attr)
    if found:
        return found
    if local == "content" or name == "http-equiv":
        low = decoded.lower()
        k = low.find("url=")
        if k >= 0:
            return _url_danger(decoded[k + 4 :], False)
    return None


def _scan(value: str, context: int, depth: int) -> str | None:
    """Run the tokenizer from one context and report the first dangerous token."""
    strict = context != CTX_DATA
    for tok in tokenize(value, context):
        kind = tok.kind
        if kind == ATTR:
            found = _judge_attr(tok, strict and tok.tag == "", depth)
            if found:
                return found
        elif kind == START_TAG:
            if _local_tag_name(tok.name) in _DANGEROUS_TAGS:
                return value[tok.pos : tok.pos + 1 + len(tok.name)].split()[0][:40]
        elif kind == COMMENT:
            # IE conditional comments hide live markup inside a comment.
            body = tok.name.lstrip(_WS)
            if body[:3].lower() == "[if" and depth < _MAX_DEPTH:
                found = _scan(body, CTX_DATA, depth + 1)
                if found:
                    return found
        elif kind == BOGUS:
            low = tok.name.lower()
            if low.startswith(("?import", "?xml-stylesheet")):
                return "<" + low.split()[0] if low.split() else "<?"
            if low.startswith("[if") and depth < _MAX_DEPTH:
                found = _scan(tok.name, CTX_DATA, depth + 1)
                if found:
                    return found
    return None


def _js_break(value: str) -> str | None:
    """A quote that closes a JS string, an operator, then a call or a property write."""
    n = len(value)
    i = 0
    while True:
        # Next quote character.
        q = -1
        for quote in "'\"`":
            k = value.find(quote, i)
            if k >= 0 and (q < 0 or k < q):
                q = k
        if q < 0:
            return None
        i = q + 1
        j = i
        ops = 0
        while j < n and (value[j] in _JS_OPERATORS or value[j] in _WS):
            if value[j] not in _WS:
                ops += 1
            j += 1
        if ops == 0:
            continue
        # Identifier chain: ident ( '.' ident | '[' ... ']' )*
        start = j
        first = ""
        member = False
        while True:
            k = j
            while k < n and (value[k].isalnum() or value[k] in "_$"):
                k += 1
            if k == j or value[j].isdigit():
                break
            if not first:
                first = value[j:k].lower()
            j = k
            if j < n and value[j] == ".":
                member = True
                j += 1
                continue
            if j < n and value[j] == "[":
                close = value.find("]", j)
                if close < 0:
                    break
                member = True
                j = close + 1
                if j < n and value[j] == ".":
                    j += 1
                    continue
            break
        if not first or j >= n:
            continue
        nxt = value[j]
        if nxt in "(`" and (first in _JS_SINKS or member):
            if nxt == "`" or value.find(")", j) > 0:
                return value[q:j + 1]
        elif nxt == "=" and member and not value.startswith("==", j) and j + 1 < n:
            return value[q:j + 1]
        del start


def _has_ws(value: str) -> bool:
    """Whether any HTML whitespace occurs (needed to leave an unquoted attribute value)."""
    return " " in value or "\t" in value or "\n" in value or "\f" in value or "\r" in value


def is_xss(value: str) -> str | None:
    """Return the offending fragment (e.g. '<script', 'onerror=', 'javascript:') when `value`
    would inject script into an HTML page, else None."""
    has_lt = "<" in value
    has_eq = "=" in value
    has_colon = ":" in value or "&" in value
    has_sq = "'" in value
    has_dq = '"' in value
    # Fast path: nothing that could open a tag, an attribute, a URL scheme or a JS break.
    if not (has_lt or has_eq or has_colon or "(" in value or "`" in value):
        return None
    if has_lt:
        found = _scan(value, CTX_DATA, 0)
        if found:
            return found
    if has_colon:
        found = _url_danger(decode_entities(value[:256]), True)
        if found:
            return found
    if has_eq or has_lt:
        # Breaking out of an attribute value needs a quote, whitespace or '>'.
        if has_lt or _has_ws(value) or "/" in value:
            found = _scan(value, CTX_ATTR_UNQUOTED, 0) if (_has_ws(value) or ">" in value) else None
            if found:
                return found
        if has_sq:
            found = _scan(value, CTX_ATTR_SINGLE, 0)
            if found:
                return found
        if has_dq:
            found = _scan(value, CTX_ATTR_DOUBLE, 0)
            if found:
                return found
    if (has_sq or has_dq or "`" in value) and ("(" in value or "`" in value or has_eq):
        return _js_break(value)
    return None
