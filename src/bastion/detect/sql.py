"""SQL injection detection with a hand-written SQL lexer and a token grammar.

The lexer knows the lexical rules of SQLite, PostgreSQL and MySQL/MariaDB (quoting, escapes,
comments, numbers, operators). `is_sqli` places the inspected value in a query the way an
application would (as a bare value, after a single quote, after a double quote), lexes what
the database would see, and runs a small state machine over the tokens: the value must parse
as a valid continuation of the query *and* contain something an honest value never needs
(a string break followed by SQL, a tautology after OR, UNION SELECT, a stacked statement,
comment truncation, time or file functions...).

No regular expression sees the input: scanning is a single pass per context, linear in
the length of the value, with an explicit (non-recursive) stack for parentheses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Final, NamedTuple

__all__ = [
    "DIALECTS", "Lexeme", "Token", "dialect_of", "is_numeral", "is_sqli", "scan",
    "sign_binds", "tokenize",
]

DIALECTS: Final = ("generic", "mysql", "postgres", "sqlite")


class Token(NamedTuple):
    """One lexical token; `kind` is a one-character class (see the K_* constants)."""

    kind: str
    text: str
    start: int


class Lexeme(NamedTuple):
    """A token with its extent and whether its closing mark was found: the sanitizer must
    hide an unterminated literal to the end, and the injection check must see where an
    input sits relative to the quotes."""

    kind: str
    text: str
    start: int
    end: int
    closed: bool  # False: a quoted literal or name, or a block comment, ran to the end


# Token kinds. One character each so that a token sequence reads as a short fingerprint.
K_STRING: Final = "s"  # quoted string literal ('..', "..", $$..$$, N'..', X'..')
K_NUMBER: Final = "1"  # numeric literal, also TRUE/FALSE/NULL
K_NAME: Final = "n"  # bare word or quoted identifier (`x`, "x" in postgres, [x] in sqlite)
K_VAR: Final = "v"  # @x, @@x, $1, ?
K_KEYWORD: Final = "k"  # reserved word that is neither operator nor statement start
K_LOGIC: Final = "&"  # AND OR XOR && ||
K_OP: Final = "o"  # other operators, symbolic (=, +, ::) or words (LIKE, IS, DIV)
K_UNION: Final = "U"  # UNION INTERSECT EXCEPT MINUS
K_STMT: Final = "E"  # statement start: SELECT, INSERT, DROP, ...
K_FUNC: Final = "f"  # a word directly followed by "("
K_OPEN: Final = "("
K_CLOSE: Final = ")"
K_COMMA: Final = ","
K_SEMI: Final = ";"
K_COMMENT: Final = "c"  # line comment, or a block comment left open: truncates the query
K_INLINE: Final = "C"  # closed /* */ comment used as white space
K_DOT: Final = "."
K_OTHER: Final = "X"  # a character with no meaning in SQL

# --- lexical tables -------------------------------------------------------------------------

_WS: Final = frozenset(" \t\n\r\v\f\x00")
# ASCII characters that may continue a bare word; every non-ASCII character may too (as in
# MySQL and PostgreSQL, which accept any code point >= 0x80 in unquoted identifiers).
_WORD_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_WORD_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS: Final = frozenset("0123456789")
_HEX: Final = frozenset("0123456789abcdefABCDEF")
# Longest first within each first character.
_OPERATORS3: Final = frozenset({"<=>", "->>", "!~*", "#>>", "!!="})
_OPERATORS2: Final = frozenset(
    {
        "<=", ">=", "<>", "!=", "==", "<<", ">>", "||", "&&", "::", ":=", "->", "@>", "<@",
        "~*", "!~", "#>", "?|", "?&", "-|", "|/", "^=",
    }
)
_OPERATOR_CHARS: Final = frozenset("=<>!+-*/%^&|~:?@#")
_COMPARISONS: Final = frozenset(
    {"=", "<", ">", "<=", ">=", "<>", "!=", "==", "<=>", "!~", "~*", "!~*"}
)
_ARITH: Final = frozenset(
    {"+", "-", "*", "/", "%", "^", "&", "|", "<<", ">>", "->", "->>", "#", "~"}
)
_UNARY_SYMBOLS: Final = frozenset({"-", "+", "~", "!"})

_LOGIC_WORDS: Final = frozenset({"AND", "OR", "XOR"})
# Word operators: binary operators spelled as words.
_WORD_OPS: Final = frozenset(
    {
        "LIKE", "ILIKE", "RLIKE", "REGEXP", "GLOB", "MATCH", "IS", "IN", "BETWEEN", "DIV",
        "MOD", "SOUNDS", "ESCAPE", "COLLATE", "SIMILAR", "OVERLAPS", "NOT", "AS", "BINARY",
        "EXISTS", "DISTINCT", "ALL", "ANY", "SOME", "CASE", "WHEN", "THEN", "ELSE", "END",
        "INTERVAL", "ASC", "DESC", "AGAINST", "MEMBER", "OF", "TO", "NOTNULL",
    }
)
_PREDICATE_OPS: Final = frozenset(
    {"LIKE", "ILIKE", "RLIKE", "REGEXP", "GLOB", "MATCH", "IS", "IN", "BETWEEN", "SOUNDS",
     "SIMILAR"}
)
_CONSTANT_WORDS: Final = frozenset({"NULL", "TRUE", "FALSE", "UNKNOWN"})
_UNIONS: Final = frozenset({"UNION", "INTERSECT", "EXCEPT", "MINUS"})
_STATEMENTS: Final = frozenset(
    {
        "SELECT", "INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "TRUNCATE", "EXEC",
        "EXECUTE", "DECLARE", "SET", "SHUTDOWN", "WAITFOR", "GRANT", "REVOKE", "CALL", "COPY",
        "LOAD", "REPLACE", "PREPARE", "HANDLER", "RENAME", "MERGE", "UPSERT", "ATTACH", "PRAGMA",
        "VACUUM",
    }
)
_CLAUSES: Final = frozenset(
    {
        "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "PROCEDURE", "INTO",
        "FOR", "JOIN", "INNER", "OUTER", "CROSS", "NATURAL", "STRAIGHT_JOIN", "ON", "USING",
        "WINDOW", "FETCH", "BY", "TOP", "OUTFILE", "DUMPFILE", "SEPARATOR", "LEFT", "RIGHT",
        "FULL", "VALUES", "WITH", "LOCK", "RETURNING", "OVER", "PARTITION",
    }
)
# Reserved words that may still be called as functions: `LEFT(x, 1)`, `IF(a, b, c)`.
_KEYWORD_FUNCTIONS: Final = frozenset(
    {"LEFT", "RIGHT", "REPLACE", "INSERT", "MOD", "VALUES", "IF", "MATCH", "EXISTS", "ANY",
     "SOME", "BINARY", "COLLATE", "INTERVAL", "CASE"}
)
_OBJECTS: Final = frozenset(
    {
        "TABLE", "DATABASE", "SCHEMA", "USER", "VIEW", "PROCEDURE", "FUNCTION", "INDEX",
        "TRIGGER", "LOGIN", "ROLE", "EXTENSION", "TABLESPACE", "EVENT", "SEQUENCE", "SERVER",
        "TEMPORARY", "TEMP", "OR", "UNIQUE",
    }
)

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Functions seen in injection payloads (information gathering, string building, conditions,
# delays, file and network access). A call to one of them counts as SQL evidence.
_SQL_FUNCTIONS: Final = _words(
    """
    ascii char chr concat concat_ws substring substr mid left right length len lower
    upper hex unhex ord version database user current_user system_user session_user
    schema count group_concat string_agg cast convert coalesce ifnull isnull nullif if
    iif elt field make_set export_set rand floor ceil ceiling round abs md5 sha1 sha2
    crc32 sleep benchmark pg_sleep pg_sleep_for waitfor load_file extractvalue updatexml
    name_const exp json_keys json_extract geometrycollection polygon multipoint
    linestring multilinestring multipolygon row gtid_subset procedure_analyse analyse
    randomblob unicode instr locate position strcmp replace repeat reverse space trim
    ltrim rtrim lpad rpad conv bin oct quote soundex char_length character_length
    bit_length octet_length greatest least min max avg sum row_count found_rows
    last_insert_id connection_id uuid now sysdate curdate current_database
    current_schema pg_read_file pg_ls_dir lo_import lo_export lo_get query_to_xml xmlagg
    array_agg to_char utl_inaddr.get_host_address utl_http.request
    dbms_pipe.receive_message dbms_lock.sleep ctxsys.drithsx.sn xp_cmdshell xp_dirtree
    xp_fileexist db_name is_srvrolemember has_dbaccess suser_name host_name
    sqlite_version load_extension typeof zeroblob printf format encode decode
    starts_with regexp_substr from_base64 to_base64 aes_encrypt aes_decrypt des_encrypt
    compress uncompress inet_aton master_pos_wait get_lock release_lock is_free_lock pi
    cos sin tan atan exp log dbms_xmlgen.getxml sys_context
    """
)
_DANGER_FUNCTIONS: Final = _words(
    """
    sleep benchmark pg_sleep pg_sleep_for load_file extractvalue updatexml name_const
    pg_read_file pg_ls_dir lo_import lo_export lo_get utl_inaddr.get_host_address
    utl_http.request dbms_pipe.receive_message dbms_lock.sleep xp_cmdshell xp_dirtree
    xp_fileexist load_extension master_pos_wait get_lock randomblob gtid_subset
    dbms_xmlgen.getxml ctxsys.drithsx.sn query_to_xml
    """
)
_DIALECT_SET: Final = frozenset(DIALECTS)


class _Rules(NamedTuple):
    """Lexical switches of one dialect."""

    hash_comment: bool  # `#` starts a line comment (MySQL)
    dash_needs_space: bool  # `--` is a comment only before white space (MySQL)
    backslash: bool  # backslash escapes inside '..' and ".." (MySQL default)
    dquote_string: bool  # ".." is a string (MySQL) rather than an identifier
    dollar_quote: bool  # $tag$..$tag$ (PostgreSQL)
    nested_comments: bool  # /* /* */ */ nests (PostgreSQL)
    exec_comments: bool  # /*! code */ is code (MySQL)
    brackets: bool  # [name] is an identifier (SQLite, SQL Server)
    digit_names: bool  # 1abc is one identifier (MySQL); otherwise it is 1 then abc
    digit_separators: bool = False  # 1_000 is one number (PostgreSQL 16, SQLite 3.46)
    octal: bool = False  # 0o17 is one number (PostgreSQL 16)


_RULES: Final[dict[str, _Rules]] = {
    # generic: the union of the dialects, resolved the way that exposes more code.
    "generic": _Rules(True, False, True, True, True, False, True, True, True),
    "mysql": _Rules(True, True, True, True, False, False, True, False, True),
    "postgres": _Rules(False, False, False, False, True, True, False, False, False, True, True),
    "sqlite": _Rules(False, False, False, False, False, False, False, True, False, True),
}

_Tok = tuple[str, str, int, int]  # kind, normalised text (words upper-cased), start, end


# Each reserved word's kind, looked up once per word: where the sets overlap, the earlier
# set of `_WORD_KIND_ORDER` wins (written last).
_WORD_KIND_ORDER: Final = (
    (_LOGIC_WORDS, K_LOGIC), (_WORD_OPS, K_OP), (_CONSTANT_WORDS, K_NUMBER), (_UNIONS, K_UNION),
    (_STATEMENTS, K_STMT), (_CLAUSES, K_KEYWORD),
)
_WORD_KINDS: Final[dict[str, str]] = {
    word: kind for words, kind in reversed(_WORD_KIND_ORDER) for word in words
}


def _word_kind(up: str, is_call: bool) -> str:
    """Classify an upper-cased bare word."""
    kind = _WORD_KINDS.get(up)
    if is_call and (kind is None or up in _KEYWORD_FUNCTIONS):
        return K_FUNC
    return K_NAME if kind is None else kind


def _is_reserved(up: str) -> bool:
    return up in _WORD_KINDS


def _lit(s: str, start: int, end: int, closed: bool) -> str:
    """Normalised text of a quoted token: an unterminated one is marked with a leading NUL."""
    return s[start:end] if closed else "\x00" + s[start:end]


def _scan_quoted(s: str, i: int, q: str, backslash: bool) -> tuple[int, bool]:
    """Return (index after the closing quote, closed?) for a literal whose body starts at i.

    A doubled quote is an escaped quote in every dialect; a backslash escapes the next
    character when `backslash` is set.
    """
    n = len(s)
    j = s.find(q, i)
    while True:
        if 0 <= j < i:
            # the quote found last was escaped or part of a pair: look further (searching
            # again only then keeps a run of backslashes linear)
            j = s.find(q, i)
        if backslash:
            b = s.find("\\", i, j if j >= 0 else n)
            if b >= 0:
                i = b + 2
                continue
        if j < 0:
            return n, False
        if j + 1 < n and s[j + 1] == q:
            # a run of quotes: pairs are escaped quotes; an odd one out closes the literal
            k = j
            while True:
                chunk = s[k : k + 256]
                rest = chunk.lstrip(q)
                k += len(chunk) - len(rest)
                if rest or len(chunk) < 256:
                    break
            if (k - j) % 2:
                return k, True
            i = k
            continue
        return j + 1, True


_RADIX_DIGITS: Final = {"x": _HEX, "b": frozenset("01"), "o": frozenset("01234567")}


def _digits(s: str, i: int, digits: frozenset[str], separators: bool) -> int:
    """End of the run of `digits` from i; with `separators`, a "_" between two digits too."""
    n = len(s)
    while i < n:
        c = s[i]
        if c in digits:
            i += 1
        elif c == "_" and separators and i + 1 < n and s[i + 1] in digits and s[i - 1] in digits:
            i += 2
        else:
            break
    return i


_PUNCTUATION: Final = {"(": K_OPEN, ")": K_CLOSE, ",": K_COMMA, ";": K_SEMI, ".": K_DOT}


def _lex(s: str, rules: _Rules, pos: int = 0, first: _Tok | None = None) -> Iterator[_Tok]:
    """Yield (kind, text, start, end) tokens from s[pos:]; word texts are upper-cased.
    `first`, when given, is yielded before them (a token read by the caller)."""
    if first is not None:
        yield first
    n = len(s)
    i = pos
    in_exec = False  # inside a MySQL /*! ... */ executable comment
    ws = _WS
    wordc = _WORD_CHARS
    while i < n:
        c = s[i]
        if c in ws:
            i += 1
            continue
        start = i
        o = ord(c)
        # --- words ---------------------------------------------------------------------------
        if c in _WORD_START or o >= 0x80:
            j = i + 1
            while j < n:
                d = s[j]
                if d in wordc or (ord(d) >= 0x80 and d not in ws):
                    j += 1
                elif d == "." and j + 1 < n and (s[j + 1] in _WORD_START or s[j + 1] == "*"):
                    j += 1 if s[j + 1] != "*" else 2
                else:
                    break
            # string prefixes: N'..', X'..', B'..', E'..', _utf8'..', U&'..'
            if j < n and s[j] == "'" and ((j - i == 1 and c in "nNxXbBeE") or c == "_"):
                bs = rules.backslash or c in "eE"
                i, closed = _scan_quoted(s, j + 1, "'", bs)
                yield K_STRING, _lit(s, start, i, closed), start, i
                continue
            word = s[i:j]
            k = j
            while k < n and s[k] in ws:
                k += 1
            up = word.upper()
            i = j
            yield _word_kind(up, k < n and s[k] == "("), up, start, j
            continue
        # --- numbers ---------------------------------------------------------------------------
        if c in _DIGITS or (c == "." and i + 1 < n and s[i + 1] in _DIGITS):
            j = i + 1
            sep = rules.digit_separators
            if c == "0" and j < n and (s[j] in "xXbB" or (rules.octal and s[j] in "oO")):
                digits = _RADIX_DIGITS[s[j].lower()]
                k = _digits(s, j + 1, digits, sep)
                if k > j + 1:
                    j = k
            else:
                j = _digits(s, j, _DIGITS, sep)
                if c != "." and j < n and s[j] == ".":
                    j += 1
                j = _digits(s, j, _DIGITS, sep)
                if j < n and s[j] in "eE":
                    k = j + 1
                    if k < n and s[k] in "+-":
                        k += 1
                    if k < n and s[k] in _DIGITS:
                        j = _digits(s, k, _DIGITS, sep)
            plain = s[start:j].isdigit()
            if plain and rules.digit_names and j < n and (s[j] in wordc or ord(s[j]) >= 0x80):
                while j < n and (s[j] in wordc or ord(s[j]) >= 0x80):
                    j += 1
                i = j
                yield K_NAME, s[start:j].upper(), start, j
                continue
            i = j
            yield K_NUMBER, s[start:j], start, j
            continue
        # --- quotes ---------------------------------------------------------------------------
        if c == "'":
            i, closed = _scan_quoted(s, i + 1, "'", rules.backslash)
            yield K_STRING, _lit(s, start, i, closed), start, i
            continue
        if c == '"':
            i, closed = _scan_quoted(s, i + 1, '"', rules.backslash and rules.dquote_string)
            yield (K_STRING if rules.dquote_string else K_NAME), _lit(s, start, i, closed), start, i
            continue
        if c == "`":
            i, _ = _scan_quoted(s, i + 1, "`", False)
            yield K_NAME, s[start:i], start, i
            continue
        if c == "[" and rules.brackets:
            j = s.find("]", i + 1)
            i = n if j < 0 else j + 1
            yield K_NAME, s[start:i], start, i
            continue
        # --- comments -------------------------------------------------------------------------
        nxt = s[i + 1] if i + 1 < n else ""
        if c == "-" and nxt == "-":
            after = s[i + 2] if i + 2 < n else ""
            if not rules.dash_needs_space or after == "" or after in ws or ord(after) < 32:
                j = s.find("\n", i)
                i = n if j < 0 else j + 1
                yield K_COMMENT, s[start:i], start, i
                continue
        if c == "#" and rules.hash_comment:
            j = s.find("\n", i)
            i = n if j < 0 else j + 1
            yield K_COMMENT, s[start:i], start, i
            continue
        if c == "/" and nxt == "*":
            if rules.exec_comments and i + 2 < n and s[i + 2] == "!":
                # MySQL executable comment: skip "/*!" and an optional version number.
                j = i + 3
                k = j
                while k < n and k < j + 6 and s[k] in _DIGITS:
                    k += 1
                i = k
                in_exec = True
                yield K_INLINE, "/*!", start, i
                continue
            if rules.nested_comments:
                depth = 1
                j = i + 2
                # the next closing and opening marks, searched again only once passed, so
                # that deep nesting stays linear
                a = s.find("*/", j)
                b = s.find("/*", j)
                while depth and j < n:
                    if b >= 0 and (a < 0 or b + 2 <= a):
                        depth += 1
                        j = b + 2
                        b = s.find("/*", j)
                    elif a >= 0:
                        depth -= 1
                        j = a + 2
                        a = s.find("*/", j)
                        if 0 <= b < j:
                            b = s.find("/*", j)
                    else:
                        j = n
                        break
                closed = depth == 0
                i = j
            else:
                j = s.find("*/", i + 2)
                closed = j >= 0
                i = n if j < 0 else j + 2
            yield (K_INLINE if closed else K_COMMENT), s[start:i], start, i
            continue
        if c == "*" and nxt == "/" and in_exec:
            in_exec = False
            i += 2
            yield K_INLINE, "*/", start, i
            continue
        # --- dollar quotes, variables ------------------------------------------------------------
        if c == "$":
            if rules.dollar_quote:
                j = i + 1
                while j < n and (s[j] in wordc and s[j] != "$"):
                    j += 1
                if j < n and s[j] == "$" and (j == i + 1 or s[i + 1] not in _DIGITS):
                    tag = s[i : j + 1]
                    k = s.find(tag, j + 1)
                    i = n if k < 0 else k + len(tag)
                    yield K_STRING, _lit(s, start, i, k >= 0), start, i
                    continue
            if nxt in _DIGITS:
                j = i + 1
                while j < n and s[j] in _DIGITS:
                    j += 1
                i = j
                yield K_VAR, s[start:j], start, j
                continue
            i += 1
            yield K_OTHER, c, start, i
            continue
        if c == "@":
            j = i + 1
            if j < n and s[j] == "@":
                j += 1
            if j < n and s[j] in "'\"`":
                j, _ = _scan_quoted(s, j + 1, s[j], rules.backslash)
            else:
                while j < n and (s[j] in wordc or s[j] == "." or ord(s[j]) >= 0x80):
                    j += 1
            if j > i + 1 and s[j - 1] != "@":
                i = j
                yield K_VAR, s[start:j], start, j
                continue
        # --- punctuation and operators -----------------------------------------------------------
        punctuation = _PUNCTUATION.get(c)
        if punctuation is not None:
            i += 1
            yield punctuation, c, start, i
            continue
        if c in _OPERATOR_CHARS:
            three = s[i : i + 3]
            if three in _OPERATORS3:
                op = three
            elif three[:2] in _OPERATORS2:
                op = three[:2]
            else:
                op = c
            i += len(op)
            if op in ("||", "&&"):
                yield K_LOGIC, op, start, i
            else:
                yield K_OP, op, start, i
            continue
        if c == "\\" and nxt == "N" and rules.backslash:
            i += 2  # MySQL's \N is NULL
            yield K_NUMBER, "NULL", start, i
            continue
        i += 1
        yield K_OTHER, c, start, i


def tokenize(text: str, dialect: str = "generic") -> list[Token]:
    """Split `text` into SQL tokens following `dialect`'s lexical rules.

    Word tokens keep their original spelling here; white space is dropped.
    """
    if dialect not in _DIALECT_SET:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {DIALECTS}")
    out: list[Token] = []
    for kind, _norm, start, end in _lex(text, _RULES[dialect]):
        out.append(Token(kind, text[start:end], start))
    return out


# Applications send the same few statements again and again (placeholders, not values): the
# sink check and the tracing sanitizer read each one once. Bounded by entries and by length.
_SCAN_CACHE_SIZE: Final = 1024
_SCAN_CACHE_MAX_CHARS: Final = 4096


def scan(text: str, dialect: str = "generic") -> list[Lexeme]:
    """Like `tokenize`, with each token's end and whether its closing mark was found."""
    if dialect not in _DIALECT_SET:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {DIALECTS}")
    if len(text) <= _SCAN_CACHE_MAX_CHARS:
        return list(_scan_remembered(text, dialect))
    return _scan(text, dialect)


@functools.lru_cache(maxsize=_SCAN_CACHE_SIZE)
def _scan_remembered(text: str, dialect: str) -> tuple[Lexeme, ...]:
    return tuple(_scan(text, dialect))


def _scan(text: str, dialect: str) -> list[Lexeme]:
    out: list[Lexeme] = []
    rules = _RULES[dialect]
    new = tuple.__new__  # a NamedTuple's own constructor costs as much as lexing the token
    for kind, norm, start, end in _lex(text, rules):
        raw = text[start:end]
        closed = True
        if kind in _MAY_STAY_OPEN:
            if norm[0] == "\x00":
                closed = False  # quoted strings and double-quoted names mark it so
            elif kind == K_NAME and raw[0] == "`":
                closed = _scan_quoted(raw, 1, "`", False) == (len(raw), True)
            elif kind == K_NAME and raw[0] == "[":
                closed = len(raw) > 1 and raw[-1] == "]"
            elif kind == K_VAR and raw[0] == "@":
                q = 2 if raw[:2] == "@@" else 1  # MySQL's @'quoted name'
                if q < len(raw) and raw[q] in "'\"`":
                    bs = rules.backslash and raw[q] != "`"
                    closed = _scan_quoted(raw, q + 1, raw[q], bs) == (len(raw), True)
            elif kind == K_COMMENT and raw[:2] == "/*":
                closed = False  # a closed block comment is K_INLINE
        out.append(new(Lexeme, (kind, raw, start, end, closed)))
    return out


_MAY_STAY_OPEN: Final = frozenset({K_STRING, K_NAME, K_VAR, K_COMMENT})
# Kinds that end an operand: a "-" or "+" after one adds or subtracts.
_OPERAND_ENDS: Final = frozenset({K_NAME, K_NUMBER, K_STRING, K_VAR, K_CLOSE})


def is_numeral(tok: Lexeme) -> bool:
    """A number written in digits (TRUE, FALSE and NULL are K_NUMBER tokens too)."""
    return tok.kind == K_NUMBER and tok.text[0] in "0123456789."


def sign_binds(prev: Lexeme | None) -> bool:
    """Does a "-" or "+" after `prev` (None: at the start) sign the number that follows it,
    as in `= -5` or `(-5`, rather than subtract, as in `a - 5` or `arr[1] - 5`?"""
    if prev is None:
        return True
    return prev.kind not in _OPERAND_ENDS and not (prev.kind == K_OTHER and prev.text == "]")


# Names a driver, an ORM or OpenTelemetry's db.system give the database, by their first word
# with trailing digits dropped ("psycopg2" -> "psycopg", "postgresql+asyncpg" -> "postgresql").
_DIALECT_ALIASES: Final = {
    **dict.fromkeys(
        ("postgres", "postgresql", "psycopg", "pg", "asyncpg", "aiopg", "pgdb", "pygresql"),
        "postgres",
    ),
    **dict.fromkeys(
        ("mysql", "mariadb", "pymysql", "mysqldb", "mysqlclient", "aiomysql", "asyncmy",
         "mysqlconnector", "cymysql"),
        "mysql",
    ),
    **dict.fromkeys(("sqlite", "pysqlite", "aiosqlite", "sqlcipher"), "sqlite"),
}


@functools.lru_cache(maxsize=64)  # a process names a few databases, on every statement
def dialect_of(name: str) -> str:
    """The tokenizer dialect for a database, driver or module name; unknown -> "generic"."""
    key = name.strip().lower().lstrip("_")
    end = 0
    while end < len(key) and key[end].isascii() and key[end].isalnum():
        end += 1
    return _DIALECT_ALIASES.get(key[:end].rstrip("0123456789"), "generic")


# --- grammar ------------------------------------------------------------------------------------
#
# The judge is a state machine over the tokens of one placement of the value. It checks that
# the tokens alternate the way SQL expressions do (operand, operator, operand...), keeps a
# stack of open parentheses (grouping, call, subquery, CASE), knows the clauses of a SELECT,
# and collects evidence. A token that cannot follow ends the judgement: the placement is not
# an injection, unless the evidence gathered before it is already conclusive (attack tools
# often leave broken SQL after a UNION SELECT or a subquery).

# states
_OPERAND: Final = 0  # an operand must follow
_OPERATOR: Final = 1  # an operand was completed: operator, clause, ")" or "," may follow
_START: Final = 2  # nothing yet (bare placement): an operand, or the rest of an expression
_AFTER_SEMI: Final = 3  # after ";": a statement may follow
_ALIAS: Final = 4  # after AS: a name must follow
_AFTER_UNION: Final = 5  # after UNION: ALL, DISTINCT, SELECT or "(" must follow
_BY: Final = 6  # after GROUP / ORDER / PARTITION: BY must follow
_CALL_OPEN: Final = 7  # after a function name or IN / EXISTS: "(" must follow
_TOP: Final = 8  # after SELECT TOP: a number must follow
_STMT: Final = 9  # after a statement keyword: check its object
_TYPE: Final = 10  # after CAST(x AS / x:: : a type name must follow
_LOOSE: Final = 11  # a statement opened the value: anything goes until ";" or a comment

# frames
_F_TOP: Final = 0
_F_PAREN: Final = 1
_F_CALL: Final = 2
_F_SUBQ: Final = 3
_F_CASE: Final = 4

# clauses (where the current frame is)
_C_EXPR: Final = 0  # WHERE-like: a plain expression
_C_LIST: Final = 1  # select list: aliases allowed
_C_FROM: Final = 2  # FROM / JOIN: aliases allowed
_C_OTHER: Final = 3  # GROUP BY, ORDER BY, LIMIT, INTO, ...

_CALL_WORDS: Final = frozenset({"FROM", "FOR", "USING", "SEPARATOR", "ORDER", "IN"})
_POSTFIX_WORDS: Final = frozenset({"ASC", "DESC", "NOTNULL"})
_CLAUSE_TO: Final = {
    "FROM": _C_FROM, "JOIN": _C_FROM, "STRAIGHT_JOIN": _C_FROM, "WHERE": _C_EXPR,
    "HAVING": _C_EXPR, "ON": _C_EXPR, "RETURNING": _C_LIST,
}
# clause words that, right after a value, mean the value carried more query
_INJECTED_CLAUSES: Final = frozenset(
    {"GROUP", "ORDER", "HAVING", "LIMIT", "PROCEDURE", "INTO", "OFFSET"}
)
_JOIN_MODIFIERS: Final = frozenset({"LEFT", "RIGHT", "INNER", "OUTER", "CROSS", "NATURAL", "FULL"})
_UNARY_WORDS: Final = frozenset({"NOT", "BINARY", "DISTINCT", "ALL", "INTERVAL", "PRIOR"})
# statements that may follow an expression without ";" (SQL Server batches)
_BATCH_STATEMENTS: Final = frozenset(
    {"DECLARE", "EXEC", "EXECUTE", "WAITFOR", "SHUTDOWN", "DROP", "INSERT", "UPDATE", "DELETE",
     "CREATE", "ALTER", "TRUNCATE", "SET"}
)
_MATH_FUNCTIONS: Final = frozenset(
    {"sin", "cos", "tan", "atan", "pi", "exp", "log", "abs", "floor", "ceil", "ceiling", "round",
     "min", "max", "avg", "sum", "count", "rand", "sqrt", "power", "mod", "now", "if", "left",
     "right", "replace", "trim", "position", "format", "space", "field"}
)
_LITERALS: Final = frozenset({K_NUMBER, K_STRING})
# statements whose first words are enough even when they open the value
_SHAPED_STATEMENTS: Final = frozenset({"DECLARE", "WAITFOR", "EXEC", "EXECUTE", "SET"})
# dangerous functions that take exactly one argument
_UNARY_DANGER: Final = frozenset({"sleep", "pg_sleep", "pg_sleep_for", "load_file", "randomblob"})
# statements whose head (INSERT INTO, DELETE FROM) is also English ("how to insert into ...")
_DML_HEADS: Final = frozenset({"INSERT", "REPLACE", "DELETE"})


class _Evidence:
    """What one judgement collected."""

    __slots__ = (
        "arith",
        "call",
        "clause",
        "cmp",
        "cmp_const",
        "danger",
        "danger_first",
        "exec",
        "func",
        "info_func",
        "lit",
        "logic",
        "logic_lit",
        "logic_pred",
        "outfile",
        "select",
        "select_from",
        "select_list",
        "select_lit",
        "select_star",
        "select_strong",
        "stacked",
        "start_call",
        "start_select",
        "subq",
        "union",
        "var",
    )

    def __init__(self) -> None:
        self.arith = 0  # arithmetic / string / word operators
        self.clause = 0  # ORDER BY, GROUP BY, LIMIT... right after a value
        self.cmp = 0  # comparisons and predicates (=, LIKE, IS, IN...)
        self.cmp_const = 0  # comparisons of two constants (1=1, 'a'='a')
        self.danger = 0  # delay, file and network functions
        self.danger_first = 0  # ... of them, calls that opened a bare value
        self.exec = False  # a MySQL /*! */ executable comment
        self.func = 0  # calls of known SQL functions
        self.info_func = 0  # ... that are not plain arithmetic
        self.lit = 0  # non-empty literals (besides the string the value closed)
        self.logic = 0  # AND OR XOR && ||
        self.logic_lit = 0  # literals after a logic operator
        self.logic_pred = 0  # predicates, functions, subqueries after a logic operator
        self.select = 0  # SELECT keywords
        self.select_from = 0  # FROM clauses of those
        self.select_list = 0  # commas in select lists
        self.select_lit = 0  # literals in select lists
        self.select_strong = 0  # functions, variables, * in select lists
        self.select_star = 0  # ... of them, *
        self.stacked = False  # a second statement
        self.subq = 0  # parenthesised SELECTs
        self.union = False  # UNION [ALL] SELECT
        self.var = 0  # @x, @@x
        self.call = 0  # calls of any function
        self.outfile = False  # INTO OUTFILE / DUMPFILE
        self.start_call = False  # the value is a call of a known SQL function
        self.start_select = False  # the value opens with SELECT


def _conclusive(ev: _Evidence, number_start: bool, breakout: bool) -> bool:
    """Evidence that needs no more parsing (used when the rest does not parse)."""
    if ev.stacked or ev.danger or ev.outfile or ev.start_call:
        return True
    if ev.union and (
        ev.select_strong or ev.select_lit or ev.select_list or ev.select_from or breakout
    ):
        return True
    if breakout and ev.subq:
        return True
    if ev.logic and (ev.subq or ev.danger or (ev.logic_pred and ev.info_func)):
        return True
    if ev.select == 1 and ev.select_strong > ev.select_star and ev.start_select:
        return True  # "select(user(": a cut SELECT of functions or variables
    return bool(ev.select and ev.select_from and (ev.select_list or ev.select_strong))


_MAX_FP: Final = 12


def _judge(tokens: Iterator[_Tok], quote: str) -> str | None:
    """Run the grammar over one placement; return a fingerprint if it is an injection.

    `quote` is the quote the value was placed after ("" for a bare value); then the first
    token is the string that the value closed and what follows is outside any string.
    """
    ev = _Evidence()
    fp: list[str] = []
    frames: list[int] = [_F_TOP]
    clauses: list[int] = [_C_EXPR]
    breakout = quote != ""
    state = _OPERATOR if breakout else _START
    ntok = 0
    first_kind = ""
    prev_kind = ""
    prev_text = ""
    alias_used = False
    between = 0  # BETWEEN seen, its AND pending
    stmt = ""  # statement keyword being checked
    stmt_n = 0
    stmt_prev = ""
    stmt_semi = False  # that statement follows a ";"
    last_comment = ""  # text of a comment that is the last token so far
    direct_trunc = False  # a comment right after the closed string (and ")")
    closes_only = True  # only ")" since the closed string
    cmp_left_const = False
    cmp_pending = False
    in_select = False  # inside a select list / query of the current top statement
    last_open = False  # the last token is an unterminated literal
    last_quote = ""
    complete = True  # False when the loop stopped on a token that cannot follow
    union_pending = False  # UNION seen, its SELECT not yet
    danger_depth = 0  # frame depth of an open call of a dangerous function
    danger_plain = True  # ... whose arguments so far are all plain words
    danger_first = False  # ... that opened a bare value
    words_after_first = False  # plain words follow such a call
    danger_unary = False  # the dangerous function takes one argument
    danger_args = 0  # arguments of its call so far
    danger_closed = -1  # token number of the ")" that closed a counted dangerous call
    first_logic_cmp = -1  # comparisons seen before the first logic operator
    star_pending = False  # the last token is "*" as a select-list item
    order_cmp_only = True  # every comparison so far is <, >, <= or >=
    start_depth = 0  # frame depth of the call that opened the value
    start_args = 0  # tokens inside that call
    start_plain = True  # ... all of them plain names

    for kind, text, _start, _end in tokens:
        if kind == K_INLINE:
            if text == "/*!":
                ev.exec = True
            continue
        if kind == K_COMMENT:
            last_comment = text
            if breakout and (ntok == 1 or (prev_kind == K_CLOSE and closes_only)):
                direct_trunc = _real_comment(text)
            if len(fp) < _MAX_FP:
                fp.append(kind)
            continue
        last_comment = ""
        if len(fp) < _MAX_FP:
            fp.append(kind)
        ntok += 1
        if ntok == 1:
            if breakout:
                prev_kind, prev_text = K_STRING, text
                continue
            first_kind = kind
            if kind == K_OP and text in ("-", "+"):
                first_kind = "-"
            elif kind == K_OPEN:
                first_kind = "("
        elif first_kind == "-" and ntok == 2:
            first_kind = K_NUMBER if kind == K_NUMBER else "?"
        if kind != K_CLOSE:
            closes_only = False
            direct_trunc = False
        last_open = False
        if (
            (ev.danger_first or start_depth < 0)
            and not danger_depth
            and kind == K_NAME
            and state not in (_TYPE, _ALIAS)
        ):
            words_after_first = True
        if star_pending:
            star_pending = False
            if kind in (K_NAME, K_STRING, K_NUMBER):
                # "select * nothing": a star followed by a word is prose, not a select list
                ev.select_strong -= 1
                ev.select_star -= 1
                complete = False
                break

        if start_depth > 0 and len(frames) >= start_depth and kind != K_OPEN:
            start_args += 1
            start_plain = start_plain and (kind in (K_NAME, K_CLOSE))
        if danger_depth and len(frames) >= danger_depth and kind not in (K_OPEN, K_CLOSE):
            danger_plain = danger_plain and kind == K_NAME
            if kind == K_COMMA and len(frames) == danger_depth:
                danger_args += 1
        if kind == K_NAME and danger_closed == ntok - 1 and not in_select:
            # "sleep(0) yields the thread": a word right after the call is prose
            ev.danger = max(0, ev.danger - 1)
        if state == _LOOSE:
            if kind == K_SEMI:
                ev.stacked = True
                return "".join(fp)
            continue

        # ---- a statement keyword: check its object ----------------------------------------
        if state == _STMT:
            stmt_n += 1
            verdict = _statement(stmt, stmt_n, kind, text, stmt_prev)
            if verdict is None and stmt_semi and stmt_n == 1 and stmt in _DML_HEADS:
                verdict = True  # "; DELETE FROM", "; INSERT INTO": after ";" the head is enough
            if verdict is True:
                if first_kind == "E" and ntok - stmt_n == 1 and stmt not in _SHAPED_STATEMENTS:
                    # "drop table cloth": a statement opening the value needs a ";" or a
                    # comment after it to count
                    state = _LOOSE
                    continue
                ev.stacked = True
                return "".join(fp)
            if verdict is False:
                return None
            stmt_prev = kind + text
            prev_kind, prev_text = kind, text
            continue
        if state == _AFTER_SEMI:
            if kind == K_SEMI:
                continue
            if text == "IF" or text == "BEGIN":
                # T-SQL "; IF (cond) stmt", "; BEGIN stmt": judge what follows
                state = _START
                frames = [_F_TOP]
                clauses = [_C_EXPR]
                if kind != K_FUNC:
                    prev_kind, prev_text = kind, text
                    continue
            elif kind == K_STMT and text != "SELECT":
                state = _STMT
                stmt, stmt_n, stmt_prev = text, 0, kind + text
                stmt_semi = True
                prev_kind, prev_text = kind, text
                continue
            elif kind == K_STMT and breakout:
                ev.stacked = True  # x'; SELECT ...
                return "".join(fp)
            elif kind not in (K_STMT, K_OPEN, K_FUNC):
                return None
            else:
                # "; SELECT ...", "; (SELECT ...)": parse the statement; it counts as stacked
                # once it shows a select list that is not plain words.
                state = _START
                frames = [_F_TOP]
                clauses = [_C_EXPR]
                first_kind = "E"

        top = frames[-1]
        if kind in (K_STRING, K_NUMBER, K_VAR, K_NAME):
            if state in (_OPERAND, _START, _TOP):
                empty = kind == K_STRING and _empty_literal(text)
                if kind == K_VAR:
                    ev.var += 1
                    if in_select:
                        ev.select_strong += 1
                    if ev.logic:
                        ev.logic_pred += 1
                elif kind != K_NAME and not empty:
                    ev.lit += 1
                    if ev.logic and (kind == K_NUMBER or " " not in text):
                        ev.logic_lit += 1
                    if in_select:
                        ev.select_lit += 1
                if cmp_pending:
                    cmp_pending = False
                    if cmp_left_const and kind in _LITERALS:
                        ev.cmp_const += 1
                if kind == K_STRING and text[:1] == "\x00":
                    last_open = True
                    last_quote = text[1:2]
                state = _OPERAND if state == _TOP else _OPERATOR
                alias_used = False
            elif state in (_ALIAS, _TYPE):
                state = _OPERATOR
                alias_used = True
            elif (
                state == _OPERATOR
                and not alias_used
                and (kind in (K_NAME, K_STRING))
                and (top in (_F_SUBQ, _F_TOP))
                and (clauses[-1] == _C_LIST or clauses[-1] == _C_FROM)
            ):
                alias_used = True
            else:
                complete = False
                break
        elif kind == K_FUNC:
            if state == _TYPE:
                state = _CALL_OPEN
                frames.append(_F_CALL)
                clauses.append(_C_EXPR)
                prev_kind, prev_text = kind, text
                continue
            if state not in (_OPERAND, _START):
                complete = False
                break
            low = text.lower()
            ev.call += 1
            if low in _SQL_FUNCTIONS:
                ev.func += 1
                if low not in _MATH_FUNCTIONS:
                    ev.info_func += 1
                    if ntok == 1:
                        start_depth = len(frames) + 1
                if in_select:
                    ev.select_strong += 1
                if ev.logic:
                    ev.logic_pred += 1
                if low in _DANGER_FUNCTIONS and not danger_depth:
                    danger_depth = len(frames) + 1
                    danger_plain = True
                    danger_unary = low in _UNARY_DANGER
                    danger_args = 1
                    danger_first = ntok == 1 and not breakout
            if cmp_pending:
                cmp_pending = False
                if cmp_left_const:
                    ev.cmp_const += 1
            state = _CALL_OPEN
            frames.append(_F_CALL)
            clauses.append(_C_EXPR)
        elif kind == K_OPEN:
            if state == _CALL_OPEN:
                state = _OPERAND
            elif state in (_OPERAND, _START, _AFTER_UNION):
                frames.append(_F_PAREN)
                clauses.append(_C_EXPR)
                state = _OPERAND
            else:
                complete = False
                break
        elif kind == K_CLOSE:
            if state == _OPERAND and prev_kind == K_OPEN and top == _F_CALL:
                pass
            elif state != _OPERATOR and not (state == _START and ntok == 1):
                complete = False
                break
            if danger_depth == len(frames):
                # "sleep(5)", "benchmark(9e6, md5(1))"; a call of plain words is prose:
                # "sleep (disambiguation)"
                if not (danger_plain and prev_kind != K_OPEN) and not (
                    danger_unary and danger_args > 1
                ):
                    # ("sleep (film, 2010)": SLEEP takes one argument)
                    ev.danger += 1
                    danger_closed = ntok
                    if danger_first:
                        ev.danger_first += 1
                danger_depth = 0
            if start_depth == len(frames):
                start_depth = -1  # closed
            if len(frames) > 1:
                if top == _F_CASE:
                    complete = False
                    break
                frames.pop()
                clauses.pop()
            elif in_select and first_kind == "E":
                complete = False  # "SELECT ... )": nothing opened that parenthesis
                break
            state = _OPERATOR
            alias_used = False
            if cmp_pending:
                cmp_pending = False
                if cmp_left_const:
                    ev.cmp_const += 1
        elif kind == K_COMMA:
            if state != _OPERATOR:
                complete = False
                break
            if in_select and clauses[-1] == _C_LIST:
                ev.select_list += 1
            state = _OPERAND
            alias_used = False
        elif kind == K_SEMI:
            if state not in (_OPERATOR, _START) or len(frames) > 1:
                complete = False
                break
            if first_kind == "E" and ev.select and _select_shown(ev):
                ev.stacked = True
                return "".join(fp)
            state = _AFTER_SEMI
            in_select = False
        elif kind == K_LOGIC:
            if state in (_OPERATOR, _START):
                if between and text == "AND":
                    between -= 1
                else:
                    if not ev.logic and top == _F_TOP:
                        first_logic_cmp = ev.cmp if order_cmp_only else 0
                    ev.logic += 1
                state = _OPERAND
            else:
                complete = False
                break
        elif kind == K_OP:
            if state == _AFTER_UNION and text in ("ALL", "DISTINCT"):
                pass
            elif state == _OPERATOR or (state == _START and text not in _UNARY_SYMBOLS
                                        and text not in _UNARY_WORDS):
                if text in _WORD_OPS:
                    if text in _POSTFIX_WORDS or text == "NOT" or text == "SOUNDS":
                        # NOT LIKE, IS NOT, SOUNDS LIKE: the operator follows
                        if text == "NOTNULL":
                            ev.cmp += 1
                    elif text == "AS":
                        state = _TYPE if top == _F_CALL else _ALIAS
                    elif text == "IN":
                        ev.cmp += 1
                        if ev.logic:
                            ev.logic_pred += 1
                        state = _CALL_OPEN
                        frames.append(_F_PAREN)
                        clauses.append(_C_EXPR)
                    elif text == "WHEN" or text == "THEN" or text == "ELSE":
                        if top != _F_CASE:
                            complete = False
                            break
                        state = _OPERAND
                    elif text == "END":
                        if top != _F_CASE:
                            complete = False
                            break
                        frames.pop()
                        clauses.pop()
                    elif text in ("CASE", "EXISTS", "ANY", "SOME", "TO"):
                        # TO is an operator only in SIMILAR TO: "select * to select all"
                        complete = False
                        break
                    elif text in _UNARY_WORDS:
                        if text == "BINARY" and state == _START:
                            state = _OPERAND
                        else:
                            complete = False
                            break
                    else:
                        if text in _PREDICATE_OPS:
                            ev.cmp += 1
                            if ev.logic:
                                ev.logic_pred += 1
                            if text == "BETWEEN":
                                between += 1
                        else:
                            ev.arith += 1
                        state = _OPERAND
                elif text == "::":
                    state = _TYPE
                else:
                    if text in _COMPARISONS:
                        ev.cmp += 1
                        order_cmp_only = order_cmp_only and text in ("<", ">", "<=", ">=")
                        cmp_pending = True
                        cmp_left_const = prev_kind in (K_NUMBER, K_STRING, K_CLOSE)
                        if ev.logic:
                            ev.logic_pred += 1
                    else:
                        ev.arith += 1
                    state = _OPERAND
            elif state in (_OPERAND, _START):
                if text in _UNARY_SYMBOLS or text in _UNARY_WORDS:
                    state = _OPERAND
                elif text == "*":
                    if in_select:
                        ev.select_strong += 1
                        ev.select_star += 1
                        star_pending = True
                    state = _OPERATOR
                    alias_used = True  # "SELECT * x" has no alias: x is not SQL
                elif text == "CASE":
                    frames.append(_F_CASE)
                    clauses.append(_C_EXPR)
                    state = _OPERAND
                elif (text == "WHEN" and prev_text == "CASE") or (
                    text == "TO" and prev_text == "SIMILAR"
                ):
                    state = _OPERAND
                elif text in ("EXISTS", "ANY", "SOME"):
                    state = _CALL_OPEN
                    frames.append(_F_PAREN)
                    clauses.append(_C_EXPR)
                else:
                    complete = False
                    break
            elif state == _TYPE:
                state = _OPERATOR  # CAST(x AS BINARY)
            else:
                complete = False
                break
        elif kind == K_STMT:
            if text == "SELECT" and (
                state in (_START, _AFTER_UNION)
                or (state == _OPERAND and prev_kind == K_OPEN and top == _F_PAREN)
            ):
                if union_pending:
                    ev.union = True
                    union_pending = False
                if top == _F_PAREN:
                    frames[-1] = _F_SUBQ
                    ev.subq += 1
                    if ev.logic:
                        ev.logic_pred += 1
                if state == _START and ntok == 1:
                    first_kind = "E"
                    ev.start_select = True
                ev.select += 1
                clauses[-1] = _C_LIST
                in_select = True
                state = _OPERAND
            elif text != "SELECT" and (
                (state == _START and ntok == 1)
                or (state == _OPERATOR and top == _F_TOP and text in _BATCH_STATEMENTS)
            ):
                state = _STMT
                stmt, stmt_n, stmt_prev = text, 0, kind + text
                stmt_semi = False
                if ntok == 1:
                    first_kind = "E"
            elif (text == "UPDATE" and prev_text == "FOR" and state == _OPERAND) or state == _TYPE:
                state = _OPERATOR
            else:
                complete = False
                break
        elif kind == K_UNION:
            if state in (_OPERATOR, _START):
                state = _AFTER_UNION
                union_pending = True
            else:
                complete = False
                break
        elif kind == K_KEYWORD:
            if text == "BY":
                if state != _BY:
                    complete = False
                    break
                state = _OPERAND
            elif state == _TYPE:
                state = _OPERATOR
            elif text == "TOP" and in_select and prev_text in ("SELECT", "DISTINCT"):
                state = _TOP
            elif top == _F_CALL and text in _CALL_WORDS and state == _OPERATOR:
                state = _BY if text == "ORDER" else _OPERAND
            elif state == _OPERAND and text in ("OUTFILE", "DUMPFILE") and prev_text == "INTO":
                ev.outfile = True
            elif state == _OPERATOR or (state == _START and text in _INJECTED_CLAUSES):
                if text in _JOIN_MODIFIERS:
                    if clauses[-1] != _C_FROM:
                        complete = False
                        break
                    alias_used = True
                elif text == "FOR":
                    state = _OPERAND  # FOR UPDATE
                else:
                    if top in (_F_CALL, _F_CASE):
                        complete = False
                        break
                    if text in _INJECTED_CLAUSES and top == _F_TOP and (
                        prev_kind in (K_NUMBER, K_STRING, K_CLOSE) or breakout
                    ):
                        ev.clause += 1
                    if text == "FROM" and in_select:
                        ev.select_from += 1
                    clauses[-1] = _CLAUSE_TO.get(text, _C_OTHER)
                    state = _BY if text in ("GROUP", "ORDER", "PARTITION") else _OPERAND
                    alias_used = False
            else:
                complete = False
                break
        else:  # K_DOT, K_OTHER
            complete = False
            break
        prev_kind, prev_text = kind, text

    # ---- verdict ---------------------------------------------------------------------------
    if ntok == 0:
        return None
    number_start = first_kind == K_NUMBER
    if complete and danger_depth and len(frames) >= danger_depth and not (
        danger_plain and prev_kind != K_OPEN
    ):
        ev.danger += 1  # the value ends inside "sleep(" / "benchmark(": a cut payload
    if (not complete or words_after_first) and ev.danger == ev.danger_first:
        # a delay call that opened the value and is followed by plain words or by what SQL
        # cannot continue with is prose or code from another language: "sleep(1) in python",
        # "sleep(2) is called between retries"
        ev.danger = 0
    if ntok > 0 and start_depth != 0 and (start_depth < 0 or len(frames) >= start_depth):
        # the value is a call of a known SQL function: "version()", "char(58)", "concat_ws("
        # ("user(s)", a call of plain words, is prose)
        ev.start_call = (
            complete
            and not (start_plain and start_args > 1)
            and not words_after_first
            and not (danger_first and danger_unary and danger_args > 1)  # "sleep (film, 2010)"
        )
        if start_depth < 0 and state != _OPERATOR:
            ev.start_call = False
    if _conclusive(ev, number_start, breakout):
        return "".join(fp)
    if not complete:
        return None
    if state == _STMT:
        end_kind = K_COMMENT if _real_comment(last_comment) else ""
        if _statement(stmt, stmt_n + 1, end_kind, "", stmt_prev) is True and (
            first_kind != "E" or (stmt in _SHAPED_STATEMENTS and stmt_n > 0)
        ):
            return "".join(fp)
        return None
    if first_kind == K_LOGIC and (ev.cmp or ev.subq) and (ev.lit or ev.call or ev.subq):
        # the value is the rest of a condition: "AND 6698=(", "OR name = \"", "or 1=1"
        return "".join(fp)
    if state == _AFTER_UNION and number_start:
        return "".join(fp)  # "-1 union": a cut UNION payload
    if state not in (_OPERATOR, _AFTER_SEMI):
        return None
    if ev.select and _select_shown(ev) and (first_kind == "E" or ev.subq):
        return "".join(fp)
    if breakout:
        if direct_trunc:
            return "".join(fp)  # x'-- : the rest of the query commented out
        if ev.cmp_const or ev.info_func or ev.subq or ev.var or ev.clause or ev.exec:
            return "".join(fp)
        # how the query goes on after the value: its closing quote must close a literal the
        # value opened, or a comment or ";" must take it away
        closed_well = (
            (last_open and last_quote == quote) or last_comment != "" or prev_kind == K_SEMI
        )
        if not closed_well:
            return None
        if quote == "'":
            if ev.logic_lit or (ev.lit and (ev.arith or ev.cmp)) or ev.func:
                return "".join(fp)
            if ev.logic and (ev.cmp or ev.call):
                return "".join(fp)
        elif ev.logic and ((ev.logic_lit and ev.cmp) or (ev.call and quote == '"')):
            return "".join(fp)
        return None
    if ev.exec and (ev.logic or ev.cmp or ev.func):
        return "".join(fp)
    if number_start or first_kind == "(":
        if ev.clause and number_start:
            return "".join(fp)
        # "1 and 2>1" continues a numeric condition; "1 < 2 and 3 > 2", an inequality
        # before the first AND/OR, is arithmetic prose unless it calls SQL functions
        math = number_start and first_logic_cmp > 0 and not (ev.info_func or ev.var)
        if ev.logic and (ev.logic_pred or (ev.logic_lit and last_comment)) and not math:
            return "".join(fp)
        if number_start and ev.info_func:
            return "".join(fp)
        return None
    if ev.logic and (ev.cmp_const or (ev.logic_pred and (ev.info_func or ev.subq or ev.var))):
        return "".join(fp)
    return None


def _select_shown(ev: _Evidence) -> bool:
    """A SELECT statement that shows more than plain words ("select a bike" does not)."""
    return bool(
        ev.select_strong
        or (ev.select_from and (ev.select_list or ev.select_lit))
        or (ev.select_list and ev.select_lit)
    )


def _real_comment(text: str) -> bool:
    """A comment an attacker would use to cut the query (not "#2" or "--word")."""
    if text[:2] == "/*":
        return True
    if text[:2] == "--":
        return len(text) == 2 or text[2] in " \t\r\n-"
    return False


def _empty_literal(text: str) -> bool:
    """'' or an unterminated ' at the very end: a literal that carries nothing."""
    body = text.lstrip("\x00")
    return body.strip("'\"") == ""


def _statement(stmt: str, n: int, kind: str, text: str, prev: str) -> bool | None:
    """Is the n-th token after a statement keyword the shape of a real statement?

    True: yes; False: no; None: need the next token. An empty kind means the value ended;
    `prev` is the previous token's kind and text.
    """
    if n == 1:
        if stmt in ("DROP", "CREATE", "ALTER"):
            return text in _OBJECTS
        if stmt == "TRUNCATE":
            return text == "TABLE" or (None if kind == K_NAME else False)
        if stmt in ("INSERT", "REPLACE", "DELETE"):
            # INSERT INTO t (..) / VALUES / SELECT, DELETE FROM t WHERE / ; / --: the words
            # alone are prose ("how to write INSERT INTO with multiple rows", "delete from list")
            return None if text == ("FROM" if stmt == "DELETE" else "INTO") else False
        if stmt in ("EXEC", "EXECUTE"):
            if kind in (K_FUNC, K_VAR, K_STRING):
                return True
            return None if kind in (K_NAME, K_OPEN) else False
        if stmt == "DECLARE":
            return kind == K_VAR
        if stmt == "SET":
            if kind == K_VAR:
                return True
            return None if kind == K_NAME else False
        if stmt == "SHUTDOWN":
            return kind in ("", K_SEMI, K_COMMENT) or text == "WITH"
        if stmt == "WAITFOR":
            return text in ("DELAY", "TIME")
        if stmt in ("GRANT", "REVOKE"):
            return kind == K_STMT or text in ("ALL", "USAGE")
        if stmt == "CALL":
            return kind == K_FUNC
        if stmt == "LOAD":
            return text in ("DATA", "XML")
        if stmt == "UPDATE":
            return None if kind == K_NAME else False
        if stmt == "COPY":
            return None if kind == K_NAME else False
        return False
    if n == 2:
        if stmt == "UPDATE":
            return text == "SET"
        if stmt == "SET":
            return text in ("=", ":=")
        if stmt in ("EXEC", "EXECUTE", "TRUNCATE"):
            # EXEC xp_cmdshell 'dir', EXEC sp_x; TRUNCATE users ("exec summary" is prose)
            if prev == K_OPEN + "(":
                return kind in (K_STRING, K_VAR)  # EXEC(@s)
            if kind in ("", K_SEMI, K_COMMENT, K_DOT):
                return stmt == "TRUNCATE" or "_" in prev or "." in prev or kind == K_DOT
            return kind in (K_STRING, K_VAR, K_NUMBER)
        if stmt == "COPY":
            return text in ("FROM", "TO") or kind == K_OPEN
        if stmt in ("INSERT", "REPLACE", "DELETE"):
            if kind == K_FUNC:
                return stmt != "DELETE"  # INSERT INTO users(
            return None if kind == K_NAME else False
    if n == 3 and stmt in ("INSERT", "REPLACE", "DELETE"):
        # what follows the table name
        if kind in (K_SEMI, K_COMMENT, K_DOT):
            return True
        if stmt == "DELETE":
            return text in ("WHERE", "LIMIT", "USING", "ORDER", "RETURNING")
        return kind == K_OPEN or text in ("VALUES", "SELECT", "SET", "DEFAULT")
    return False


_GENERIC: Final = _RULES["generic"]
_NO_BACKSLASH: Final = _GENERIC._replace(backslash=False)


def _placements(value: str) -> Iterator[tuple[Iterator[_Tok], str]]:
    """The ways the value can sit in a query: bare, after ', after " and after `.

    After a quote, the value first continues the string; if the string closes, the rest is
    SQL. Both backslash conventions are tried when the value contains a backslash. The first
    placement that flags the value ends the search, so the order decides only the evidence
    shown, and the time taken: a value with an odd count of some quote cannot be whole
    SQL as it stands, it is most often made to close that quote, and is tried that way first.
    """
    quoted = [q for q in ("'", '"', "`") if q in value]
    breaks_out = any(value.count(q) % 2 for q in quoted)
    if not breaks_out and _bare_may_parse(value):
        yield _lex(value, _GENERIC), ""
    has_bs = "\\" in value
    for q in quoted:
        for bs in (True, False) if has_bs else (False,):
            end, closed = _scan_quoted(value, 0, q, bs and q != "`")
            if closed and _quote_may_break(value, end):
                yield _after_quote(value, end, _GENERIC if bs else _NO_BACKSLASH), q
    if breaks_out and _bare_may_parse(value):
        yield _lex(value, _GENERIC), ""


def _after_quote(value: str, end: int, rules: _Rules) -> Iterator[_Tok]:
    """The string the value closed at `end`, then SQL (one generator: each level costs)."""
    return _lex(value, rules, end, (K_STRING, value[:end], 0, end))


def _is_sqli_slow(value: str) -> str | None:
    for tokens, quote in _placements(value):
        found = _judge(tokens, quote)
        if found is not None:
            return found
    return None


# --- fast path ----------------------------------------------------------------------------------
#
# Most inspected values are words, numbers, ids, names, e-mails, header values. Without a quote,
# the grammar can only flag a value that contains one of a few words (logic operators, clause
# and statement keywords, SQL function names), "&&", "||" or a MySQL executable comment. The
# fast path checks that with C-speed string methods: upper-case, turn every character that is
# not an ASCII letter or "_" into a space, split, and look the words up in a set. The same
# upper-casing as the lexer keeps the two consistent.

_SPLIT_TABLE: Final = bytes(c if (65 <= c <= 90 or c == 95) else 32 for c in range(256))
_TRIGGER_WORDS: Final = frozenset(
    w.encode()
    for w in (
        {
            "AND", "OR", "XOR", "UNION", "INTERSECT", "EXCEPT", "MINUS", "SELECT", "GROUP",
            "ORDER", "HAVING", "LIMIT", "PROCEDURE", "INTO", "OFFSET", "IF", "BEGIN",
        }
        | _STATEMENTS
    )
)
_FUNC_CHARS: Final = _WORD_CHARS | {"."}
_FUNC_WORDS: Final = frozenset(
    w.encode() for name in _SQL_FUNCTIONS for w in name.upper().translate(_SPLIT_TABLE).split()
)


def _may_be_sqli(value: str) -> bool:
    """Cheap necessary condition for `is_sqli` (see above)."""
    if "'" in value or '"' in value or "`" in value:
        return True
    if "&&" in value or "||" in value or "/*!" in value:
        return True
    # Only ASCII letters and "_" stay word characters; anything else (including non-Latin-1
    # characters, encoded as "?") separates words, which can only find more words.
    words = value.upper().encode("latin-1", "replace").translate(_SPLIT_TABLE).split()
    if not _TRIGGER_WORDS.isdisjoint(words):
        return True
    # A known SQL function matters only when called: look at the word before each "(".
    if _FUNC_WORDS.isdisjoint(words):
        return False
    i = value.find("(")
    while i >= 0:
        j = i
        while j > 0 and value[j - 1] in _WS:
            j -= 1
        k = j
        while k > 0 and value[k - 1] in _FUNC_CHARS:
            k -= 1
        if k < j and value[k:j].lower() in _SQL_FUNCTIONS:
            return True
        i = value.find("(", i + 1)
    return False


# Words that can follow an operand (such as a closed string literal) in valid SQL.
_AFTER_OPERAND_WORDS: Final = (
    _LOGIC_WORDS | _WORD_OPS | _UNIONS | _CLAUSES | _STATEMENTS | {"IF", "BEGIN", "DIV", "MOD"}
)


def _bare_may_parse(value: str) -> bool:
    """Can the value parse as bare SQL? Prose fails at once: "John Smith", "it's", "I would"."""
    n = len(value)
    i = 0
    while i < n and value[i] in _WS:
        i += 1
    if i >= n or value[i] not in _WORD_START:
        return True
    j = i + 1
    while j < n and value[j] in _WORD_CHARS:
        j += 1
    if j < n and (value[j] == "." or ord(value[j]) >= 0x80):
        return True  # a dotted or non-ASCII name: leave it to the lexer
    if _is_reserved(value[i:j].upper()):
        return True
    if j < n and value[j] in "'\"`" and (
        (j - i == 1 and value[i] in "nNxXbBeEuU") or value[i] == "_"
    ):
        return True  # N'..', _utf8'..'
    # the value opens with a plain name: an operand; what follows must be an operator
    return _operand_may_continue(value, j)


def _operand_may_continue(value: str, end: int) -> bool:
    """Can what follows an operand ending at `end` continue a query?"""
    n = len(value)
    i = end
    while i < n and value[i] in _WS:
        i += 1
    if i >= n:
        return False
    c = value[i]
    if c in "'\"`[" or c in _DIGITS:
        return False
    if c in _WORD_START:
        j = i + 1
        while j < n and value[j] in _WORD_CHARS:
            j += 1
        if j < n and ord(value[j]) >= 0x80:
            return False
        return value[i:j].upper() in _AFTER_OPERAND_WORDS
    return ord(c) < 0x80


def _quote_may_break(value: str, end: int) -> bool:
    """Can what follows the string closed at `end` continue a query? ("O'Brien" cannot.)"""
    n = len(value)
    i = end
    while i < n and value[i] in _WS:
        i += 1
    if i >= n:
        return False
    c = value[i]
    if c in "'\"`([" or c in _DIGITS:
        return False
    if c in _WORD_START or ord(c) >= 0x80:
        j = i + 1
        while j < n and value[j] in _WORD_CHARS:
            j += 1
        return value[i:j].upper() in _AFTER_OPERAND_WORDS
    return True


def is_sqli(value: str) -> str | None:
    """Return a short evidence string (a token fingerprint) when `value` looks like a SQL
    injection payload, else None."""
    if value.isalnum() or not _may_be_sqli(value):
        return None
    return _is_sqli_slow(value)


# --- trigger for the engine ------------------------------------------------------------------
# A regular expression that matches every single-line ASCII value `_may_be_sqli` accepts (the
# engine runs it inside its shared Hyperscan scan and calls `is_sqli` only where it matched).
# It is built from the same tables as the fast path, so the two cannot drift apart.


def _regex_literal(word: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else f"\\x{ord(c):02x}" for c in word)


def _trigger_parts() -> tuple[str, str]:
    """(what triggers wherever it stands, a keyword at the start of a word): a keyword must
    also end its word, at a non-letter or at the end of the value."""
    words = "|".join(sorted(w.decode().lower() for w in _TRIGGER_WORDS))
    functions = "|".join(_regex_literal(f) for f in sorted(_SQL_FUNCTIONS))
    anywhere = (
        r"['\"`]|&&|\|\||/\*!"
        rf"|(?:^|[^a-zA-Z0-9_$.])(?:{functions})[ \t\n\r\v\f\x00]*\("
    )
    return anywhere, rf"(?:^|[^a-zA-Z_])(?:{words})"


_ANYWHERE, _KEYWORD = _trigger_parts()
TRIGGER: Final = rf"{_ANYWHERE}|{_KEYWORD}(?:[^a-zA-Z_]|$)"
# The same test in the line form the engine scans (see bastion.waf.operators.Detector): from a
# hit to the end of its line, where a keyword may also end.
TRIGGER_LINE: Final = rf"(?:{_ANYWHERE})[^\n]*$|{_KEYWORD}(?:[^a-zA-Z_\n][^\n]*)?$"
