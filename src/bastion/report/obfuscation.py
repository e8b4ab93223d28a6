"""Obfuscation: secrets are redacted from security events before anything is written.

Two RE2 patterns decide what is secret. The *key pattern* names sensitive fields: a parameter
whose key path, or a header whose name, matches it loses its whole value. The *value pattern*
finds secrets inside any text (tokens, keys, card numbers, emails) and only those spans are
replaced, so the attack around them stays readable. RE2 runs in linear time and every text is
capped, so an attacker cannot make reporting slow.

Named groups give the value pattern a few powers a regex alone lacks:

- ``secret...``: when any group whose name starts with ``secret`` took part in a match, only
  those groups are redacted (``password=<redacted>`` keeps the key readable); otherwise the
  whole match is.
- ``card``: a match is a card-number candidate, redacted only when its 13 to 19 digits pass
  the Luhn check, so order numbers and timestamps stay readable.
- ``blob``: a match is a long hex or base64 candidate, redacted only when it looks random
  (hex with both digits and letters; otherwise upper case, lower case and digits together),
  so long identifiers, paths and ``AAAA...`` probes stay readable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

import re2

from bastion.waf.patterns import Re2Program

REDACTED = "<redacted>"

MAX_TEXT_CHARS = 4096
"""Longest text scanned; longer texts are cut to this before redaction (and in the output)."""

MAX_URL_CHARS = 8192
"""Longest URL scanned; each of its parts is then capped at MAX_TEXT_CHARS."""

_MAX_DEPTH = 32  # events are shallow; deeper input is cut rather than walked

# Names only: a match anywhere in a key-path element or header name marks it sensitive. Short
# words need a non-letter (or the edge) around them so that "inside", "company" or "classname"
# stay readable. Compiled case-insensitively.
_BOUNDED = r"(?:^|[^a-z])(?:sid|pin|pan|ssn|cvv2?|cvc2?|csc|iban|sig|auth|mfa|[th]?otp)(?:[^a-z]|$)"
DEFAULT_KEY_PATTERN = "|".join(
    (
        r"pass(?:word|wd|phrase|code)",
        r"pass(?:[^a-z]|$)",
        r"pwd",
        r"secret",
        r"token",
        r"api[-_. ]?key",
        r"access[-_. ]?key",
        r"private[-_. ]?key",
        r"authori[sz]ation",
        r"credential",
        r"cookie",
        r"session",
        r"sessid",
        r"bearer",
        r"jwt",
        r"signature",
        r"credit[-_. ]?card",
        r"card[-_. ]?(?:number|num|no)(?:[^a-z]|$)",
        r"cc[-_. ]?num",
        r"security[-_. ]?code",
        r"social[-_. ]?security",
        r"csrf",
        r"xsrf",
        _BOUNDED,
    )
)

# A sensitive key inside free text: `password=...`, `"api_key": "..."`, `Authorization: ...`.
# Long words may carry a suffix (password_confirmation); short ones may not ("inside=" stays).
_PAIR_KEY = (
    r"(?i:(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[-_]?key|access[-_]?key"
    r"|private[-_]?key|authori[sz]ation|credential|session[-_]?id|sessid|jwt|signature"
    r"|cookie)[a-z0-9_-]*|(?:sid|pin|ssn|cvv|cvc|otp|auth))"
)
_PAIR_VALUE = (
    r"""(?:"(?P<secret_dq>(?:[^"\\]|\\.)*)"?"""
    r"""|'(?P<secret_sq>[^']*)'?"""
    r"""|(?P<secret_raw>(?i:(?:bearer|basic|token)\s+)?[^\s"'&,;]+))"""
)
DEFAULT_VALUE_PATTERN = "|".join(
    (
        # PEM private key blocks, also when cut short by a length limit.
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)"
        r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
        # Credentials inside a URL: scheme://user:password@host.
        r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:(?P<secret_url>[^/\s@]+)@",
        _PAIR_KEY + r"""["']?\s*[=:]\s*""" + _PAIR_VALUE,
        r"(?i:bearer)\s+(?P<secret_bearer>[A-Za-z0-9._~+/-]{6,}=*)",
        r"(?i:basic)\s+(?P<secret_basic>(?:[A-Za-z0-9+/]{4})+"
        r"(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)(?:[^A-Za-z0-9+/=]|\z)",
        # JSON Web Tokens: base64url header (always `{"` -> eyJ), payload, signature.
        r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        # Vendor key shapes.
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b",
        r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        r"\bwhsec_[A-Za-z0-9]{16,}",
        r"\bgh[pousr]_[A-Za-z0-9]{30,}",
        r"\bgithub_pat_[A-Za-z0-9_]{30,}",
        r"\bglpat-[A-Za-z0-9_-]{20,}",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        r"\bAIza[0-9A-Za-z_-]{35}",
        r"\bnpm_[A-Za-z0-9]{36}",
        r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",
        # Email addresses; a local part without a letter (`http://127.0.0.1@evil.example`, an
        # SSRF probe) is no mailbox and stays readable.
        r"[A-Za-z0-9._%+-]*[A-Za-z_%+-][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
        r"\.[A-Za-z]{2,}",
        # Card numbers (confirmed by Luhn), then long random-looking hex or base64.
        r"(?P<card>\b[0-9](?:[ -]?[0-9]){12,18}\b)",
        r"(?P<blob>\b[0-9A-Fa-f]{32,}\b|[A-Za-z0-9+/_-]{32,}={0,2})",
    )
)

_MAX_REMEMBERED_NAMES = 1024
_MAX_REMEMBERED_NAME = 64
_MAX_REMEMBERED_TEXTS = 4096
_MAX_REMEMBERED_TEXT = 512

# Characters left as they are when a redacted URL part is percent-encoded again.
_URL_SAFE = "/:@!$'()*,;~<>"


def _compile(kind: str, pattern: str | None, *, case_sensitive: bool) -> Any:
    if not pattern:
        return None
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"invalid obfuscation {kind} pattern {pattern!r}: {reason}") from None


def _luhn_valid(candidate: str) -> bool:
    digits = [ord(c) - 48 for c in candidate if "0" <= c <= "9"]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _looks_random(candidate: str) -> bool:
    has_digit = any(c.isdigit() for c in candidate)
    if all(c in "0123456789abcdefABCDEF" for c in candidate):
        return has_digit and any(c.isalpha() for c in candidate)
    return has_digit and any(c.isupper() for c in candidate) and any(c.islower() for c in candidate)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    pieces: list[str] = []
    last = 0
    for start, end in spans:
        pieces.append(text[last:start])
        pieces.append(REDACTED)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _occurrences(needle: str, haystack: str) -> Iterator[int]:
    index = haystack.find(needle)
    while index >= 0:
        yield index
        index = haystack.find(needle, index + 1)


def _splits_url(query: str) -> bool:
    """Whether `urlsplit` would change `query`: a fragment, or a character it removes. Four
    searches of the text: a set built of its characters cost ten times that."""
    return "#" in query or "\t" in query or "\r" in query or "\n" in query


def _remember(clean: dict[str, None], text: str) -> None:
    """Keep `text` in a memory of clean texts, if short enough; a full memory starts over."""
    if len(text) <= _MAX_REMEMBERED_TEXT:
        if len(clean) >= _MAX_REMEMBERED_TEXTS:
            clean.clear()
        clean[text] = None


def _copy_tree(value: Any, depth: int = 0) -> Any:
    """A copy of the containers of a JSON-like tree; leaves are shared (they are not mutated)."""
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            return REDACTED
        return {key: _copy_tree(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if depth >= _MAX_DEPTH:
            return REDACTED
        return [_copy_tree(item, depth + 1) for item in value]
    return value


class Obfuscator:
    """Redacts secrets from events, URLs and free text; after construction it only keeps a
    bounded memory of parameter names' verdicts and of texts and queries found clean.

    The key pattern is matched case-insensitively; the value pattern is compiled as written
    (the default one uses ``(?i:...)`` where case does not matter). ``None`` or an empty
    pattern turns that half of the redaction off. Both use RE2 syntax.
    """

    def __init__(
        self,
        key_pattern: str | None = DEFAULT_KEY_PATTERN,
        value_pattern: str | None = DEFAULT_VALUE_PATTERN,
    ) -> None:
        self._key = _compile("key", key_pattern, case_sensitive=False)
        self._value = _compile("value", value_pattern, case_sensitive=True)
        # "Is there a secret at all?" through RE2's own call: half the cost of `search`, and
        # most texts hold none.
        self._value_test = None if self._value is None else Re2Program(self._value)
        groups: dict[str, int] = {} if self._value is None else dict(self._value.groupindex)
        self._secret_groups = tuple(i for name, i in groups.items() if name.startswith("secret"))
        self._card_group = groups.get("card")
        self._blob_group = groups.get("blob")
        # Verdicts on names: the same few parameter names come on request after request.
        self._key_verdicts: dict[str, bool] = {}
        # Texts the value pattern found no secret in, and query strings with nothing to
        # redact (names included), kept apart: a text clean for one is not for the other.
        # Browsers repeat their user agent, applications their paths and queries, attacks
        # their payloads (read for the span event and again for the log). Only clean texts
        # are kept: no secret stays here.
        self._clean_texts: dict[str, None] = {}
        self._clean_queries: dict[str, None] = {}

    def is_sensitive_key(self, name: str) -> bool:
        """Whether a parameter or header called `name` must lose its whole value."""
        verdict = self._key_verdicts.get(name)
        if verdict is None:
            verdict = self._key is not None and self._key.search(
                name[:MAX_TEXT_CHARS]) is not None
            if len(name) <= _MAX_REMEMBERED_NAME:
                if len(self._key_verdicts) >= _MAX_REMEMBERED_NAMES:
                    self._key_verdicts = {}
                self._key_verdicts[name] = verdict
        return verdict

    def redact_query(self, query: str) -> str:
        """A query string (what follows `?`) as `redact_url` leaves it, without parsing a
        whole URL when nothing in it needs one. Applications repeat their queries: one that
        needs nothing redacted is remembered as such (bounded, as the clean texts are)."""
        if query in self._clean_queries:
            return query
        if len(query) < MAX_URL_CHARS and not _splits_url(query):
            result = self._redact_query(query)
        else:
            result = self.redact_url("?" + query)[1:]
        if result == query:
            _remember(self._clean_queries, query)
        return result

    def redact_text(self, text: str) -> str:
        """`text` (cut to MAX_TEXT_CHARS) with each secret the value pattern finds redacted."""
        if text in self._clean_texts:  # remembered ones are shorter than the cut
            return text
        text = text[:MAX_TEXT_CHARS]
        return _replace(text, self._spans(text))

    def redact_url(self, url: str) -> str:
        """`url` with sensitive query parameters and secrets redacted, userinfo password removed.

        Parts are compared decoded (`%40` is an `@`) but left as sent unless something in them
        is redacted, so an attack in the URL reads exactly as it arrived.
        """
        url = url[:MAX_URL_CHARS]
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unbalanced IPv6 bracket: still redact what we can
            return self.redact_text(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = self._redact_component(userinfo.partition(":")[0], plus=False)
            netloc = f"{user}@{hostport}" if user else hostport
        return urlunsplit(
            (
                parts.scheme,
                netloc,
                self._redact_component(parts.path, plus=False),
                self._redact_query(parts.query),
                self._redact_component(parts.fragment, plus=False),
            )
        )

    def redact_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of a security event; the input is never modified."""
        redacted: dict[str, Any] = _copy_tree(event)
        http = redacted.get("http")
        if isinstance(http, dict):
            self._redact_http(http)
        triggers = redacted.get("triggers")
        for trigger in triggers if isinstance(triggers, list) else ():
            matches = trigger.get("rule_matches") if isinstance(trigger, dict) else None
            for match in matches if isinstance(matches, list) else ():
                parameters = match.get("parameters") if isinstance(match, dict) else None
                for parameter in parameters if isinstance(parameters, list) else ():
                    if isinstance(parameter, dict):
                        self._redact_parameter(parameter)
        return redacted

    def redacted_parameter(self, parameter: Mapping[str, Any]) -> dict[str, Any]:
        """A redacted copy of one matched parameter of a rule match (address, key_path,
        value, highlight), as `redact_event` leaves it: what a span event shows, without
        copying and walking a whole event."""
        copied = dict(parameter)
        for name in ("key_path", "highlight"):
            listed = copied.get(name)
            if isinstance(listed, list | tuple):  # as redact_event's copy: lists
                copied[name] = list(listed)
        self._redact_parameter(copied)
        return copied

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Where the value pattern finds confirmed secrets in `text`, merged and in order."""
        if self._value_test is None or not text or text in self._clean_texts:
            return []
        checked = text
        try:
            found = self._value_test.search(text)
        except UnicodeEncodeError:  # lone surrogates (a JSON body can carry them): RE2 reads
            text = text.encode("utf-8", "replace").decode()  # UTF-8; same length, one "?" each
            found = self._value_test.search(text)
        if found is None:
            _remember(self._clean_texts, checked)
            return []
        spans: list[tuple[int, int]] = []
        for match in self._value.finditer(text):
            start, end = match.span()
            if start == end or not self._confirmed(match):
                continue
            inner = [match.span(group) for group in self._secret_groups]
            taken = [(s, e) for s, e in inner if s >= 0]
            if taken:
                spans.extend((s, e) for s, e in taken if e > s)
            else:
                spans.append((start, end))
        return _merge(spans)

    def _confirmed(self, match: Any) -> bool:
        if self._card_group is not None:
            card = match.group(self._card_group)
            if card is not None and not _luhn_valid(card):
                return False
        if self._blob_group is not None:
            blob = match.group(self._blob_group)
            if blob is not None and not _looks_random(blob):
                return False
        return True

    def _redact_component(self, raw: str, *, plus: bool) -> str:
        decoded = unquote_plus(raw) if plus else unquote(raw)
        if len(decoded) <= MAX_TEXT_CHARS and not self._spans(decoded):
            return raw
        if decoded == raw:
            return self.redact_text(raw)
        return quote(self.redact_text(decoded), safe=_URL_SAFE)

    def _redact_query(self, query: str) -> str:
        if len(query) <= MAX_TEXT_CHARS and self._all_plain(query):
            return query
        pieces = []
        for piece in query.split("&"):
            name, equals, value = piece.partition("=")
            if not equals:
                pieces.append(self._redact_component(piece, plus=True))
            elif self.is_sensitive_key(unquote_plus(name)):
                pieces.append(f"{name}={REDACTED}")
            else:
                pieces.append(f"{name}={self._redact_component(value, plus=True)}")
        return "&".join(pieces)

    def _all_plain(self, query: str) -> bool:
        """Whether no part of `query` (within MAX_TEXT_CHARS) needs redacting: no name is
        sensitive, and the value pattern finds nothing in the query decoded as a whole. Each
        value, decoded alone, is a piece of that text between `=` and `&` (which the pattern
        reads as any other non-word character), so it cannot hold what the whole does not."""
        for piece in query.split("&"):
            name, equals, _ = piece.partition("=")
            if equals and self.is_sensitive_key(
                    unquote_plus(name) if "%" in name or "+" in name else name):
                return False
        return self._value_test is None or self._value_test.search(unquote_plus(query)) is None

    def _redact_http(self, http: dict[str, Any]) -> None:
        url = http.get("url")
        if isinstance(url, str):
            http["url"] = self.redact_url(url)
        user_agent = http.get("user_agent")
        if isinstance(user_agent, str):
            http["user_agent"] = self.redact_text(user_agent)
        headers = http.get("headers")
        if not isinstance(headers, dict):
            return
        for name, value in headers.items():
            if self.is_sensitive_key(str(name)):
                headers[name] = [REDACTED for _ in value] if isinstance(value, list) else REDACTED
            elif isinstance(value, str):
                headers[name] = self.redact_text(value)
            elif isinstance(value, list):
                headers[name] = [self.redact_text(v) if isinstance(v, str) else v for v in value]

    def _redact_parameter(self, parameter: dict[str, Any]) -> None:
        key_path = parameter.get("key_path")
        highlights = parameter.get("highlight")
        keys = key_path if isinstance(key_path, list) else ()
        if any(isinstance(key, str) and self.is_sensitive_key(key) for key in keys):
            if "value" in parameter:
                parameter["value"] = REDACTED
            if isinstance(highlights, list):
                parameter["highlight"] = [REDACTED for _ in highlights]
            return
        value = parameter.get("value")
        full = "" if value is None else (value if isinstance(value, str) else str(value))
        text = full[:MAX_TEXT_CHARS]
        spans = self._spans(text)
        if spans or len(text) < len(full):  # what was not scanned must not be written either
            parameter["value"] = _replace(text, spans)
        if not isinstance(highlights, list):
            return
        hidden = [0] * (len(text) + 1)  # hidden[i]: redacted characters before position i
        if spans:  # else all zeros: no need to walk a value of up to MAX_TEXT_CHARS
            for start, end in spans:
                for i in range(start, end):
                    hidden[i + 1] = 1
            for i in range(len(text)):
                hidden[i + 1] += hidden[i]
        parameter["highlight"] = [
            self._redact_highlight(h, text, spans, hidden) if isinstance(h, str) else h
            for h in highlights
        ]

    def _redact_highlight(
        self, highlight: str, value: str, spans: list[tuple[int, int]], hidden: list[int]
    ) -> str:
        """A highlight that shows any part of a redacted secret of its value goes entirely."""
        if not highlight or not spans:
            return self.redact_text(highlight)
        starts = _occurrences(highlight, value)
        lowered, lowered_value = highlight.lower(), value.lower()
        if len(lowered_value) == len(value) and len(lowered) == len(highlight):
            starts = chain(starts, _occurrences(lowered, lowered_value))  # rules lower-case
        size, found = len(highlight), False
        for start in starts:
            if hidden[start + size] > hidden[start]:
                return REDACTED
            found = True
        if not found:  # transformed beyond recognition: compare with the secrets themselves
            for start, end in spans:
                secret = value[start:end].lower()
                if lowered in secret or secret in lowered:
                    return REDACTED
        return self.redact_text(highlight)
