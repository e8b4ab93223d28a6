"""Tokenizer-based XSS detection.

A value is dangerous when, echoed into an HTML page, it makes the browser run script.  The
browser decides that with its HTML tokenizer, so we run a simplified but faithful HTML5
tokenizer over the value and judge the tokens it produces: script-capable tags, event-handler
attributes, URL attributes carrying a script scheme, CSS that runs code, XML declarations.

We do not know where the application echoes the value, so the tokenizer is started in several
contexts: text (data state), inside unquoted / single-quoted / double-quoted attribute values,
and at attribute-name position inside a tag.  Context-free checks complete the picture: the
whole value used as a URL or as CSS, and the value as JavaScript (breaking out of a JS string, or
plain code calling a sink or reaching the DOM).

Back ends sometimes turn a harmless-looking value into markup before it reaches a page, so a
few other spellings are judged too: HTML entities decoded (XML consumers), full-width forms
folded (NFKC), JavaScript / %u escapes decoded (values placed in JS strings), UTF-7.  Attribute
values of submitted markup are judged as values of their own (sanitizers and XML consumers
re-read them: mutation XSS).

Where the tokenizer departs from HTML5 it does so to catch more, never less: no RCDATA/RAWTEXT
states (markup inside <title> or <textarea> is still reported), and legacy-parser quirks are
honoured (VT as whitespace, NUL after '<', '<:ns', backtick-quoted values, C0 controls inside
URL schemes).

Everything is hand-written scanning in linear time: no regular expressions, no backtracking, a
bounded number of passes and a bounded recursion depth.  Cheap substring gates, each a superset
of what the check behind it can find, keep ordinary text on a fast path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from typing import Final, NamedTuple

__all__ = [
    "ATTR",
    "BOGUS",
    "COMMENT",
    "CTX_ATTR_DOUBLE",
    "CTX_ATTR_SINGLE",
    "CTX_ATTR_UNQUOTED",
    "CTX_DATA",
    "CTX_TAG",
    "DOCTYPE",
    "END_TAG",
    "START_TAG",
    "Token",
    "decode_entities",
    "is_xss",
    "tokenize",
]

# Starting contexts of the tokenizer.
CTX_DATA: Final = 0
CTX_ATTR_UNQUOTED: Final = 1
CTX_ATTR_SINGLE: Final = 2
CTX_ATTR_DOUBLE: Final = 3
CTX_TAG: Final = 4  # inside a start tag, where the next attribute name would begin

# Token kinds.
START_TAG: Final = "start"
END_TAG: Final = "end"
ATTR: Final = "attr"
COMMENT: Final = "comment"
BOGUS: Final = "bogus"
DOCTYPE: Final = "doctype"

# HTML whitespace plus VT, which legacy IE also treated as a separator.
_WS: Final = " \t\n\f\r\x0b"
_TAG_NAME_END: Final = _WS + "/>"
_ATTR_NAME_END: Final = _WS + "/>="
_UNQUOTED_END: Final = _WS + ">"
_MAX_DEPTH: Final = 2
# Per-call cache of attribute values already judged (values repeat across contexts).
_Memo = dict[str, str | None]


class Token(NamedTuple):
    """One tokenizer event; ``tag`` is the enclosing tag name for attributes ('' if unknown)."""

    kind: str
    name: str
    value: str | None
    pos: int
    tag: str


# Elements that run script, load active content or documents, or change how the rest of the
# page is parsed or submitted.  Their mere presence in user input is an injection.  (<svg> and
# <math> alone run nothing; what makes them dangerous - script, handlers, script URLs - is
# judged on its own, so plain SVG/MathML markup passes.)
_DANGEROUS_TAGS: Final = frozenset(
    {
        "script", "iframe", "frame", "frameset", "embed", "applet", "style", "isindex",
        "import", "vmlframe", "handler", "listener", "noscript", "portal", "layer", "ilayer",
        "xss", "template", "plaintext", "xmp", "noembed", "noframes",
    }
)
# Elements that act only through attributes: '<object>' or '<base>' as a bare placeholder in
# prose ('git cat-file <object>') is harmless, '<base href=...>' or '<form action=...>' is not.
_ATTR_ACTIVE_TAGS: Final[dict[str, frozenset[str]]] = {
    "object": frozenset({"data", "classid", "codebase", "type", "src", "archive"}),
    "base": frozenset({"href", "target"}),
    "link": frozenset({"href", "rel", "import", "type"}),
    "meta": frozenset({"http-equiv", "charset"}),
    "form": frozenset({"action", "id", "name", "method", "target"}),
    "bgsound": frozenset({"src"}),
    "xml": frozenset({"src", "datasrc"}),  # IE data islands; a bare <xml> root is just XML
}

# Events of the DOM and of legacy browsers; ``on`` + one of these is an event handler.
_EVENT_NAMES: Final = """
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
    webkitplaybacktargetavailabilitychanged webkitcurrentplaybacktargetiswirelesschanged
    webkitmouseforcechanged webkitmouseforcedown webkitmouseforceup webkitmouseforcewillbegin
    webkitfullscreenchange webkitfullscreenerror webkitbeginfullscreen webkitendfullscreen
    webkitpresentationmodechanged webkitneedkey webkitkeyadded webkitkeyerror
    webkitkeymessage mozfullscreenerror mozpointerlockchange pointerlockerror
    compositionstart compositionupdate compositionend devicemotion deviceorientation
    deviceorientationabsolute gamepadconnected gamepaddisconnected appinstalled
    beforeinstallprompt enterpictureinpicture leavepictureinpicture pagereveal pageswap
    scrollsnapchange scrollsnapchanging resourcetimingbufferfull navigate
    msgesturechange msgestureend msgesturestart mspointerdown mspointerup mspointermove
    mspointerover mspointerout msinertiastart
"""
_EVENTS: Final = frozenset(_EVENT_NAMES.split())

# Attributes whose value the browser treats as a URL (or a list of them).
_URL_ATTRS: Final = frozenset(
    {
        "href", "src", "action", "formaction", "data", "lowsrc", "dynsrc", "background",
        "poster", "codebase", "cite", "longdesc", "usemap", "ping", "srcset", "manifest",
        "profile", "archive", "classid", "icon", "to", "from", "values", "by", "value",
        "folder", "datasrc", "src2", "code", "movie", "target", "location", "filter",
    }
)

_SCRIPT_SCHEMES: Final = frozenset({"javascript", "vbscript", "livescript", "mocha", "jscript"})

# data: URLs that never run script wherever they are loaded.
_SAFE_DATA_MIME_PREFIXES: Final = (
    "image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/bmp",
    "image/x-icon", "image/vnd.microsoft.icon", "image/avif", "image/apng", "audio/", "video/",
    "font/", "application/font", "application/x-font", "text/plain", "text/csv",
    "application/pdf", "application/octet-stream",
)
# data: URLs that render active documents even when typed or linked on their own.
_ACTIVE_DATA_MIME_PREFIXES: Final = (
    "text/html", "image/svg", "application/xhtml", "text/xml", "application/xml",
    "text/javascript", "application/javascript", "application/ecmascript",
    "application/x-shockwave", "text/xsl", "text/vbscript",
)

# XML namespaces that turn markup into script, XSLT, inclusions or IE behaviours.
_ACTIVE_NAMESPACES: Final = (
    "1999/xhtml", "/xsl/transform", "xinclude", "xml-events", "schemas-microsoft-com:time",
)

# Named character references that matter for hiding a scheme, a tag or a call.
_NAMED_REFS: Final[dict[str, str]] = {
    "tab": "\t", "newline": "\n", "colon": ":", "lpar": "(", "rpar": ")", "sol": "/",
    "bsol": "\\", "period": ".", "quot": '"', "apos": "'", "grave": "`", "lt": "<", "gt": ">",
    "amp": "&", "nbsp": "\xa0", "equals": "=", "semi": ";", "comma": ",", "excl": "!",
    "num": "#", "percnt": "%", "plus": "+", "lsqb": "[", "lbrack": "[", "rsqb": "]",
    "rbrack": "]", "lcub": "{", "lbrace": "{", "rcub": "}", "rbrace": "}", "ast": "*",
    "midast": "*", "dollar": "$", "quest": "?", "commat": "@", "hyphen": "-", "dash": "-",
    "lowbar": "_", "verbar": "|", "vert": "|", "hat": "^", "space": " ",
}
# Legacy references the browser also decodes without a trailing semicolon.
_LEGACY_REFS: Final = frozenset({"amp", "lt", "gt", "quot", "nbsp"})

_JS_OPERATORS: Final = ";,+-*/%|&^?:<>=!~)}]("
# Roots and sinks whose use after a string break is the classic payload (lower-cased).
_JS_BREAK_ROOTS: Final = frozenset(
    {
        "alert", "prompt", "confirm", "eval", "function", "settimeout", "setinterval",
        "execscript", "fetch", "import", "atob", "document", "window", "location", "top",
        "self", "parent", "frames", "globalthis", "this", "constructor", "opener", "string",
        "unescape", "decodeuricomponent",
    }
)
# Functions that evaluate code or pop dialogs; calling one is what a payload proves.
_JS_SINKS: Final = frozenset(
    {
        "alert", "prompt", "confirm", "eval", "setTimeout", "setInterval", "Function",
        "execScript", "atob", "btoa", "fromCharCode", "importScripts", "globalEval",
        "setImmediate", "msSetImmediate", "import",
    }
)
# Sink names that are also English words: their call must carry a real argument.
_JS_WORDY_SINKS: Final = frozenset({"alert", "prompt", "confirm", "import"})
# Global objects and the properties payloads reach for on each.  The window aliases are also
# ordinary words or (``self``) the receiver of every Python method, so they need stronger names.
_DOCUMENT_PROPS: Final = frozenset(
    {
        "cookie", "domain", "write", "writeln", "body", "head", "createElement", "location",
        "querySelector", "querySelectorAll", "getElementById", "getElementsByTagName",
        "getElementsByName", "getElementsByClassName", "innerHTML", "outerHTML", "URL",
        "documentURI", "referrer", "forms", "images", "scripts", "defaultView", "execCommand",
        "documentElement", "baseURI", "childNodes", "firstChild", "lastChild", "appendChild",
        "title", "links", "implementation", "all", "open",
    }
)
_WINDOW_PROPS: Final = frozenset(
    {
        "alert", "eval", "confirm", "document", "setTimeout", "setInterval", "Function",
        "atob", "fetch", "XMLHttpRequest", "postMessage", "localStorage", "sessionStorage",
        "constructor", "execScript", "jQuery", "$", "globalEval", "importScripts",
    }
)
_WINDOW_NAV_PROPS: Final = _WINDOW_PROPS | {"location", "prompt"}
_JS_GLOBAL_PROPS: Final[dict[str, frozenset[str]]] = {
    "document": _DOCUMENT_PROPS,
    "window": _WINDOW_NAV_PROPS
    | {"onerror", "onload", "frames", "parent", "top", "navigation", "name", "open", "opener"},
    "top": _WINDOW_NAV_PROPS,
    "parent": _WINDOW_NAV_PROPS,
    "globalThis": _WINDOW_NAV_PROPS,
    "self": _WINDOW_PROPS - {"document"},
}
_JS_GLOBALS: Final = tuple(_JS_GLOBAL_PROPS)
# Members whose call is code execution whatever object they hang off.
_JS_SINK_MEMBERS: Final = frozenset(
    {"constructor", "fromCharCode", "eval", "alert", "write", "writeln", "setTimeout",
     "setInterval", "execScript", "globalEval"}
)
_SSI_DIRECTIVES: Final = frozenset(
    {"exec", "include", "echo", "set", "config", "printenv", "fsize", "flastmod", "if", "elif"}
)
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_IDENT_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


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
                # NUL is kept (not U+FFFD) so that legacy-parser checks can drop it.
                bad = code > 0x10FFFF or 0xD800 <= code <= 0xDFFF
                decoded = "\ufffd" if bad else chr(code)
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


# ---------------------------------------------------------------------------------------------
# Tokenizer


def tokenize(value: str, context: int = CTX_DATA) -> Iterator[Token]:
    """Yield tags, attributes and comments as an HTML5 tokenizer would see them.

    ``context`` says where the value starts: in text, inside an attribute value of an unknown
    tag, or where an attribute name may start.  Text is skipped (it cannot run script).  A tag
    cut off by the end of the value is still reported: the page around the injection would
    complete it.
    """
    s = value
    n = len(s)
    i = 0
    if context == CTX_DATA:
        yield from _data(s, 0)
        return
    # Finish the attribute value we were dropped into, then continue inside that tag.
    if context == CTX_ATTR_UNQUOTED:
        while i < n and s[i] not in _UNQUOTED_END:
            i += 1
        if i >= n:
            return
        if s[i] == ">":
            yield from _data(s, i + 1)
            return
    elif context in (CTX_ATTR_SINGLE, CTX_ATTR_DOUBLE):
        j = s.find("'" if context == CTX_ATTR_SINGLE else '"')
        if j < 0:
            return
        i = j + 1
    i = yield from _attributes(s, i, "", False)
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
        if c == "\x00":
            # Legacy parsers skipped NULs: '<\0script>' was a script tag.
            while i < n and s[i] == "\x00":
                i += 1
            if i >= n:
                return
            c = s[i]
        if c.isascii() and c.isalpha():
            i = yield from _tag(s, i, lt, False)
        elif c == ":" and i + 1 < n and s[i + 1].isascii() and s[i + 1].isalpha():
            # '<:vmlframe': legacy IE accepted an empty namespace prefix.
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
                i = yield from _doctype(s, i + 7, lt)
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
        # Before attribute name ('/' is the self-closing flag, or a parse error: skipped).
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
    b = s.find("--!>", i, a + 1 if a >= 0 else n)
    if a < 0 and b < 0:
        yield Token(COMMENT, s[i:], None, lt, "")
        return n
    if a < 0 or (0 <= b < a):
        yield Token(COMMENT, s[i:b], None, lt, "")
        return b + 4
    yield Token(COMMENT, s[i:a], None, lt, "")
    return a + 3


def _doctype(s: str, i: int, lt: int) -> Generator[Token, None, int]:
    """DOCTYPE; an XML internal subset '[...]' may hold '>' characters, so skip it whole."""
    n = len(s)
    gt = s.find(">", i)
    br = s.find("[", i, gt)
    if br >= 0:
        close = s.find("]", br)
        gt = s.find(">", close) if close >= 0 else -1
    end = n if gt < 0 else gt
    yield Token(DOCTYPE, s[i:end], None, lt, "")
    return end + 1


def _bogus(s: str, i: int, lt: int) -> Generator[Token, None, int]:
    """Bogus comment ('<?...>', '<!x...>', '</1...>'): everything up to the next '>'."""
    end = s.find(">", i)
    if end < 0:
        end = len(s)
    yield Token(BOGUS, s[i:end], None, lt, "")
    return end + 1


# ---------------------------------------------------------------------------------------------
# Judging HTML tokens


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
    if j < len(name) and name[j] in "-_.":
        return name  # a custom or placeholder name such as 'base-commit-id'
    return name[:j]


# Characters URL parsing drops before a scheme (C0 controls, space), plus quote and NBSP junk
# that legacy parsers skipped.
_URL_LEAD: Final = "".join(map(chr, range(33))) + "\xa0`'\"\ufffd"


def _url_danger(value: str, strict: bool, bare: bool = False) -> str | None:
    """Scheme check of an (entity-decoded) URL; ``strict`` wants more proof than the scheme:
    code after it (or, for a ``bare`` whole value, at least no space after the colon).

    Leading controls/space are ignored and tab/CR/LF inside the scheme are removed, as URL
    parsing does; legacy browsers also dropped other C0 controls and NUL, so we do too.
    """
    colon = value.find(":", 0, 100)
    if colon < 0:
        return None
    head = value[:colon].lstrip(_URL_LEAD)
    if not head or len(head) > 40:
        return None
    if not head.isalpha():
        head = "".join(ch for ch in head if ch >= " " and ch != "\ufffd")
    scheme = head.lower()
    if scheme in _SCRIPT_SCHEMES:
        rest = value[colon + 1 : colon + 65].lstrip("\t\n\r")
        if not strict:
            return scheme + ":"
        if bare:
            # 'javascript:x' is a URL; 'JavaScript: the good parts (2008)' is a title.
            if rest[:1] not in ("", " ") or "\\" in rest or _js_sink_call(rest):
                return scheme + ":"
            return None
        if any(ch in rest for ch in "(`=\\[;"):
            return scheme + ":"
        return None
    if scheme == "data":
        mime = value[colon + 1 : colon + 65].lower()
        for k, ch in enumerate(mime):
            if ch in ",;":
                mime = mime[:k]
                break
        mime = mime.strip(_URL_LEAD)
        if strict:
            return "data:" + mime if mime.startswith(_ACTIVE_DATA_MIME_PREFIXES) else None
        if mime.startswith(_SAFE_DATA_MIME_PREFIXES) and "svg" not in mime:
            return None
        return "data:" + mime
    return None


def _css_normalize(value: str) -> str:
    """Undo CSS comments and backslash escapes, drop whitespace and NULs, lower-case."""
    out: list[str] = []
    n = len(value)
    i = 0
    quote = ""
    while i < n:
        ch = value[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "/" and value.startswith("*", i + 1):
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
                ok = 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
                out.append(chr(code) if ok else "\ufffd")
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


def _css_danger(value: str, bare: bool) -> str | None:
    """CSS that can run script: IE expressions/behaviours, XBL bindings, script URLs.

    ``bare`` is for a whole request value that may land in a style sheet: it must read as a
    declaration (``prop:expression(``) rather than prose mentioning a word.
    """
    if bare:
        low = value.lower()
        if not ("expression" in low or "binding" in low or "behavior" in low or "url" in low):
            return None
    css = _css_normalize(value)
    if bare:
        for needle in (":expression(", "-moz-binding:url(", "behavior:url(", "url(javascript:",
                       "url(vbscript:", "url('javascript:", 'url("javascript:', ":url(javascript",
                       ":url(vbscript"):
            if needle in css:
                return needle
        return None
    for needle in ("expression(", "behavior:", "-moz-binding", "javascript:", "vbscript:",
                   "@import", "url(javascript", "url(vbscript"):
        if needle in css:
            return needle
    return None


def _judge_attr(tok: Token, strict: bool, depth: int, memo: _Memo) -> str | None:
    """Event handlers, script URLs, dangerous CSS, active namespaces and nested markup."""
    name = tok.name.lower().strip("\x00\x0b\x0c")
    if "\x00" in name:
        name = name.replace("\x00", "")
    value = tok.value
    if name.startswith("on") and value is not None:
        event = name[2:]
        # Where no tag was seen (attribute contexts) the value must look like code, or be
        # missing (the page then supplies it): 'onerror=handler' is a Python keyword argument
        # and 'x/onfoo==' the tail of many base64 tokens.
        code = value.strip(_WS + "=")
        if event in _EVENTS and (
            not strict or not value.strip(_WS) or any(ch in code for ch in "(`=;[&")
        ):
            return name + "="
        # Unknown names may be events newer than our list.
        if (
            len(event) >= (3 if not strict else 4)
            and event.isascii()
            and event.isalpha()
            and code
            and (not strict or _call_shape(code) or "`" in code)
        ):
            return name + "="
    colon = name.rfind(":")
    local = name[colon + 1 :] if colon >= 0 else name
    if local == "formaction" and value is not None:
        return "formaction="  # retargets the form: the page's data goes to the attacker
    if not value:
        return None
    decoded = decode_entities(value) if "&" in value else value
    if local == "style":
        found = _css_danger(decoded, False)
        if found:
            return found
    elif local == "srcdoc" and depth < _MAX_DEPTH and "<" in decoded:
        found = _scan(decoded, CTX_DATA, depth + 1, memo)
        if found:
            return "srcdoc=" + found
    elif local == "attributename":
        # SVG animation retargeting an event handler or a link.
        target = decoded.strip(_WS).lower()
        if target.startswith("on") and target[2:] in _EVENTS:
            return "attributename=" + target
    elif local in ("schemalocation", "nonamespaceschemalocation") and "://" in decoded:
        return name + "="  # XML processors fetch external schemas (like XInclude/entities)
    elif local == "dataformatas" and "html" in decoded.lower():
        return "dataformatas="  # IE data binding injecting HTML
    elif name == "xmlns" or name.startswith("xmlns:"):
        low = decoded.lower()
        for ns in _ACTIVE_NAMESPACES:
            if ns in low:
                return name + "=" + ns
    found = _url_danger(decoded, strict or local not in _URL_ATTRS)
    if found:
        return found
    if local == "content" or name == "http-equiv":
        k = decoded.lower().find("url=")
        if k >= 0:
            found = _url_danger(decoded[k + 4 :], False)
            if found:
                return found
    if depth < _MAX_DEPTH:
        # Markup inside an attribute value turns live when a sanitizer or a second parser
        # (mutation XSS, legacy quoting rules, XML consumers) re-reads it.  At the top level
        # each attribute value is also judged as a value of its own (all contexts); deeper
        # down only its markup is, which keeps the work on nested junk linear and small.
        if depth > 0 or not tok.tag:
            # Deeper down, or in a tag we only assume: the value's own markup only.
            found = _scan(decoded, CTX_DATA, depth + 1, memo) if "<" in decoded else None
        elif decoded in memo:
            found = memo[decoded]  # the same value seen from another starting context
        else:
            found = memo[decoded] = _detect(decoded, 1, memo)
        if found:
            return found
        if value[:1] == "`" and "=" in value:
            # Legacy IE quoted attribute values with backticks.
            close = value.find("`", 1)
            rest = value[close + 1 :] if close > 0 else value[1:]
            found = _scan(rest, CTX_TAG, depth + 1, memo)
            if found:
                return found
    return None


def _judge_markup_decl(body: str, depth: int, memo: _Memo) -> str | None:
    """'<!...>' and '<?...>' bodies: XML entity/attribute declarations, IE imports, CDATA."""
    low = body[:16].lower()
    if low.startswith(("entity", "attlist", "element")) and len(low) > 6 and low[6] in _WS + "%":
        return "<!" + low.split()[0]
    if low.startswith(("?import", "?xml:namespace")):
        return "<" + low.split()[0]
    if low.startswith(("[cdata[", "[if")) and depth < _MAX_DEPTH:
        return _scan(body, CTX_DATA, depth + 1, memo)
    return None


def _scan(value: str, context: int, depth: int, memo: _Memo) -> str | None:
    """Run the tokenizer from one context and report the first dangerous token."""
    strict = context != CTX_DATA
    for tok in tokenize(value, context):
        kind = tok.kind
        if kind == ATTR:
            found = _judge_attr(tok, strict and tok.tag == "", depth, memo)
            if found:
                return found
            if tok.tag:
                active = _ATTR_ACTIVE_TAGS.get(_local_tag_name(tok.tag))
                if active is not None and tok.name.lower() in active:
                    return "<" + tok.tag + " " + tok.name.lower()
        elif kind == START_TAG:
            local = _local_tag_name(tok.name)
            if local in _DANGEROUS_TAGS or (local == "include" and ":" in tok.name):
                end = tok.pos + 1
                while end < len(value) and value[end] not in _TAG_NAME_END:
                    end += 1
                return value[tok.pos : min(end, tok.pos + 40)]
        elif kind == COMMENT:
            body = tok.name.lstrip(_WS)
            if body[:1] == "#" and depth == 0:
                # Server-side include directives run on the server that renders the page.
                k = 1
                while k < len(body) and body[k].isascii() and body[k].isalpha():
                    k += 1
                if body[1:k].lower() in _SSI_DIRECTIVES:
                    return "<!--" + body[:k]
            # IE conditional comments hide live markup inside a comment.
            if body[:3].lower() == "[if" and depth < _MAX_DEPTH:
                found = _scan(body, CTX_DATA, depth + 1, memo)
                if found:
                    return found
        elif kind == DOCTYPE:
            low = tok.name.lower()
            for decl in ("<!entity", "<!attlist", "<!element"):
                if decl in low:
                    return decl
        else:
            found = _judge_markup_decl(tok.name, depth, memo)
            if found:
                return found
    return None


# ---------------------------------------------------------------------------------------------
# JavaScript checks


def _skip_js_space(value: str, i: int) -> tuple[int, bool]:
    """Skip whitespace and /*...*/ comments; report whether a comment was seen."""
    n = len(value)
    comment = False
    while i < n:
        ch = value[i]
        if ch in _WS:
            i += 1
        elif ch == "/" and value.startswith("*", i + 1):
            end = value.find("*/", i + 2, i + 258)
            if end < 0:
                return n, True
            i = end + 2
            comment = True
        else:
            break
    return i, comment


def _js_break(value: str) -> str | None:
    """A quote that closes a JS string, an operator, then a call or a property write."""
    last_close = value.rfind(")")
    for quote in "'\"`":
        q = value.find(quote)
        while q >= 0:
            found = _js_break_at(value, q, last_close)
            if found:
                return found
            q = value.find(quote, q + 1)
    return None


def _js_break_at(value: str, q: int, last_close: int) -> str | None:
    """The break check for the quote at ``q``: operators, then a sink call or a DOM write."""
    n = len(value)
    j = q + 1
    ops = 0
    while j < n and (value[j] in _JS_OPERATORS or value[j] in _WS):
        if value[j] not in _WS:
            ops += 1
        j += 1
    if ops == 0:
        return None
    # Identifier chain: ident ( '.' ident | '[' ... ']' )*
    chain: list[str] = []
    while True:
        k = j
        while k < n and value[k] in _IDENT_CHARS:
            k += 1
        if k == j or value[j].isdigit():
            break
        chain.append(value[j:k])
        if len(chain) == 1 and chain[0].lower() not in _JS_BREAK_ROOTS:
            return None
        j = k
        if j < n and value[j] == ".":
            j += 1
            continue
        if j < n and value[j] == "[":
            close = value.find("]", j, j + 200)
            if close < 0:
                break
            inner = value[j + 1 : close].strip(_WS)
            name = inner.strip("'\"`")
            if name.isidentifier() or name.isdigit():
                chain.append(name)
            else:
                chain.append("[]")  # computed name: 'al'+'ert', escapes, comments
            j = close + 1
            if j < n and value[j] == ".":
                j += 1
                continue
        break
    if not chain or j >= n:
        return None
    root = chain[0]
    members = chain[1:]
    props = _JS_GLOBAL_PROPS.get(root)
    dom = props is not None and any(m in props or m == "[]" for m in members)
    ch = value[j]
    if ch == ")" and not members:
        # '(alert)(1)': step over the closing parentheses of a wrapped sink.
        while j < n and value[j] == ")":
            j += 1
        if j >= n:
            return None
        ch = value[j]
    if ch in "(`":
        sink = (not members and root in _JS_SINKS) or dom or bool(
            members and members[-1] in _JS_SINK_MEMBERS
        )
        if sink and (ch == "`" or (last_close > j and not _prose_arg(value, j))):
            return value[q : j + 1]
    elif (
        ch == "="
        and not value.startswith("==", j)
        and j + 1 < n
        and (dom or (root == "location" and len(chain) <= 2))
    ):
        return value[q : j + 1]
    return None


def _prose_arg(value: str, paren: int) -> bool:
    """'alert(s)', 'confirm(ed)': a parenthesised word suffix, not a call argument."""
    close = value.find(")", paren + 1, paren + 5)
    arg = value[paren + 1 : close]
    return close > paren + 1 and arg.isalpha()


def _ident_before(value: str, end: int) -> tuple[str, int]:
    """The identifier ending just before ``end`` and its start index."""
    k = end
    while k > 0 and value[k - 1] in _IDENT_CHARS:
        k -= 1
    return value[k:end], k


def _call_shape(value: str) -> bool:
    """Whether some '(' directly follows a name or a ')' (or '${' occurs): a call could exist."""
    p = value.find("(", 1)
    while p > 0:
        c = value[p - 1]
        if c in _IDENT_CHARS or c == ")":
            return True
        p = value.find("(", p + 1)
    return "${" in value


def _js_sink_call(value: str) -> str | None:
    """A call (or tagged template) of a code-evaluating or dialog function."""
    n = len(value)
    last_close = -2
    for opener in "(`":
        p = value.find(opener)
        if p == 0:
            p = value.find(opener, 1)
        while p > 0:
            prev = value[p - 1]
            if prev == ")" and p > 1:
                # '(alert)(1)', '(0,alert)(1)': a sink reached through a parenthesised value.
                name, start = _ident_before(value, p - 1)
                if name in _JS_SINKS and start > 0 and value[start - 1] in "(,":
                    return value[start - 1 : p + 1]
            if prev not in _IDENT_CHARS:
                p = value.find(opener, p + 1)
                continue
            if last_close == -2:
                last_close = value.rfind(")")
            name, start = _ident_before(value, p)
            if name in ("call", "apply", "bind") and start > 1 and value[start - 1] == ".":
                # 'alert.call(null, 1)': the sink is the object of .call/.apply.
                outer, outer_start = _ident_before(value, start - 1)
                if outer in _JS_SINKS:
                    return value[outer_start : p + 1]
            if name in _JS_SINKS and (start == 0 or value[start - 1] not in _IDENT_CHARS):
                if opener == "`":
                    return value[start : p + 1]
                # 'alert(s)' is prose; 'alert(1)', 'alert()' and 'alert(x.y)' are code.
                if last_close > p and not (name in _JS_WORDY_SINKS and _prose_arg(value, p)):
                    return value[start : p + 1]
            elif name == "constructor" and start > 0 and value[start - 1] == ".":
                return value[start - 1 : p + 1]  # sandbox escape: x.constructor(...)
            elif opener == "`" and name in ("call", "apply", "bind") and start > 0 and (
                value[start - 1] == "."
            ):
                return value[start - 1 : p + 1]
            p = value.find(opener, p + 1)
    if "${" not in value:
        return None
    # ${sink} inside a template literal passes the sink as a tag or callback.
    p = value.find("${")
    while p >= 0:
        j, _ = _skip_js_space(value, p + 2)
        k = j
        while k < n and value[k] in _IDENT_CHARS:
            k += 1
        if value[j:k] in _JS_SINKS:
            return value[p : k + 1]
        p = value.find("${", p + 2)
    return None


def _js_dom_access(value: str) -> str | None:
    """``document.cookie``, ``window['alert']``, ``(document)["cookie"]`` and the like."""
    n = len(value)
    for obj in _JS_GLOBALS:
        p = value.find(obj)
        while p >= 0:
            end = p + len(obj)
            if (p == 0 or value[p - 1] not in _IDENT_CHARS) and (
                end >= n or value[end] not in _IDENT_CHARS
            ):
                j, comment = _skip_js_space(value, end)
                if j < n and value[j] == ")":
                    j, c2 = _skip_js_space(value, j + 1)
                    comment = comment or c2
                spaced = not comment and any(ch in _WS for ch in value[end:j])
                props = _JS_GLOBAL_PROPS[obj]
                if j < n and value[j] == "[" and not spaced:
                    k, _ = _skip_js_space(value, j + 1)
                    if k < n and value[k] in "\"'`":
                        close = value.find(value[k], k + 1, k + 100)
                        name = value[k + 1 : close] if close > 0 else ""
                        # window['x'] is always code; self['status'] may be a Python dict.
                        if obj in ("window", "document") or name in props or not (
                            name.isidentifier()
                        ):
                            return value[p : k + 1]
                elif j < n and value[j] == "." and not spaced:
                    k, c3 = _skip_js_space(value, j + 1)
                    if k == j + 1 or comment or c3:
                        e = k
                        while e < n and value[e] in _IDENT_CHARS:
                            e += 1
                        if value[k:e] in props and _code_around(value, p, e):
                            return value[p:e]
            p = value.find(obj, end)
    return None


def _js_import(value: str) -> str | None:
    """An ES module import statement: 'import {a, b} from "./x.js"' / 'import * as m from'."""
    p = value.find("import")
    while p >= 0:
        if p == 0 or value[p - 1] not in _IDENT_CHARS:
            j, _ = _skip_js_space(value, p + 6)
            if j < len(value) and value[j] in "{*":
                close = value.find("}", j, j + 200) if value[j] == "{" else j
                if close >= 0:
                    k = value.find("from", close, close + 80)
                    if k > 0:
                        q, _ = _skip_js_space(value, k + 4)
                        if q < len(value) and value[q] in "'\"`":
                            return value[p : q + 1]
        p = value.find("import", p + 6)
    return None


def _xml_entity_decl(value: str) -> str | None:
    """'!ENTITY [%] name SYSTEM|PUBLIC': an external XML entity even without its '<'."""
    p = value.find("!ENTITY")
    while p >= 0:
        words = value[p + 7 : p + 200].replace("%", " % ").split()
        if len(words) >= 3 and ({words[1], words[2]} & {"SYSTEM", "PUBLIC"}):
            return "!ENTITY"
        p = value.find("!ENTITY", p + 7)
    return None


def _code_around(value: str, start: int, end: int) -> bool:
    """Whether ``value[start:end]`` stands as code (alone, or touching code punctuation)
    rather than being mentioned in prose ('what is document.cookie?')."""
    if not value[:start].strip(_WS) and not value[end:].strip(_WS):
        return True
    before = value[start - 1] if start > 0 else ""
    after = value[end] if end < len(value) else ""
    if before and before in "([{=;,+!&|?:'\"`":
        return True
    if after == "." and end + 1 < len(value) and value[end + 1] in _IDENT_CHARS:
        return True
    return bool(after) and after in "()[]=;,+'\"`"


def _jsfuck(value: str) -> str | None:
    """Code written with only []()!+ (JSFuck-style): a run of five or more of those characters
    holding an array literal and a '!' or '+' ('+!![]', '(![]+[])')."""
    for frag in ("!![]", "+[]", "[][", "(![]", "+!+"):
        p = value.find(frag)
        while p >= 0:
            start = p
            while start > 0 and value[start - 1] in "[]()!+":
                start -= 1
            end = p + len(frag)
            while end < len(value) and value[end] in "[]()!+":
                end += 1
            run = value[start:end]
            if end - start >= 5 and "[]" in run and ("!" in run or "+" in run):
                return run[:20]
            p = value.find(frag, end)
    return None


# ---------------------------------------------------------------------------------------------
# Entry point


def _has_ws(value: str) -> bool:
    """Whether any HTML whitespace occurs (needed to leave an unquoted attribute value)."""
    return " " in value or "\t" in value or "\n" in value or "\f" in value or "\r" in value


def _handler_like(low: str) -> bool:
    """Whether 'on<letters> =' occurs at a word start: the only shape of an event handler."""
    n = len(low)
    i = low.find("on")
    while i >= 0:
        if i == 0 or not low[i - 1].isalnum():
            j = i + 2
            while j < n and "a" <= low[j] <= "z":
                j += 1
            if j - i >= 4:
                while j < n and low[j] in _WS:
                    j += 1
                if j < n and low[j] == "=":
                    return True
        i = low.find("on", i + 2)
    return False


def _scheme_hint(value: str, low: str) -> bool:
    """Whether a script/data scheme could be spelled here (plainly or obfuscated)."""
    return (
        "script" in low
        or "data" in low
        or "mocha" in low
        or "&#" in value
        or "&colon" in low
        or "&tab" in low
        or "&newline" in low
        or not value.isprintable()
    )


def _attr_gate(value: str, low: str) -> bool:
    """Cheap superset test: could any attribute in any context be judged dangerous?"""
    if "=" not in value:
        return False
    return (
        _handler_like(low)
        or "style" in low
        or "`" in value
        or "&lt" in low
        or "&#" in value
        or "xmlns" in low
        or "srcdoc" in low
        or "formaction" in low
        or "schemalocation" in low
        or "attributename" in low
        or "dataformatas" in low
        or ((":" in value or "&" in value) and _scheme_hint(value, low))
    )


def _tag_gate(value: str) -> bool:
    """Cheap superset test: does any '<' open a markup declaration or a dangerous element?"""
    n = len(value)
    i = value.find("<")
    while 0 <= i < n - 1:
        j = i + 1
        while j < n and value[j] == "\x00":
            j += 1
        if j < n:
            c = value[j]
            if c in "!?":
                return True
            if c == ":" and j + 1 < n:
                j += 1
                c = value[j]
            if c.isascii() and c.isalpha():
                k = j
                limit = min(n, j + 40)
                while k < limit and value[k] not in _TAG_NAME_END and value[k] != "<":
                    k += 1
                name = value[j:k].lower()
                local = name if name.isalpha() else _local_tag_name(name)
                if (
                    local in _DANGEROUS_TAGS
                    or local in _ATTR_ACTIVE_TAGS
                    or (local == "include" and ":" in name)
                ):
                    return True
        i = value.find("<", j)
    return False


def _detect(value: str, depth: int, memo: _Memo) -> str | None:
    """All checks on one representation of the value."""
    low = value.lower()
    has_lt = "<" in value
    has_eq = "=" in value
    if (has_lt and _tag_gate(value)) or (has_eq and _attr_gate(value, low)):
        if has_lt:
            found = _scan(value, CTX_DATA, depth, memo)
            if found:
                return found
        if _has_ws(value) or ">" in value:
            found = _scan(value, CTX_ATTR_UNQUOTED, depth, memo)
            if found:
                return found
        if "'" in value:
            found = _scan(value, CTX_ATTR_SINGLE, depth, memo)
            if found:
                return found
        if '"' in value:
            found = _scan(value, CTX_ATTR_DOUBLE, depth, memo)
            if found:
                return found
        if has_eq:
            found = _scan(value, CTX_TAG, depth, memo)
            if found:
                return found
    has_colon = ":" in value
    has_paren = "(" in value
    if (has_colon or "&" in value) and _scheme_hint(value, low):
        head = value[:256]
        decoded = decode_entities(head) if "&" in head else head
        # A scheme spelled with entities or control characters is obfuscated on purpose.
        plain = decoded == head and head[:24].isprintable()
        found = _url_danger(decoded, plain, bare=True)
        if found:
            return found
    if (
        has_colon
        and (has_paren or "\\" in value)
        and ("expression" in low or "binding" in low or "behavior" in low or "url" in low)
    ):
        found = _css_danger(decode_entities(value) if "&" in value else value, True)
        if found:
            return found
    has_tick = "`" in value
    if ("'" in value or '"' in value or has_tick) and (has_paren or has_tick or has_eq):
        found = _js_break(value)
        if found:
            return found
    if has_tick or (has_paren and _call_shape(value)):
        found = _js_sink_call(value)
        if found:
            return found
    if "import" in value:
        found = _js_import(value)
        if found:
            return found
    if "!ENTITY" in value:
        found = _xml_entity_decl(value)
        if found:
            return found
    if "." in value or "[" in value:
        if (
            "document" in value
            or "window" in value
            or "self" in value
            or "top" in value
            or "parent" in value
            or "globalThis" in value
        ):
            found = _js_dom_access(value)
            if found:
                return found
        if "[]" in value or "+!+" in value:
            found = _jsfuck(value)
            if found:
                return found
    return None


def _fold_width(value: str) -> str:
    """Full-width '<' and friends, folded to ASCII by NFKC-normalising back ends."""
    return "".join(chr(ord(ch) - 0xFEE0) if "\uff01" <= ch <= "\uff5e" else ch for ch in value)


def _unescape_js(value: str) -> str:
    """Decode JavaScript/JSON escapes (\\xHH, \\uHHHH, \\u{H..}) and IIS-style %uHHHH: a value
    placed in a JS string reaches the DOM (innerHTML, document.write) in decoded form."""
    out: list[str] = []
    n = len(value)
    i = 0
    while i < n:
        ch = value[i]
        width = 0
        start = i
        if ch == "\\" and i + 1 < n:
            kind = value[i + 1]
            if kind == "x":
                width, start = 2, i + 2
            elif kind == "u" and value.startswith("{", i + 2):
                close = value.find("}", i + 3, i + 12)
                if close > 0:
                    width, start = close - i - 3, i + 3
            elif kind == "u":
                width, start = 4, i + 2
        elif ch == "%" and i + 1 < n and value[i + 1] in "uU":
            width, start = 4, i + 2
        digits = value[start : start + width]
        if width and len(digits) == width and all(c in _HEX for c in digits):
            code = int(digits, 16)
            out.append(chr(code) if code <= 0x10FFFF else "\ufffd")
            i = start + width + (1 if value[start - 1] == "{" else 0)
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _variants(value: str) -> Iterator[str]:
    """Other spellings a back end may turn the value into before it reaches a page."""
    if "&#" in value or "&lt" in value or "&LT" in value:
        decoded = decode_entities(value)
        if decoded != value and "<" in decoded:
            yield decoded  # entity-escaped markup, decoded by an XML/HTML consumer
    if "\uff1c" in value:
        yield _fold_width(value)
    if "\\x" in value or "\\u" in value or "%u" in value or "%U" in value:
        unescaped = _unescape_js(value)
        if "<" in unescaped or "\uff1c" in unescaped:
            yield _fold_width(unescaped)
        elif "\xbc" in unescaped:
            # 7-bit (US-ASCII) back ends drop the high bit: '\xbc' becomes '<'.
            yield "".join(chr(ord(ch) & 0x7F) if "\x80" <= ch <= "\xff" else ch for ch in unescaped)
    if "ADw" in value and value.isascii():
        # UTF-7 '<' is '+ADw-'; the '+' often arrives percent-encoded once more.
        utf7 = value.replace("%2b", "+").replace("%2B", "+")
        with contextlib.suppress(UnicodeError):
            yield utf7.encode("ascii").decode("utf-7")


def is_xss(value: str) -> str | None:
    """Return the offending fragment (e.g. '<script', 'onerror=', 'javascript:') when `value`
    would inject script into an HTML page, else None."""
    # Fast path: nothing that could open a tag, an attribute, a URL scheme, a call or a
    # property access.  Benign words, ids, language lists and most sentences end here.
    if not (
        "<" in value
        or "=" in value
        or ":" in value
        or "(" in value
        or "." in value
        or "&" in value
        or "`" in value
        or "[" in value
        or "\uff1c" in value
        or "ADw" in value
        or "!ENTITY" in value
    ):
        return None
    memo: _Memo = {}
    found = _detect(value, 0, memo)
    if found:
        return found
    if "&" in value or "\\" in value or "%" in value or "ADw" in value or "\uff1c" in value:
        for variant in _variants(value):
            found = _detect(variant, 1, memo)
            if found:
                return found
    return None


# A regular expression that matches every single-line ASCII value the fast path of `is_xss`
# lets through: the engine runs it inside its shared Hyperscan scan and calls `is_xss` only
# where it matched. Keep it in step with the fast path above.
TRIGGER: Final = r"[<=:(.&`\[]|ADw|!ENTITY"
