"""SQL injection at the sink: did a user's value reshape the statement the database runs?

An application that builds SQL with string formatting is safe while each user value stays a
value: inside one string or number literal (`name = 'O''Brien'`, `id = 42`), one identifier
it picked from a whitelist (`ORDER BY created_at DESC`), or a whole list of literals
(`id IN (3, 5, 8)`). The value is an injection when it brings grammar of its own: it spans
more than one token, becomes an operator, a keyword, a comment, a statement separator, or
moves where a quote (or a comment, a dollar quote, a quoted name) ends, whatever the payload.

The statement is read once with the SQL tokenizer (`bastion.detect.sql`) in the database's
dialect, so `\\'` closes a string in PostgreSQL but not in MySQL. Each occurrence of the value
counts, as sent and as the usual escaping (doubled quotes, backslashes) writes it: an escaped
value that still breaks out (MySQL's backslash under quote doubling) is found that way.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Final

from bastion.detect.sql import (
    K_CLOSE,
    K_COMMA,
    K_COMMENT,
    K_DOT,
    K_FUNC,
    K_INLINE,
    K_NAME,
    K_NUMBER,
    K_OPEN,
    K_STRING,
    K_VAR,
    Lexeme,
    dialect_of,
    is_numeral,
    scan,
    sign_binds,
)

__all__ = ["dialect_of", "injected"]

_MIN_LENGTH: Final = 2
# Words a whitelisted value may be on its own: the direction of an ORDER BY.
_DIRECTIONS: Final = frozenset({"ASC", "DESC"})
# Characters that can move the end of a quoted token or comment from inside it.
_BREAKERS: Final = frozenset("'\"`\\$*/]\n")
_ORDER_BY_REACH: Final = 64  # tokens walked back to find the ORDER BY an item belongs to


def injected(statement: str, param: str, dialect: str = "generic") -> bool:
    """Does `param`, found in `statement`, change the statement's structure?

    `dialect` is a database or driver name ("postgresql", "mariadb", "psycopg", "sqlite3",
    ...; see `dialect_of`). A value shorter than two characters, or absent, is never one.
    """
    if len(param) < _MIN_LENGTH:
        return False
    forms = [form for form in _forms(param) if form in statement]
    if not forms:
        return False
    return _Statement(statement, dialect_of(dialect)).injected(forms)


def _forms(param: str) -> list[str]:
    """The value as sent and as escaping functions write it, longest first."""
    forms = [param]
    if "'" in param or '"' in param or "\\" in param:
        backslashed = param.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
        for form in (param.replace("'", "''"), param.replace("'", "\\'"), backslashed):
            if form not in forms:
                forms.append(form)
    forms.sort(key=len, reverse=True)
    return forms


class _Statement:
    """One statement's tokens and the checks of the values found in it."""

    __slots__ = ("closed_checks", "dialect", "ends", "starts", "text", "tokens")

    def __init__(self, text: str, dialect: str) -> None:
        self.text = text
        self.dialect = dialect
        self.tokens = scan(text, dialect)
        self.starts = [t.start for t in self.tokens]
        self.ends = [t.end for t in self.tokens]
        # per (token index, form): does the token end where it does without the value?
        self.closed_checks: dict[tuple[int, str], bool] = {}

    def injected(self, forms: list[str]) -> bool:
        # In a statement whose quotes all close, an occurrence overlapping one where the
        # value sits harmlessly is that same value seen through its escaping, or shifted
        # along a run of quotes: the raw "rock'" in the escaped "rock''"; the value "''"
        # doubled to "''''" and also found one quote earlier. A value that broke out of its
        # quotes leaves one open, and then every occurrence stands alone.
        well_formed = self.tokens[-1].closed
        harmful: list[tuple[int, int]] = []
        harmless: list[tuple[int, int]] = []
        for form in forms:
            at = self.text.find(form)
            while at >= 0:
                end = at + len(form)
                if not self._reshapes(at, end, form):
                    harmless.append((at, end))
                elif not well_formed:
                    return True
                else:
                    harmful.append((at, end))
                at = self.text.find(form, at + 1)
        if not harmful:
            return False
        fine = _Spans(harmless)
        return any(not fine.overlaps(at, end) for at, end in harmful)

    def _reshapes(self, start: int, end: int, form: str) -> bool:
        lo = bisect_right(self.ends, start)  # first token ending after the value starts
        hi = bisect_left(self.starts, end)  # first token starting at or after its end
        if lo >= hi:
            return False  # only white space
        if hi - lo == 1:
            return self._reshapes_token(lo, start, end, form)
        return not (
            self._signed_number(lo, hi)
            or self._qualified_name(lo, hi, start, end)
            or self._literal_list(lo, hi, start, end)
            or self._order_item(lo, hi, start, end)
        )

    # --- a value within one token ---------------------------------------------------------

    def _reshapes_token(self, index: int, start: int, end: int, form: str) -> bool:
        tok = self.tokens[index]
        whole = start <= tok.start and end >= tok.end
        body = _body(tok)
        if body is not None:
            if body[0] <= start and end <= body[1]:
                # inside the quotes (or the comment): harmless unless it moves their end
                if _BREAKERS.isdisjoint(form):
                    return False
                return not self._same_extent(index, form, body)
            if whole and tok.kind in (K_STRING, K_NAME):
                return not tok.closed  # a whole literal or quoted name the user wrote
            return True  # it crosses an opening or closing mark
        if tok.kind == K_INLINE:
            return True  # a MySQL /*! executable comment mark
        if tok.kind in (K_NUMBER, K_NAME, K_FUNC):
            return False
        if tok.kind == K_VAR:
            return start <= tok.start  # a variable or placeholder of the user's own
        if not whole:
            return False  # part of the application's keyword or operator
        return tok.text.upper() not in _DIRECTIONS

    def _same_extent(self, index: int, form: str, body: tuple[int, int]) -> bool:
        """Does the token end where it does, closed or not alike, with the value's occurrences
        in it blanked out? A value that escapes or supplies a closing mark changes that."""
        key = (index, form)
        cached = self.closed_checks.get(key)
        if cached is not None:
            return cached
        tok = self.tokens[index]
        pieces = [self.text[tok.start : body[0]]]
        done = body[0]
        at = self.text.find(form, body[0], body[1])
        while at >= 0:
            if at > done:
                pieces.append(self.text[done:at])
            stop = at + len(form)
            pieces.append(" " * (stop - max(at, done)))
            done = stop
            at = self.text.find(form, at + 1, body[1])
        pieces.append(self.text[done : tok.end])
        blanked = "".join(pieces)
        again = scan(blanked, self.dialect)
        same = len(again) == 1 and again[0].end == len(blanked) and again[0].closed == tok.closed
        self.closed_checks[key] = same
        return same

    # --- values over several tokens that are still one value ------------------------------

    def _literal_end(self, index: int, hi: int) -> int:
        """Index after the literal at tokens[index] (a sign and its number count as one),
        or -1."""
        tok = self.tokens[index]
        if tok.kind == K_NUMBER or (tok.kind == K_STRING and tok.closed):
            return index + 1
        if (
            tok.text in ("-", "+")
            and index + 1 < hi
            and is_numeral(self.tokens[index + 1])
            and sign_binds(self.tokens[index - 1] if index else None)
        ):
            return index + 2
        return -1

    def _signed_number(self, lo: int, hi: int) -> bool:
        return hi - lo == 2 and self._literal_end(lo, hi) == hi

    def _qualified_name(self, lo: int, hi: int, start: int, end: int) -> bool:
        """schema.table, "Table"."Column": names joined by dots, quoted ones whole."""
        for k in range(lo, hi):
            tok = self.tokens[k]
            if (k - lo) % 2:
                if tok.kind != K_DOT:
                    return False
            elif not _is_name(tok):
                return False
        return (hi - lo) % 2 == 1 and self._whole_ends(lo, hi, start, end, quoted_only=True)

    def _literal_list(self, lo: int, hi: int, start: int, end: int) -> bool:
        """The whole content of a parenthesised list of literals: IN (3, 5, 8)."""
        if lo == 0 or hi >= len(self.tokens):
            return False
        if self.tokens[lo - 1].kind != K_OPEN or self.tokens[hi].kind != K_CLOSE:
            return False
        k = lo
        while True:
            k = self._literal_end(k, hi)
            if k < 0:
                return False
            if k == hi:
                break
            if self.tokens[k].kind != K_COMMA:
                return False
            k += 1
        return self._whole_ends(lo, hi, start, end, quoted_only=False)

    def _order_item(self, lo: int, hi: int, start: int, end: int) -> bool:
        """A whitelisted sort key with its direction: ORDER BY {name DESC}, ..."""
        if self.tokens[hi - 1].text.upper() not in _DIRECTIONS or hi - lo < 2:
            return False
        if not self._qualified_name(lo, hi - 1, start, self.tokens[hi - 2].end):
            return False
        k = lo - 1
        floor = max(-1, lo - _ORDER_BY_REACH)
        while k > floor:  # back over the earlier items of the list
            tok = self.tokens[k]
            if tok.text.upper() == "BY":
                return k > 0 and self.tokens[k - 1].text.upper() == "ORDER"
            if not (_is_name(tok) or tok.kind in (K_COMMA, K_DOT, K_NUMBER)
                    or tok.text.upper() in _DIRECTIONS):
                return False
            k -= 1
        return False

    def _whole_ends(self, lo: int, hi: int, start: int, end: int, quoted_only: bool) -> bool:
        """Does the value cover its first and last tokens whole (only quoted ones need to)?"""
        first, last = self.tokens[lo], self.tokens[hi - 1]
        if (not quoted_only or _body(first) is not None) and start > first.start:
            return False
        return not ((not quoted_only or _body(last) is not None) and end < last.end)


class _Spans:
    """Intervals of the statement, asked whether any overlaps a given one."""

    __slots__ = ("reach", "starts")

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans = sorted(spans)
        self.starts = [start for start, _ in spans]
        self.reach: list[int] = []  # the furthest end among the spans up to each one
        furthest = -1
        for _, end in spans:
            furthest = max(furthest, end)
            self.reach.append(furthest)

    def overlaps(self, start: int, end: int) -> bool:
        k = bisect_left(self.starts, end) - 1  # the last span starting before `end`
        return k >= 0 and self.reach[k] > start


def _is_name(tok: Lexeme) -> bool:
    return tok.kind in (K_NAME, K_FUNC) and tok.closed


def _body(tok: Lexeme) -> tuple[int, int] | None:
    """Where the content of a quoted token or comment lies, between its marks; None for a
    token without marks."""
    text = tok.text
    closing = 0
    if tok.kind == K_STRING:
        if text[0] == "$":
            opening = text.index("$", 1) + 1
            closing = opening
        else:
            opening = 1  # after a prefix: N'..', E'..', _utf8mb4'..'
            while text[opening - 1] not in "'\"":
                opening += 1
            closing = 1
    elif tok.kind == K_NAME and text[0] in "\"`[":
        opening = closing = 1
    elif tok.kind == K_INLINE:
        if text == "*/" or not text.endswith("*/"):
            return None  # the marks of a MySQL /*! */ executable comment
        opening = closing = 2
    elif tok.kind == K_COMMENT:
        opening = 2 if text[0] in "-/" else 1
        return tok.start + opening, tok.end - (1 if text.endswith("\n") else 0)
    else:
        return None
    return tok.start + opening, tok.end - (closing if tok.closed else 0)
