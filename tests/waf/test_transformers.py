"""Transformers undo the encodings attackers use; each is checked on what it must undo."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bastion.waf.transformers import SELECTORS, TRANSFORMERS, make_chain, make_values_chain


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("lowercase", "SeLeCt", "select"),
        ("removeNulls", "a\x00b", "ab"),
        ("urlDecode", "a%20b+c%2", "a b c%2"),
        ("urlDecodeUni", "%u003cscript%uff1e", "<script>"),
        ("urlDecode", "%c3%a9t%c3%a9", "été"),
        ("normalizePath", "/a/./b/../../etc//passwd", "/etc/passwd"),
        ("normalizePath", "a/../../x", "../x"),
        ("normalizePathWin", "c:\\a\\..\\win.ini", "c:/win.ini"),
        ("cmdLine", "c\"a't^ /etc/pa\\sswd;ID", "cat/etc/passwd id"),
        ("removeComments", "SEL/**/ECT 1 -- x", "SELECT 1 "),
        ("compressWhiteSpace", "a \t\n b", "a b"),
        ("htmlEntityDecode", "&lt;script&#x3e;&#106;", "<script>j"),
        ("jsDecode", "\\x3cscript\\u003e\\u{61}\\101", "<script>aA"),
        ("cssDecode", "\\65 xpression", "expression"),
        ("base64Decode", "PHNjcmlwdD4=", "<script>"),
        ("base64Decode", "not base64!", "not base64!"),
        ("unicode_normalize", "ｓｃｒｉｐｔ é", "script e"),
    ],
)
def test_transformer(name: str, value: str, expected: str) -> None:
    assert TRANSFORMERS[name](value) == expected


@given(st.text(alphabet=st.sampled_from("%+ab09fFgG/é\x00-"), max_size=40))
@example("%41%4g%%c3%a9%e9%")
def test_url_decode_decodes_as_urllib_does(value: str) -> None:
    # The engine's own percent decoding (ASCII values) must not drift from urllib's.
    assert TRANSFORMERS["urlDecode"](value) == unquote(value.replace("+", " "), errors="replace")


def test_chain_applies_in_order_and_skips_selectors() -> None:
    chain = make_chain(("urlDecode", "lowercase", "keys_only"))
    assert chain is not None and chain("%53ELECT") == "select"
    assert make_chain(("keys_only",)) is None


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_transformers_survive_hostile_text(name: str) -> None:
    hostile = "%" * 100 + "\\u{" + "\ud800" + "&#99999999;" + "\\" + "\x00" * 10 + "/.." * 50
    assert isinstance(TRANSFORMERS[name](hostile), str)


@pytest.mark.parametrize("value", ["\\ud800", "\\u{dfff}", "%ud800", "\\d800 "])
def test_decoders_never_produce_lone_surrogates(value: str) -> None:
    for name in ("jsDecode", "cssDecode", "urlDecodeUni"):
        TRANSFORMERS[name](value).encode("utf-8")  # raises on a lone surrogate


pieces = st.sampled_from([*"aB %+&#/.\\\x00\n-*é", "%41", "%0a", "&lt;", "/./", "//", "SeLeCt"])
values = st.lists(st.lists(pieces, max_size=8).map("".join), min_size=1, max_size=6)
chains = st.lists(st.sampled_from(sorted(set(TRANSFORMERS) - SELECTORS)), min_size=1, max_size=3)


@given(values, chains)
@example(["a", "./x"], ["normalizePath"])  # a dot segment that only a later value starts with
@example(["A+b", "c"], ["lowercase", "urlDecode"])
@settings(max_examples=400)
def test_a_chain_over_many_values_is_the_chain_value_by_value(
    texts: list[str], names: list[str]
) -> None:
    chain, many = make_chain(tuple(names)), make_values_chain(tuple(names))
    assert chain is not None and many is not None
    result = many.apply_all(texts, "\n".join(texts))
    assert result == [chain(text) for text in texts]
    if result == texts:
        assert result is texts  # the engine reads "same list" as "nothing changed"


def test_values_no_transformer_can_change_cost_no_call_per_value() -> None:
    many = make_values_chain(("urlDecodeUni", "lowercase"))
    assert many is not None
    texts = ["shop.example.com", "keep-alive", "max-age=0"]
    assert many.apply_all(texts, "\n".join(texts)) is texts
