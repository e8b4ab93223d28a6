"""Value transformers, by their ddwaf names and their ModSecurity-style aliases.

A transformer turns attacker encodings back into what the application will see, so one plain
pattern catches every spelling. Each is a pure `str -> str` function with a fast path that
returns its input untouched when there is nothing to do: most request values need no work.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import unicodedata
from collections.abc import Callable, Sequence
from typing import Final
from urllib.parse import unquote

Transformer = Callable[[str], str]

_HEX: Final = "0123456789abcdefABCDEF"
_OCTAL_DIGITS: Final = frozenset("01234567")


def lowercase(value: str) -> str:
    return value.lower()


def remove_nulls(value: str) -> str:
    return value.replace("\x00", "") if "\x00" in value else value


def _url_decode(value: str, iis: bool) -> str:
    if "%" not in value:
        return value.replace("+", " ") if "+" in value else value
    if not (iis and ("%u" in value or "%U" in value)):
        if value.isascii():
            return _percent_decode_ascii(value.replace("+", " "))
        return unquote(value.replace("+", " "), errors="replace")
    out: list[str] = []
    raw = bytearray()
    i, n = 0, len(value)

    def flush() -> None:
        if raw:
            out.append(raw.decode("utf-8", "replace"))
            raw.clear()

    while i < n:
        ch = value[i]
        if ch == "%":
            if _all_hex(value[i + 1 : i + 3], 2):
                raw.append(int(value[i + 1 : i + 3], 16))
                i += 3
                continue
            if value[i + 1 : i + 2] in ("u", "U") and _all_hex(value[i + 2 : i + 6], 4):
                flush()
                code = int(value[i + 2 : i + 6], 16)
                # IIS maps full-width ASCII (U+FF01..U+FF5E) onto plain ASCII.
                if 0xFF01 <= code <= 0xFF5E:
                    code -= 0xFEE0
                out.append(_char(code))
                i += 6
                continue
        flush()
        out.append(" " if ch == "+" else ch)
        i += 1
    flush()
    return "".join(out)


# "%xx" escapes by their two hex digits, as urllib.parse decodes them.
_HEX_BYTES: Final = {f"{a}{b}".encode(): bytes([int(a + b, 16)]) for a in _HEX for b in _HEX}


def _percent_decode_ascii(value: str) -> str:
    """`unquote(value, errors="replace")` for an ASCII value, without urllib's per-call
    regular expression split: bytes by whole-piece operations, then one UTF-8 decoding."""
    pieces = value.encode("ascii").split(b"%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        byte = _HEX_BYTES.get(piece[:2])
        if byte is None:
            out.append(b"%")
            out.append(piece)
        else:
            out.append(byte)
            out.append(piece[2:])
    return b"".join(out).decode("utf-8", "replace")


def url_decode(value: str) -> str:
    return _url_decode(value, iis=False)


def url_decode_iis(value: str) -> str:
    return _url_decode(value, iis=True)


def normalize_path(value: str) -> str:
    """Resolve `.`/`..` segments and repeated slashes, as a file system would."""
    if "/." not in value and "//" not in value and not value.startswith("."):
        return value
    absolute = value.startswith("/")
    trailing = value.endswith("/")
    parts: list[str] = []
    for part in value.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not absolute:
                parts.append("..")
            continue
        parts.append(part)
    result = ("/" if absolute else "") + "/".join(parts)
    if trailing and parts:
        result += "/"
    return result or ("/" if absolute else "")


def normalize_path_win(value: str) -> str:
    return normalize_path(value.replace("\\", "/"))


_CMD_LINE_TABLE: Final = str.maketrans(
    {"\\": None, '"': None, "'": None, "^": None, ",": " ", ";": " ", "\t": " ", "\r": " ",
     "\n": " ", "\f": " ", "\v": " "}
)


def cmd_line(value: str) -> str:
    """Undo shell obfuscation: drop quotes, escapes and carets, unify separators, lowercase."""
    text = value.translate(_CMD_LINE_TABLE).lower()
    if "  " in text:
        words = text.split(" ")
        text = (" " if text.startswith(" ") else "") + " ".join(w for w in words if w)
        if value and words[-1] == "" and len(words) > 1 and text and not text.endswith(" "):
            text += " "
    if " /" in text or " (" in text:
        text = text.replace(" /", "/").replace(" (", "(")
    return text


def remove_comments(value: str) -> str:
    """Delete C, SQL, shell and HTML comments, which attackers use to split keywords."""
    if "/*" not in value and "--" not in value and "#" not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        if value.startswith("/*", i):
            end = value.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif value.startswith("<!--", i):
            end = value.find("-->", i + 4)
            i = n if end < 0 else end + 3
        elif value.startswith("--", i) or value[i] == "#":
            end = value.find("\n", i)
            i = n if end < 0 else end
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def compress_whitespace(value: str) -> str:
    out: list[str] = []
    previous_space = False
    for ch in value:
        if ch.isspace():
            if not previous_space:
                out.append(" ")
            previous_space = True
        else:
            out.append(ch)
            previous_space = False
    return "".join(out)


def html_entity_decode(value: str) -> str:
    return html.unescape(value) if "&" in value else value


def js_decode(value: str) -> str:
    r"""Decode JavaScript escapes: \xHH, \uHHHH, \u{H..}, \OOO and the one-letter escapes."""
    if "\\" not in value:
        return value
    simple = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch != "\\" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt == "x" and _all_hex(value[i + 2 : i + 4], 2):
            out.append(chr(int(value[i + 2 : i + 4], 16)))
            i += 4
        elif nxt == "u" and value[i + 2 : i + 3] == "{":
            end = value.find("}", i + 3, i + 10)
            digits = value[i + 3 : end] if end > 0 else ""
            if digits and _all_hex(digits, len(digits)) and int(digits, 16) <= 0x10FFFF:
                out.append(_char(int(digits, 16)))
                i = end + 1
            else:
                out.append(nxt)
                i += 2
        elif nxt == "u" and _all_hex(value[i + 2 : i + 6], 4):
            out.append(_char(int(value[i + 2 : i + 6], 16)))
            i += 6
        elif nxt in "01234567" and (nxt != "0" or value[i + 2 : i + 3] in _OCTAL_DIGITS):
            j = i + 1
            while j < n and j < i + 4 and value[j] in "01234567":
                j += 1
            out.append(chr(int(value[i + 1 : j], 8) & 0xFF))
            i = j
        else:
            out.append(simple.get(nxt, nxt))
            i += 2
    return "".join(out)


def _char(code: int) -> str:
    """chr() that never yields a lone surrogate, which no UTF-8 matcher can take."""
    return "\ufffd" if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else chr(code)


def _all_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in _HEX for c in text)


def css_decode(value: str) -> str:
    r"""Decode CSS escapes (\HH..HHHHHH and \c), used to hide `expression(` and `url(`."""
    if "\\" not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch != "\\" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < n and j < i + 7 and value[j] in _HEX:
            j += 1
        if j > i + 1:
            code = int(value[i + 1 : j], 16)
            out.append(_char(code) if code > 0 else "\ufffd")
            if j < n and value[j] in " \t\n":
                j += 1
            i = j
        else:
            if value[i + 1] != "\n":
                out.append(value[i + 1])
            i += 2
    return "".join(out)


def base64_decode(value: str) -> str:
    """Decode base64 (standard or URL alphabet); invalid input is left as it is."""
    stripped = value.strip()
    if len(stripped) < 4:
        return value
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw.decode("utf-8", "replace")


def base64_encode(value: str) -> str:
    return base64.b64encode(value.encode("utf-8", "replace")).decode("ascii")


def unicode_normalize(value: str) -> str:
    """Fold compatibility forms (full-width letters, ligatures) and drop diacritics."""
    if value.isascii():
        return value
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def url_path(value: str) -> str:
    return value.split("?", 1)[0].split("#", 1)[0]


def url_basename(value: str) -> str:
    return url_path(value).rsplit("/", 1)[-1]


def url_querystring(value: str) -> str:
    head = value.split("#", 1)[0]
    return head.split("?", 1)[1] if "?" in head else ""


TRANSFORMERS: Final[dict[str, Transformer]] = {
    "lowercase": lowercase,
    "remove_nulls": remove_nulls,
    "removeNulls": remove_nulls,
    "url_decode": url_decode,
    "urlDecode": url_decode,
    "url_decode_iis": url_decode_iis,
    "urlDecodeUni": url_decode_iis,
    "normalize_path": normalize_path,
    "normalizePath": normalize_path,
    "normalize_path_win": normalize_path_win,
    "normalizePathWin": normalize_path_win,
    "shell_unescape": cmd_line,
    "cmdLine": cmd_line,
    "remove_comments": remove_comments,
    "removeComments": remove_comments,
    "compress_whitespace": compress_whitespace,
    "compressWhiteSpace": compress_whitespace,
    "html_entity_decode": html_entity_decode,
    "htmlEntityDecode": html_entity_decode,
    "js_decode": js_decode,
    "jsDecode": js_decode,
    "css_decode": css_decode,
    "cssDecode": css_decode,
    "base64_decode": base64_decode,
    "base64Decode": base64_decode,
    "base64_encode": base64_encode,
    "base64Encode": base64_encode,
    "unicode_normalize": unicode_normalize,
    "url_path": url_path,
    "url_basename": url_basename,
    "url_querystring": url_querystring,
}

# Not string functions: they choose whether keys or values of a container are inspected.
SELECTORS: Final = frozenset({"keys_only", "values_only"})


# Whether a transformer may change a text: a cheap test that errs only towards "yes". Each test
# holds for a text whenever it holds for a part of it, so one test on the newline-joined values
# of an address answers for every value: most requests need no call per value at all.
def _has_upper(text: str) -> bool:
    return text.lower() != text


def _has_percent_or_plus(text: str) -> bool:
    return "%" in text or "+" in text


def _has_null(text: str) -> bool:
    return "\x00" in text


def _has_dot_segment(text: str) -> bool:
    return "/." in text or "//" in text or text.startswith(".") or "\n." in text


def _has_backslash_or_dot_segment(text: str) -> bool:
    return "\\" in text or _has_dot_segment(text)


def _has_comment(text: str) -> bool:
    return "/*" in text or "--" in text or "#" in text


def _has_ampersand(text: str) -> bool:
    return "&" in text


def _has_backslash(text: str) -> bool:
    return "\\" in text


def _has_non_ascii(text: str) -> bool:
    return not text.isascii()


def _has_query_or_fragment(text: str) -> bool:
    return "?" in text or "#" in text


def _always(text: str) -> bool:
    return True


_MAY_CHANGE: Final[dict[Transformer, Callable[[str], bool]]] = {
    lowercase: _has_upper,
    remove_nulls: _has_null,
    url_decode: _has_percent_or_plus,
    url_decode_iis: _has_percent_or_plus,
    normalize_path: _has_dot_segment,
    normalize_path_win: _has_backslash_or_dot_segment,
    remove_comments: _has_comment,
    html_entity_decode: _has_ampersand,
    js_decode: _has_backslash,
    css_decode: _has_backslash,
    unicode_normalize: _has_non_ascii,
    url_path: _has_query_or_fragment,
}


# Transformers that work character by character and never make or remove a newline, in the
# case each accepts (None otherwise): applied once to newline-joined values, their result splits
# back into the values transformed one by one.
def _bulk_url_decode(text: str) -> str | None:
    return None if "%" in text else text.replace("+", " ")


def _bulk_lowercase(text: str) -> str | None:
    return text.lower() if text.isascii() else None


def _bulk_remove_nulls(text: str) -> str | None:
    return text.replace("\x00", "")


def _bulk_unicode_normalize(text: str) -> str | None:
    return text if text.isascii() else None


_BULK: Final[dict[Transformer, Callable[[str], str | None]]] = {
    url_decode: _bulk_url_decode,
    url_decode_iis: _bulk_url_decode,
    lowercase: _bulk_lowercase,
    remove_nulls: _bulk_remove_nulls,
    unicode_normalize: _bulk_unicode_normalize,
}


class Chain:
    """A transformer chain applied to all the values of an address at once."""

    __slots__ = ("_bulk", "_tests", "apply")

    def __init__(self, functions: Sequence[Transformer]) -> None:
        self.apply: Transformer = _compose(functions)
        self._tests = tuple(_MAY_CHANGE.get(function, _always) for function in functions)
        bulk = [_BULK.get(function) for function in functions]
        self._bulk = None if None in bulk else tuple(b for b in bulk if b is not None)

    def apply_all(self, texts: list[str], joined: str) -> list[str]:
        """`texts` transformed, or `texts` itself when no value changes. `joined` is `texts`
        joined by newlines: a transformer that cannot change it cannot change a value, so the
        chain costs no call per value on most requests."""
        if len(texts) == 1:
            text = self.apply(joined)
            return texts if text == joined else [text]
        for may_change in self._tests:
            if may_change(joined):
                break
        else:
            return texts
        if self._bulk is not None and joined.count("\n") == len(texts) - 1:
            result = joined
            for bulk in self._bulk:
                step = bulk(result)
                if step is None:
                    break
                result = step
            else:
                return texts if result == joined else result.split("\n")
        apply = self.apply
        changed = [apply(text) for text in texts]
        return texts if changed == texts else changed


def _compose(functions: Sequence[Transformer]) -> Transformer:
    if len(functions) == 1:
        return functions[0]

    def chain(value: str) -> str:
        for function in functions:
            value = function(value)
        return value

    return chain


@functools.lru_cache(maxsize=256)
def make_values_chain(names: tuple[str, ...]) -> Chain | None:
    """The chain of `names` over many values at once; None when there is nothing to apply."""
    functions = [TRANSFORMERS[name] for name in names if name not in SELECTORS]
    return Chain(functions) if functions else None


@functools.lru_cache(maxsize=256)
def make_chain(names: tuple[str, ...]) -> Transformer | None:
    """Compose the named transformers in order; None when there is nothing to apply. Cached:
    exclusion conditions ask for their chains on every run."""
    functions = [TRANSFORMERS[name] for name in names if name not in SELECTORS]
    return _compose(functions) if functions else None


def unknown_transformers(names: Sequence[str]) -> list[str]:
    return [name for name in names if name not in TRANSFORMERS and name not in SELECTORS]
