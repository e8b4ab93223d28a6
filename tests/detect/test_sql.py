"""Tests for the SQL tokenizer and the SQL injection detector."""

from __future__ import annotations

import pytest

from bastion.detect.sql import Token, is_sqli, tokenize


def kinds(text: str, dialect: str = "generic") -> str:
    return "".join(t.kind for t in tokenize(text, dialect))


def texts(text: str, dialect: str = "generic") -> list[str]:
    return [t.text for t in tokenize(text, dialect)]


# --- tokenizer ------------------------------------------------------------------------------------


def test_token_fields() -> None:
    assert tokenize("SELECT 1") == [Token("E", "SELECT", 0), Token("1", "1", 7)]


def test_words_keep_their_spelling() -> None:
    assert texts("sElEcT x FrOm t") == ["sElEcT", "x", "FrOm", "t"]
    assert kinds("sElEcT x FrOm t") == "Enkn"


def test_single_quotes_doubled_and_backslash() -> None:
    assert texts("'it''s' x") == ["'it''s'", "x"]
    # MySQL: backslash escapes the quote; SQLite and PostgreSQL: it does not
    assert texts(r"'a\'b' c", "mysql") == [r"'a\'b'", "c"]
    assert texts(r"'a\'z' c", "sqlite") == [r"'a\'", "z", "' c"]
    assert texts(r"'a\'z' c", "postgres") == [r"'a\'", "z", "' c"]
    assert texts("b'01' x'4a'") == ["b'01'", "x'4a'"]  # bit and hex literals
    # PostgreSQL E'' strings do use backslash escapes
    assert texts(r"E'a\'b' c", "postgres") == [r"E'a\'b'", "c"]


def test_double_quotes_and_backticks() -> None:
    assert kinds('"x"', "mysql") == "s"  # a string in MySQL
    assert kinds('"x"', "postgres") == "n"  # an identifier in PostgreSQL / SQLite
    assert kinds('"x"', "sqlite") == "n"
    assert texts('"a""b" c', "postgres") == ['"a""b"', "c"]
    assert kinds("`select`", "mysql") == "n"
    assert kinds("[select] x", "sqlite") == "nn"


def test_dollar_quoting() -> None:
    assert texts("$tag$ it's $$ $tag$ x", "postgres") == ["$tag$ it's $$ $tag$", "x"]
    assert texts("$$a$$", "postgres") == ["$$a$$"]
    assert kinds("$1", "postgres") == "v"


def test_comments_by_dialect() -> None:
    assert kinds("1 -- x\n2", "postgres") == "1c1"
    assert kinds("1 --x", "postgres") == "1c"
    # MySQL wants white space after "--": "1 --x" is 1 - (-x)
    assert kinds("1 --x", "mysql") == "1oon"
    assert kinds("1 # x", "mysql") == "1c"
    assert kinds("1 # x", "postgres") == "1on"  # "#" is an operator in PostgreSQL
    assert kinds("1 /* a */ 2") == "1C1"
    assert kinds("1 /* open") == "1c"  # unterminated: cuts the rest
    # nested block comments only in PostgreSQL
    assert kinds("/* a /* b */ c */ 1", "postgres") == "C1"
    assert kinds("/* a /* b */ c */ 1", "mysql") == "Cnoo1"


def test_mysql_executable_comment_is_code() -> None:
    assert kinds("1 /*!50000union*/ select 2", "mysql") == "1CUCE1"
    assert kinds("1 /*!50000union*/ select 2", "postgres") == "1CE1"


def test_numbers() -> None:
    assert kinds("0x3a 0b101 1.5 .5 1e5 1E-3 12") == "1111111"
    assert texts("1e1AND") == ["1e1", "AND"]
    assert kinds("1abc", "mysql") == "n"  # an identifier in MySQL
    assert kinds("1abc", "postgres") == "1n"


def test_operators_variables_functions() -> None:
    assert texts("a<=>b||c&&d::int") == ["a", "<=>", "b", "||", "c", "&&", "d", "::", "int"]
    assert kinds("@x @@version @'q'") == "vvv"
    assert kinds("sleep (5)") == "f(1)"
    assert kinds("x.y(1)") == "f(1)"
    assert kinds("information_schema.tables") == "n"
    assert kinds("a OR b AND c") == "n&n&n"


def test_unknown_dialect() -> None:
    with pytest.raises(ValueError):
        tokenize("1", "oracle")


# --- detector -------------------------------------------------------------------------------------

ATTACKS = [
    "1' or '1'='1",
    "' OR 1=1 --",
    "admin'--",
    "admin' /*",
    '1" or "a"="a',
    "1 or 1=1",
    "1) or (1=1",
    "-1 union select 1,version(),3--",
    "-1' UNION ALL SELECT NULL,NULL--",
    "1/**/union/**/select/**/1,2",
    "1 /*!50000union*/ select 1,2",
    "1; drop table users--",
    "x'; DROP TABLE users; --",
    "1 and sleep(5)",
    "1' and benchmark(1000000,md5(1))#",
    "'; waitfor delay '0:0:5'--",
    "1 order by 10--",
    "1' group by 1 having 1=1--",
    "' or ''='",
    "1 and ascii(substring((select version()),1,1))>52",
    "1' and extractvalue(1,concat(0x7e,version()))--",
    "(select load_file('/etc/passwd'))",
    "' || (select pg_sleep(5)) || '",
    "1 AND (SELECT 1 FROM (SELECT COUNT(*),CONCAT(version(),FLOOR(RAND(0)*2))x "
    "FROM information_schema.tables GROUP BY x)a)",
    "1' into outfile '/var/www/x.php'--",
    "sleep(10)",
    "sleep(5)#",
    "benchmark(1000000,md5(1))",
    "1 and sleep(a)",
    "1=1 and 2=2",
    "1 and 2>1",
    "1 < 2 and ascii(user())>1",
    "select * from users",
    "x'; DELETE FROM users WHERE 1=1--",
    "'; delete from users--",
    "1'; insert into users values(1,2)--",
    "1; insert into users(id) values(1)",
    "'; insert into users select * from x--",
    "select *",
    "' and email not similar to id--",
]

BENIGN = [
    "O'Brien",
    "D'Angelo and O'Neil",
    "it's -- well, 'fine' or not",
    "select a bike",
    "union station",
    "Select 3 options",
    "drop table cloth",
    "Delete from favorites",
    "The students' and teachers' union",
    "rock 'n' roll",
    'He said "yes" and she said "no"',
    "2 or 3 days",
    "a || b",
    "x >= 10",
    "1 + 1 = 2",
    "en-US,en;q=0.9",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)",
    "john.o'reilly@example.com",
    "L'amour est dans le pré -- aujourd'hui c'est l'été",
    "Ich weiß nicht, ob er kommt -- vielleicht",
    "¿Dónde está la estación? -- ¡Aquí!",
    "你好，世界！「こんにちは」",
    "Привет, как дела? -- Нормально.",
    "السلام عليكم -- كيف حالك؟",
    '{"name": "O\'Brien", "age": 30}',
    "Price: $1,299.00 -- 20% off",
    "2024-01-15T10:30:00Z",
    "C# developer, #1 fan",
    "The 'and' operator",
    "user(s)",
    # a delay function called on plain words, or followed by prose, is not SQL
    "Wikipedia: Sleep (disambiguation)",
    "sleep (disambiguation)",
    "sleep(1) in python",
    "sleep(2) is called between retries",
    "Warning: sleep(0) yields the thread",
    "sleep (film, 2010)",
    "sleep(10) est trop long pour un test",
    "sleep (значения)",
    "sleep(1) 在 python 中是什么意思",
    # a star followed by a word is not a select list; TO is an operator only in SIMILAR TO
    "select * nothing",
    "Select * to select all files",
    "select * in Excel selects everything",
    # statement words without the statement's shape
    "How to write INSERT INTO with multiple rows?",
    "How to delete from list in python",
    "insert into the slot and turn",
    # inequalities before AND/OR: arithmetic, not a numeric condition being continued
    "1 < 2 and 3 > 2",
    "5 > 3 or 2 < 1",
    "0 < x and x < 10",
    "",
]


@pytest.mark.parametrize("value", ATTACKS)
def test_attacks_are_flagged(value: str) -> None:
    assert is_sqli(value) is not None


@pytest.mark.parametrize("value", BENIGN)
def test_benign_values_pass(value: str) -> None:
    assert is_sqli(value) is None


def test_evidence_is_a_fingerprint() -> None:
    assert is_sqli("1' or 1=1--") == "s&1o1c"
    assert is_sqli("-1 union select 1,2") == "o1UE1,1"


def test_evidence_shows_the_placement_the_value_was_made_for() -> None:
    # Balanced quotes are string literals of a bare injection: its UNION shows, not the
    # pieces between two quotes; an odd quote is there to close the application's string.
    assert is_sqli("-1 union select concat(name,':',passwd) from users") == "o1UEf(n,s,n)"
    assert is_sqli("7' union select passwd from users--") == "sUEnknc"


@pytest.mark.parametrize(
    "value",
    [
        "a" * 4096,
        "(" * 4096,
        ")" * 4096,
        "'" * 4096,
        "'a" * 2048,
        "\\'" * 2048,
        "1 or " * 800,
        "/*" * 2048,
        "-- " * 1365,
        "\x00' or 1=1 \x00",
        "\ud800' or '\udfff",
        "1" + "+1" * 2000,
        "((((((((((" * 400 + "1=1",
        "$a$" * 1000,
        "@" * 4096,
        "\\" * 4096,
    ],
)
def test_hostile_input_does_not_raise(value: str) -> None:
    result = is_sqli(value)
    assert result is None or isinstance(result, str)
    tokenize(value)
