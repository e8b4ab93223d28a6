"""Tests for the SQL injection check at the sink.

Statements are built the way applications build them: string formatting, with or without the
escaping a careful application applies. `injected(statement, value)` must be False for every
value a careful application placed, and True for every attack a careless one let through.
"""

from __future__ import annotations

import pytest

from bastion.detect.sqlinject import dialect_of, injected

DIALECTS = ("sqlite", "postgresql", "mysql")


# --- how applications write values ----------------------------------------------------------


def quote(value: str) -> str:
    """Standard SQL quoting: the quote doubled (sqlite3, psycopg's standard strings)."""
    return "'" + value.replace("'", "''") + "'"


def quote_mysql(value: str) -> str:
    """MySQLdb / PyMySQL escape_string: backslash escapes."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    return "'" + escaped + "'"


def quote_for(dialect: str, value: str) -> str:
    return quote_mysql(value) if dialect == "mysql" else quote(value)


def ident(dialect: str, name: str) -> str:
    return f"`{name}`" if dialect == "mysql" else '"' + name.replace('"', '""') + '"'


# --- legitimate statements ------------------------------------------------------------------

TEXT_VALUES = [
    "O'Brien", "D'Angelo-Smith", "it's", "rock'n'roll", "l'été", "Ma'am", "'quoted'",
    "trailing'", "''", "a''b", "Zoë", "日本語のテキスト", "Привет мир", "emoji 😀 text",
    "bob@example.com", "2024-01-31", '{"a": 1, "b": [2, 3]}', "C:\\Users\\bob",
    "back\\slash\\", "SELECT * FROM users", "1 OR 1=1", "'; DROP TABLE users; --",
    "Robert'); DROP TABLE Students;--", "admin'--", "\\' OR 1=1 -- ", "x\" OR \"1\"=\"1",
    "/* comment */", "$$ dollar $$", "50% off_today",
]
SEARCH_VALUES = ["50%", "snake_case", "100%_off", "a%b_c", "__init__", "straße", "don't"]
NUMBER_VALUES = ["42", "-17", "3.14", "1e10", "0", "007", "123456789012", "-0.5"]
ID_LISTS = ["1,2,3", "4,8,15,16,23,42", "10, 20, 30", "7", "-1,0,1"]
TABLES = ["orders", "order_items", "users", "public.accounts", "t2024"]
COLUMNS = ["name", "price", "created_at", "p.price", "Order Total"]


def _legit() -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    for dialect in DIALECTS:
        for value in TEXT_VALUES:
            cases.append((dialect,
                          f"SELECT * FROM customers WHERE name = {quote_for(dialect, value)}",
                          value))
        for value in SEARCH_VALUES:
            like = quote_for(dialect, f"%{value}%")
            cases.append((dialect, f"SELECT id FROM products WHERE title LIKE {like} LIMIT 20",
                          value))
        for value in NUMBER_VALUES:
            number = float(value) if "." in value or "e" in value else int(value)
            assert str(number) == value or value in ("007", "1e10")  # the app's own check
            cases.append((dialect, f"SELECT * FROM orders WHERE id = {value} LIMIT 1", value))
        for value in ID_LISTS:
            ids = ",".join(str(int(x)) for x in value.split(","))
            text = value if ids == value.replace(" ", "") and " " not in value else ids
            cases.append((dialect, f"SELECT * FROM users WHERE id IN ({text})", value))
        for value in TABLES:
            cases.append((dialect, f"SELECT count(*) FROM {value} WHERE deleted = 0", value))
        for value in COLUMNS:
            column = ident(dialect, value) if " " in value else value
            cases.append((dialect, f"SELECT id, {column} FROM products ORDER BY {column}",
                          value))
    # ORDER BY with a whitelisted direction, or "column direction" as one sort parameter
    for dialect in DIALECTS:
        cases.append((dialect, "SELECT * FROM products ORDER BY price DESC", "DESC"))
        cases.append((dialect, "SELECT * FROM products ORDER BY price ASC LIMIT 10", "ASC"))
        cases.append((dialect, "SELECT * FROM products ORDER BY price DESC", "price DESC"))
        cases.append((dialect, "SELECT * FROM p ORDER BY name ASC, p.created_at DESC",
                      "p.created_at DESC"))
    # values inside a quoted identifier the application built from a whitelist
    cases.append(("postgresql", 'SELECT "Order Total" FROM "Sales 2024"', "Sales 2024"))
    cases.append(("mysql", "SELECT `weird``name` FROM t", "weird``name"))
    # a value in a PostgreSQL dollar-quoted body, and in E'' with backslash escapes
    cases.append(("postgresql", "SELECT $body$it's a 'test'$body$", "it's a 'test'"))
    cases.append(("postgresql", "SELECT * FROM t WHERE a = E'it\\'s'", "it\\'s"))
    # a value inside a comment the application wrote (sqlcommenter)
    cases.append(("postgresql",
                  "SELECT * FROM t /*route='/users/profile',framework='flask'*/",
                  "/users/profile"))
    return cases


LEGIT = _legit()


def test_legit_corpus_size() -> None:
    assert len(LEGIT) >= 100
    # every value is really in its statement, so that each case exercises the check
    found = [case for case in LEGIT if case[2] in case[1]]
    assert len(found) >= 100


@pytest.mark.parametrize(("dialect", "statement", "value"), LEGIT)
def test_legitimate_values_are_not_injections(dialect: str, statement: str, value: str) -> None:
    assert injected(statement, value, dialect) is False


# --- attacks ----------------------------------------------------------------------------------

STRING_CONTEXT = "SELECT * FROM users WHERE name = '{}' AND active = 1"
NUMERIC_CONTEXT = "SELECT * FROM orders WHERE id = {} LIMIT 1"

STRING_ATTACKS = [
    "' OR '1'='1",
    "' OR 1=1 -- ",
    "admin' -- ",
    "' OR 'a'='a' /*",
    "x' OR name LIKE '%",
    "' UNION SELECT username, password FROM users -- ",
    "'; DROP TABLE users; -- ",
    "' AND 1=0 UNION ALL SELECT NULL, NULL -- ",
    "' AND (SELECT COUNT(*) FROM users) > 0 AND 'x'='x",
    "' AND SUBSTR((SELECT password FROM users LIMIT 1), 1, 1) = 'a",
    "x' || (SELECT password FROM users LIMIT 1) || '",
]
NUMERIC_ATTACKS = [
    "1 OR 1=1",
    "1 AND 1=2",
    "1; DROP TABLE users",
    "1 UNION SELECT username, password FROM users",
    "-1 OR 2>1",
    "1) OR (1=1",
    "1 -- ",
    "1/**/OR/**/1=1",
    "(SELECT 1)",
    "1 AND (SELECT COUNT(*) FROM users) > 0",
    "2-1",
]
DIALECT_ATTACKS = [
    # time-based
    ("mysql", STRING_CONTEXT, "' AND SLEEP(5) AND '1'='1"),
    ("mysql", NUMERIC_CONTEXT, "1 AND BENCHMARK(10000000, MD5('a'))"),
    ("postgresql", STRING_CONTEXT, "'; SELECT pg_sleep(5); -- "),
    ("postgresql", NUMERIC_CONTEXT, "1; SELECT pg_sleep(5)"),
    ("sqlite", STRING_CONTEXT, "' AND 1=randomblob(100000000) AND '1'='1"),
    # MySQL: "#" comments, /*! */ executable comments, a system variable, double quotes
    ("mysql", STRING_CONTEXT, "admin'#"),
    ("mysql", NUMERIC_CONTEXT, "1 /*!50000UNION*/ SELECT 1"),
    ("mysql", NUMERIC_CONTEXT, "@@version"),
    ("mysql", 'SELECT * FROM users WHERE name = "{}"', '" OR ""="'),
    ("mysql", "SELECT `{}` FROM users", "name` FROM users -- "),
    # PostgreSQL: quoted identifiers, dollar quotes, casts
    ("postgresql", 'SELECT "{}" FROM users', 'name" FROM users; DROP TABLE users; --'),
    ("postgresql", "SELECT $${}$$", "$$; DROP TABLE users; --"),
    ("postgresql", NUMERIC_CONTEXT, "1::int; COPY users TO '/tmp/x'"),
    ("postgresql", NUMERIC_CONTEXT, "CAST(version() AS int)"),
    # PostgreSQL standard strings: a backslash does not escape, so \' closes the string
    ("postgresql", STRING_CONTEXT, "\\' OR 1=1 -- "),
    # SQLite: brackets and the schema table
    ("sqlite", "SELECT [{}] FROM users", "name] FROM sqlite_master -- "),
    ("sqlite", NUMERIC_CONTEXT, "1 UNION SELECT sql FROM sqlite_master"),
    # identifier and clause contexts
    ("sqlite", "SELECT * FROM products ORDER BY {}", "name; DROP TABLE users"),
    ("postgresql", "SELECT * FROM products ORDER BY {}",
     "(CASE WHEN (SELECT 1)=1 THEN name ELSE price END)"),
    ("mysql", "SELECT * FROM products ORDER BY {}", "name DESC, (SELECT password FROM users)"),
    ("sqlite", "SELECT * FROM products LIMIT {}", "1 UNION SELECT 1, 2"),
    ("postgresql", "SELECT * FROM users WHERE id IN ({})", "1) OR (1=1"),
    ("mysql", "SELECT * FROM users WHERE id IN ({})",
     "1,2) UNION SELECT password FROM users -- "),
    ("sqlite", "SELECT * FROM users WHERE id IN ({})", "1, 2) OR 1=1 --"),
    ("mysql", "SELECT * FROM {} WHERE deleted = 0", "users WHERE 1=1 -- "),
    # a comment the application wrote, closed early
    ("postgresql", "SELECT * FROM t /* route={} */", "x */ ; DROP TABLE t; /*"),
]


def _attacks() -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    for dialect in DIALECTS:
        for value in STRING_ATTACKS:
            cases.append((dialect, STRING_CONTEXT.format(value), value))
        for value in NUMERIC_ATTACKS:
            cases.append((dialect, NUMERIC_CONTEXT.format(value), value))
    for dialect, template, value in DIALECT_ATTACKS:
        cases.append((dialect, template.format(value), value))
    return cases


ATTACKS = _attacks()


def test_attack_corpus_size() -> None:
    assert len(ATTACKS) >= 60


@pytest.mark.parametrize(("dialect", "statement", "value"), ATTACKS)
def test_attacks_are_injections(dialect: str, statement: str, value: str) -> None:
    assert injected(statement, value, dialect) is True


# --- MySQL backslash tricks -----------------------------------------------------------------


def test_backslash_defeats_quote_doubling_in_mysql() -> None:
    # The application doubles quotes (right for SQLite and PostgreSQL), but MySQL reads \' as
    # an escaped quote, so the doubled quote closes the string.
    value = "\\' OR 1=1 -- "
    statement = "SELECT * FROM users WHERE name = " + quote(value)
    assert injected(statement, value, "mysql") is True
    assert injected(statement, value, "sqlite") is False
    assert injected(statement, value, "postgresql") is False


def test_backslash_escaping_quotes_only_in_mysql() -> None:
    # quotes escaped with a backslash, backslashes left alone: \ + \' = an escaped backslash
    value = "\\' UNION SELECT password FROM users -- "
    statement = "SELECT * FROM users WHERE name = '" + value.replace("'", "\\'") + "'"
    assert injected(statement, value, "mysql") is True


def test_trailing_backslash_swallows_the_closing_quote_in_mysql() -> None:
    user, password = "admin\\", " OR 1=1 -- "
    statement = f"SELECT * FROM users WHERE name = '{user}' AND password = '{password}'"
    assert injected(statement, user, "mysql") is True
    assert injected(statement, password, "mysql") is True
    # PostgreSQL and SQLite read the same backslash as a plain character
    assert injected(statement, user, "postgresql") is False


def test_proper_mysql_escaping_is_harmless_whatever_the_value() -> None:
    for value in ("\\' OR 1=1 -- ", "a\\", "\\\\'", "it's \\\"fine\\\"", "'\\''"):
        statement = "SELECT * FROM users WHERE name = " + quote_mysql(value)
        assert injected(statement, value, "mysql") is False, value


def test_same_statement_differs_by_dialect() -> None:
    statement = "SELECT * FROM users WHERE name = 'x\\' OR 1=1 -- '"
    value = "x\\' OR 1=1 -- "
    assert injected(statement, value, "mysql") is False  # one string: \' is escaped
    assert injected(statement, value, "postgresql") is True  # 'x\' then OR 1=1


# --- the rule's edges -----------------------------------------------------------------------


def test_short_or_absent_values_are_never_injections() -> None:
    statement = "SELECT * FROM users WHERE id = 1 OR 1=1"
    assert injected(statement, "1", "sqlite") is False
    assert injected(statement, "=", "sqlite") is False
    assert injected(statement, "", "sqlite") is False
    assert injected(statement, "2 OR 2=2", "sqlite") is False
    assert injected(statement, "   ", "sqlite") is False


def test_unary_minus_belongs_to_the_number_only_after_an_operator() -> None:
    assert injected("SELECT * FROM t WHERE a = -5", "-5", "sqlite") is False
    assert injected("SELECT * FROM t WHERE a = 10-5", "0-5", "sqlite") is True


def test_literal_list_must_be_the_whole_list() -> None:
    assert injected("SELECT * FROM t WHERE id IN (1, 2, 3)", "1, 2, 3", "sqlite") is False
    assert injected("SELECT * FROM t WHERE id IN ('a', 'b')", "'a', 'b'", "sqlite") is False
    # part of the list, or a list outside parentheses: the value adds values of its own
    assert injected("SELECT * FROM t WHERE id IN (1, 2, 3)", "1, 2", "sqlite") is True
    assert injected("INSERT INTO t (a, b, c) VALUES (1, 2, 'x')", "1, 2", "sqlite") is True


def test_qualified_names_are_one_identifier_when_quoted_parts_are_whole() -> None:
    statement = 'SELECT * FROM "Sales"."Orders 2024" WHERE id = 1'
    assert injected(statement, '"Sales"."Orders 2024"', "postgresql") is False
    assert injected(statement, 'Sales"."Orders', "postgresql") is True  # crosses quotes


def test_a_sort_direction_is_whitelisted_only_in_order_by() -> None:
    assert injected("SELECT * FROM t ORDER BY a, b DESC", "b DESC", "sqlite") is False
    assert injected("SELECT b DESC FROM t", "b DESC", "sqlite") is True
    assert injected("SELECT * FROM t GROUP BY b DESC", "b DESC", "sqlite") is True


def test_whole_keyword_or_operator_is_an_injection_but_part_of_one_is_not() -> None:
    statement = "SELECT * FROM t WHERE a = 1 OR b = 2 ORDER BY a"
    assert injected(statement, "OR", "sqlite") is True
    assert injected(statement, "RDE", "sqlite") is False  # inside ORDER
    assert injected("SELECT * FROM t WHERE a >= 1", ">=", "sqlite") is True


def test_comments_and_separators_are_injections() -> None:
    assert injected("SELECT * FROM t WHERE a = 1 -- x", "-- x", "sqlite") is True
    assert injected("SELECT * FROM t WHERE a = 1 /* x */", "/* x */", "sqlite") is True
    assert injected("SELECT * FROM t WHERE a = 1 ; ", " ; ", "sqlite") is True
    assert injected("SELECT * FROM t WHERE a = 1 # x", "# x", "mysql") is True


def test_value_reaching_a_quote_is_an_injection() -> None:
    # the value supplies the closing quote of the application's string
    assert injected("SELECT * FROM t WHERE a = 'abc' AND b = 1", "abc'", "sqlite") is True
    # or its opening one
    assert injected("SELECT * FROM t WHERE a = 'abc'", "= 'ab", "sqlite") is True
    # a whole quoted literal the user typed is still one value
    assert injected("SELECT * FROM t WHERE a = 'abc'", "'abc'", "sqlite") is False


def test_value_that_leaves_the_statement_with_an_open_quote() -> None:
    # the user's quote pairs with the application's closing quote: the string runs on
    statement = "SELECT * FROM t WHERE a = 'abc'' AND b = 'x'"
    assert injected(statement, "abc'", "sqlite") is True


def test_each_occurrence_counts() -> None:
    value = "x' OR '1'='1"
    statement = f"SELECT * FROM t WHERE a = {quote(value)} OR b = '{value}'"
    assert injected(statement, value, "sqlite") is True


@pytest.mark.parametrize(
    ("name", "dialect"),
    [
        ("sqlite", "sqlite"), ("sqlite3", "sqlite"), ("aiosqlite", "sqlite"),
        ("postgresql", "postgres"), ("postgres", "postgres"), ("psycopg", "postgres"),
        ("psycopg2", "postgres"), ("asyncpg", "postgres"), ("pg8000", "postgres"),
        ("postgresql+asyncpg", "postgres"),
        ("mysql", "mysql"), ("MariaDB", "mysql"), ("pymysql", "mysql"), ("MySQLdb", "mysql"),
        ("mysql.connector", "mysql"), ("aiomysql", "mysql"),
        ("oracle", "generic"), ("", "generic"), ("generic", "generic"),
    ],
)
def test_dialect_of(name: str, dialect: str) -> None:
    assert dialect_of(name) == dialect


def test_unknown_dialect_does_not_raise() -> None:
    assert injected("SELECT * FROM t WHERE id = 1 OR 1=1", "1 OR 1=1", "db2") is True
