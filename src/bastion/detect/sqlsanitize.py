"""SQL statement sanitizer for datastore tracing: the statement's shape without its data.

A span must show which query ran without carrying what the user sent: every literal (string,
number, dollar-quoted body, list of literals) becomes "?", comments go, white space shrinks to
one space. Keywords, identifiers and the driver's placeholders (`%s`, `%(name)s`, `?`, `?1`,
`$1`, `:name`, `@name`) stay as written, so statements that differ only in their values read
the same. The work is one pass of the SQL tokenizer (`bastion.detect.sql`), linear in the
statement.
"""

from __future__ import annotations

import functools
from typing import Final

from bastion.detect.sql import (
    K_CLOSE,
    K_COMMA,
    K_COMMENT,
    K_FUNC,
    K_INLINE,
    K_NUMBER,
    K_OPEN,
    K_STRING,
    Lexeme,
    dialect_of,
    is_numeral,
    scan,
    sign_binds,
)

__all__ = ["sanitize"]

_DROPPED: Final = frozenset({K_COMMENT, K_INLINE})


def sanitize(statement: str, dialect: str = "generic") -> str:
    """Return `statement` with every literal replaced by "?" and comments removed.

    `dialect` is a database or driver name ("postgresql", "psycopg", "pymysql", "sqlite3",
    ...); an unknown one reads the statement with the union of the dialects' rules. Never
    raises: on an internal error the whole statement is hidden as "?".
    """
    try:
        if len(statement) <= _CACHE_MAX_CHARS:
            return _sanitize_remembered(statement, dialect_of(dialect))
        return _sanitize(statement, dialect_of(dialect))
    except Exception:  # a trace attribute must never break the query it describes
        return "?"


# The same statements run again and again (values go in parameters): sanitize each once.
_CACHE_MAX_CHARS: Final = 4096


@functools.lru_cache(maxsize=1024)
def _sanitize_remembered(statement: str, dialect: str) -> str:
    return _sanitize(statement, dialect)


def _sanitize(statement: str, dialect: str) -> str:
    tokens = [t for t in scan(statement, dialect) if t.kind not in _DROPPED]
    out: list[str] = []
    last_end = 0  # where the last piece written ended in the statement
    prev: Lexeme | None = None  # the last token written (or the last of a replaced group)
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.kind == K_OPEN and _list_may_follow(prev) and (
            (end := _literal_list(tokens, i + 1)) >= 0
        ):
            piece = "(?)"
        elif (end := _literal(tokens, i, prev)) >= 0:
            piece = "?"
        else:
            piece, end = _kept(tok), i
        if out and tok.start > last_end:
            out.append(" ")
        out.append(piece)
        last_end = tokens[end].end
        prev = tokens[end]
        i = end + 1
    return "".join(out)


def _kept(tok: Lexeme) -> str:
    """The text of a token that is not a literal; an unterminated quoted name hides the rest
    of the statement (it may well be a string the application quoted wrongly)."""
    return tok.text if tok.closed else "?"


def _is_value(tok: Lexeme) -> bool:
    """A string or a number (TRUE, FALSE and NULL stay as the keywords they are)."""
    return tok.kind == K_STRING or is_numeral(tok)


def _is_placeholder_index(tokens: list[Lexeme], i: int) -> bool:
    """Are tokens[i] the digits of a numbered placeholder (SQLite's ?1, the :1 style)?

    The mark must stand where an operand may: `arr[1:2]` and `arr[:2]` are slices."""
    tok = tokens[i]
    if i == 0 or not tok.text.isdigit():
        return False
    mark = tokens[i - 1]
    if mark.end != tok.start or mark.text not in ("?", ":"):
        return False
    before = tokens[i - 2] if i >= 2 else None
    return sign_binds(before) and not (before is not None and before.text == "[")


def _literal(tokens: list[Lexeme], i: int, prev: Lexeme | None) -> int:
    """Index of the last token of the literal starting at tokens[i], or -1 if none does."""
    tok = tokens[i]
    if _is_value(tok):
        return -1 if _is_placeholder_index(tokens, i) else i
    if (
        tok.text in ("-", "+")
        and i + 1 < len(tokens)
        and is_numeral(tokens[i + 1])
        and sign_binds(prev)
    ):
        return i + 1
    return -1


def _list_may_follow(prev: Lexeme | None) -> bool:
    """A "(" that opens a list of values rather than a call's arguments ("IN (", "VALUES (",
    "= ("; but "round(", "varchar(")."""
    return prev is None or prev.kind != K_FUNC or prev.text.upper() == "VALUES"


def _literal_list(tokens: list[Lexeme], i: int) -> int:
    """Index of the ")" closing a list of literals that starts at tokens[i], or -1."""
    n = len(tokens)
    prev: Lexeme | None = None
    while i < n:
        tok = tokens[i]
        if _is_value(tok) or tok.kind == K_NUMBER:
            end = i
        else:
            end = _literal(tokens, i, prev)
            if end < 0:
                return -1
        if end + 1 >= n:
            return -1
        after = tokens[end + 1]
        if after.kind == K_CLOSE:
            return end + 1
        if after.kind != K_COMMA:
            return -1
        prev = after
        i = end + 2
    return -1
