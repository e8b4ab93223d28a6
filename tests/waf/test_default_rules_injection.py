"""Bundled rules, injection families (10-sqli, 20-xss, 70-injection-other): attacks fire, benign pass.

Attacks are written here by hand, in the shapes scanners and people send (not copied from the
benchmark corpora); the benign values are what search boxes, rich-text editors, JSON APIs and
forms in many languages send, including text that talks about SQL or HTML.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from bastion.waf import Ruleset
from tests.waf.rule_requests import fired

FAMILIES = (
    "bst-sqli-", "bst-xss-", "bst-nosql-", "bst-ldap-", "bst-xpath-", "bst-ssti-", "bst-jsi-",
    "bst-pp-", "bst-mail-", "bst-django-",
)


def ours(ids: set[str]) -> set[str]:
    return {i for i in ids if i.startswith(FAMILIES)}


def query_fires(ruleset: Ruleset, value: str, name: str = "q") -> set[str]:
    return ours(fired(ruleset, target=f"/search?{quote(name, safe='')}=" + quote(value, safe="")))


def json_fires(ruleset: Ruleset, document: object) -> set[str]:
    body = json.dumps(document).encode()
    return ours(fired(ruleset, "POST", "/api/items", [("content-type", "application/json")], body))


ATTACKS = {
    "bst-sqli-": [
        "1' OR '1'='1",
        "admin'--",
        "-1 UNION ALL SELECT NULL,username,password FROM users--",
        "1 AND (SELECT 1 FROM (SELECT SLEEP(5))x)",
        "1';WAITFOR DELAY '0:0:5'--",
        "1) AND 1=pg_sleep(3)--",
        "x' AND extractvalue(1,concat(0x7e,(SELECT version())))-- -",
        "1;DROP TABLE users--",
        "1'; EXEC master..xp_cmdshell 'ping 10.0.0.1'--",
        "1 /*!50000UNION*/ /*!50000SELECT*/ 1,2",
        "' UNION SELECT table_name FROM information_schema.tables--",
        "abc' AND ascii(substring((SELECT password FROM users LIMIT 1),1,1))>64--",
        "1 OR 2>1",
        "' or 1=1 limit 1 -- -+",
        "1 order by 5--",
        "\u2019 OR \u20191\u2019=\u20191",
    ],
    "bst-xss-": [
        "<script>alert(document.domain)</script>",
        "\"><img src=x onerror=alert(1)>",
        "';alert(String.fromCharCode(88,83,83))//",
        "\";alert(1)//",
        "'-prompt(1)-'",
        "javascript:alert(document.cookie)",
        "java&#x09;script:alert(1)",
        "<svg/onload=confirm`1`>",
        "${alert(1)}",
        "x\" onmouseover=\"alert(1)",
        "window['al'+'ert'](document['cookie'])",
        "\\u0061lert(1)",
    ],
    "bst-nosql-": [],  # in names, see test_nosql_operator_in_names
    "bst-ssti-": [
        "{{7*7}}",
        "${7*7}",
        "#{7*7}",
        "<%= 7*7 %>",
        "{{''.__class__.__mro__[1].__subclasses__()}}",
        "${T(java.lang.Runtime).getRuntime().exec('id')}",
        "{{config.items()}}",
        "<#assign ex=\"freemarker.template.utility.Execute\"?new()>${ex(\"id\")}",
    ],
    "bst-ldap-": [
        "*)(uid=*))(|(uid=*",
        "admin)(&)",
        "*)(objectClass=*",
    ],
    "bst-xpath-": [
        "' or count(/*)=1 or '",
        "x' or string-length(name(/*[1]))>0 or '",
    ],
    "bst-jsi-": [
        "require('child_process').exec('id')",
        "process.mainModule.require('fs').readFileSync('/etc/passwd')",
        "_$$ND_FUNC$$_function(){require('child_process').exec('id')}()",
        "while(true);",
    ],
    "bst-mail-": [
        "victim@example.com\r\nBcc: everyone@example.org",
        "me@example.com\nSubject: you won",
    ],
}


@pytest.mark.parametrize(
    ("family", "payload"),
    [(family, payload) for family, payloads in ATTACKS.items() for payload in payloads],
)
def test_attack_in_query_fires(ruleset: Ruleset, family: str, payload: str) -> None:
    assert any(i.startswith(family) for i in query_fires(ruleset, payload)), payload


@pytest.mark.parametrize("payload", ["1' OR '1'='1", "<img src=x onerror=alert(1)>", "{{7*7}}"])
def test_attack_in_json_body_and_cookie_fires(ruleset: Ruleset, payload: str) -> None:
    assert json_fires(ruleset, {"comment": {"text": payload}})
    assert ours(fired(ruleset, headers=[("cookie", "prefs=" + quote(payload, safe=""))]))


def test_raw_form_body_without_content_type_is_inspected(ruleset: Ruleset) -> None:
    body = b"id=1%27%20UNION%20SELECT%20password%20FROM%20users--"
    assert ours(fired(ruleset, "POST", "/login", body=body))


def test_attack_in_path_fires(ruleset: Ruleset) -> None:
    assert ours(fired(ruleset, target="/items/1%20UNION%20SELECT%20password%20FROM%20users--"))


def test_xss_in_referer_and_user_agent_fires(ruleset: Ruleset) -> None:
    referer = "https://example.com/?q=%3Cscript%3Ealert(1)%3C/script%3E"
    assert any(i.startswith("bst-xss-") for i in ours(fired(ruleset, headers=[("referer", referer)])))
    agent = "Mozilla/5.0 <script src=//evil.example/x.js></script>"
    assert any(i.startswith("bst-xss-") for i in ours(fired(ruleset, headers=[("user-agent", agent)])))


def test_sqli_in_user_agent_fires(ruleset: Ruleset) -> None:
    agent = "Mozilla/5.0' AND SLEEP(5)-- -"
    assert ours(fired(ruleset, headers=[("user-agent", agent)]))


def test_nosql_operator_in_names(ruleset: Ruleset) -> None:
    assert "bst-nosql-001" in json_fires(ruleset, {"username": "admin", "password": {"$ne": ""}})
    assert "bst-nosql-001" in json_fires(ruleset, {"user": {"$where": "sleep(100)"}})
    assert "bst-nosql-001" in ours(fired(ruleset, target="/login?user=admin&password[$ne]=x"))
    assert "bst-nosql-001" in ours(fired(ruleset, target="/users?age[$gt]=0"))


def test_prototype_pollution(ruleset: Ruleset) -> None:
    assert "bst-pp-001" in json_fires(ruleset, {"__proto__": {"isAdmin": True}})
    assert "bst-pp-001" in ours(fired(ruleset, target="/?constructor[prototype][admin]=1"))
    assert "bst-pp-001" in ours(fired(ruleset, target="/?a.__proto__.b=1"))


def test_sql_syntax_in_parameter_name(ruleset: Ruleset) -> None:
    target = "/list?" + quote("id' UNION SELECT 1,2--", safe="") + "=1"
    assert any(i.startswith("bst-sqli-") for i in ours(fired(ruleset, target=target)))


BENIGN = [
    # search boxes, names and prose in many languages
    "select a bike", "union station", "Union Station Chicago", "O'Brien", "Dan O'Brien's pub",
    "1' high", "6' 2\" tall", "it's a 1' x 2' board", "Rock 'n' roll", "don't stop believin'",
    "Please select a country", "drop me a line", "update available", "insert coin",
    "where is the union square?", "order by price", "sort by date, order by name",
    "Let's meet at 5 -- or 6 if late", "I said \"no\" -- and meant it", "wait -- what?",
    "l'été à Paris", "aujourd'hui c'est le 1er mai", "J'ai acheté 3 livres pour 20 € — c'était cher",
    "Côte d'Ivoire", "L'Oréal Paris", "Straße & Weg; Größe 42", "¿Dónde está la estación?",
    "Привет, как дела?", "Где купить билеты на поезд 'Сапсан'?", "选择一辆自行车", "北京市朝阳区建国路88号",
    "東京タワー「展望台」", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "Γειά σου Κόσμε",
    "“smart quotes” and ‘single smart’", "«guillemets» and „German quotes“",
    "the 'select' keyword", "yes or no", "true or false", "1 or 2", "version 2 or later",
    "Is it true that 1=1 or 2=2?", "necklace length 16\" or 18\"", "Select Bike (Red) - Size 'M'",
    "European Union (EU) regulations", "sleep well tonight", "Ask me about sleep (8 hours)",
    "benchmark results (2024)", "char limit: 280", "execute order 66", "information about schemas",
    # prices, numbers, identifiers, tokens
    "$19.99", "€ 12,50", "£5.00 - £10.00", "50% off today only!", "3 x 4 = 12", "1+1=2",
    "x >= 10 and y <= 20", "price < 100 & rating > 4", "2024-01-15T12:30:45Z", "+1 (555) 123-4567",
    "550e8400-e29b-41d4-a716-446655440000", "0xdeadbeef", "#ff0000", "ISBN 978-3-16-148410-0",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "dGhpcyBpcyBhIHRlc3Q=", "aGVsbG8gd29ybGQ-_", "P@ssw0rd!", "aB3$kL9#mN2@", "pass'word",
    # emoticons and symbols
    "<3", "I <3 you", ":-) :-( ;-) :P :D <3 </3", "^_^ >_< o_O", "¯\\_(ツ)_/¯", "★★★★☆",
    # rich-text editor output
    "<p><b>x</b></p>", "<p>Hello <strong>world</strong></p>",
    "<p>Some <em>emphasis</em> and <a href=\"https://example.com\">a link</a>.</p>",
    "<ul><li>one</li><li>two</li></ul>", "<h2>Title</h2><p>Paragraph &amp; entities</p>",
    "<img src=\"https://example.com/a.png\" alt=\"A picture\">",
    "<span style=\"color: rgb(255, 0, 0);\">red text</span>", "<p><br></p>",
    "<a href=\"/docs/getting-started\" target=\"_blank\" rel=\"noopener\">Docs</a>",
    "<pre><code class=\"language-python\">print(\"hi\")</code></pre>",
    "<p>Price: &lt;$10&gt;</p>", "<p>She said &quot;hello&quot;</p>",
    "**bold** and _italic_ and `code`", "[link text](https://example.com)", "> quoted line",
    # templates a CMS stores, and code in a developer forum
    "{{ user.name }}", "Hello {{first_name}}, welcome!", "{% if user %}Hi{% endif %}",
    "{{#each items}}{{this}}{{/each}}", "<%= link_to 'Home', root_path %>", "#{name}",
    "Total: ${amount} USD", "for (let i = 0; i < 10; i++) { console.log(i); }",
    "const user = { name: 'Bob', age: 42 };", "import React from 'react';",
    "print(f\"{x} + {y} = {x + y}\")", "Map<String, List<Integer>> map = new HashMap<>();",
    "std::cout << \"Hello\" << std::endl;", "x = y if y else z", "a -> b", "arr[0]",
    "Object.prototype.toString", "what is __proto__", "mongodb $regex operator",
    "LDAP filter (&(objectClass=user)(cn=John))", "count(//book)", "time.sleep(5)",
    # paths, URLs, mail
    "C:\\Users\\me\\Documents", "/home/user/.bashrc", "rm -rf is dangerous",
    "https://www.google.com/search?q=union+station", "https://en.wikipedia.org/wiki/O'Brien_(surname)",
    "http://localhost:8080/api/v1/users/42", "bob.smith+tag@sub.example.co.uk",
    "Dear Sir/Madam,\nTo: all staff\nthe meeting moves to 3pm", "Learn JavaScript: the good parts",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
]


@pytest.mark.parametrize("value", BENIGN)
def test_benign_value_passes(ruleset: Ruleset, value: str) -> None:
    assert query_fires(ruleset, value) == set()
    assert json_fires(ruleset, {"comment": value, "tags": [value]}) == set()
    form = ("text=" + quote(value, safe="")).encode()
    headers = [("content-type", "application/x-www-form-urlencoded")]
    assert ours(fired(ruleset, "POST", "/comment", headers, form)) == set()


BENIGN_NAMES = [
    "q", "user[name]", "filter[status]", "items[0][name]", "sort[]", "page[size]", "utm_source",
    "g-recaptcha-response", "data-id", "callback", "_", "fields.title", "$filter", "$top",
    "$orderby", "$select", "$schema", "$type", "@context", "name__startswith", "author__in",
    "created_at__gte", "order_by", "select", "union", "where", "constructor", "prototype",
]


@pytest.mark.parametrize("name", BENIGN_NAMES)
def test_benign_parameter_name_passes(ruleset: Ruleset, name: str) -> None:
    assert query_fires(ruleset, "1", name=name) == set()
    assert json_fires(ruleset, {name: "1"}) == set()


def test_benign_browser_headers_pass(ruleset: Ruleset) -> None:
    headers = [
        ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                       "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7"),
        ("referer", "https://shop.example.com/search?q=O%27Brien+%22union%22+select&page=2"),
        ("cookie", "session=eyJ1c2VyIjoiYm9iIn0.ZXhhbXBsZQ; _ga=GA1.1.123.456; theme=dark"),
        ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
    ]
    assert ours(fired(ruleset, target="/products/42?color=red&size=M", headers=headers)) == set()
