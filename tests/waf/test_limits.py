"""Bounded walks: the fast paths for flat mappings give exactly what the general walk gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.waf.limits import (
    DEFAULT_LIMITS,
    FlatPaths,
    Limits,
    key_texts,
    keys_of,
    value_texts,
    walk_keys,
    walk_values,
)

texts = st.text(max_size=12) | st.text(alphabet="ab", min_size=4090, max_size=4100)
flat = st.dictionaries(
    st.text(max_size=8), texts | st.lists(texts, max_size=10) | st.integers(), max_size=12
)


@given(flat)
def test_flat_fast_path_matches_the_general_walk(mapping: dict[str, object]) -> None:
    # Nested under one key, the same mapping takes the general path.
    nested = walk_values({"n": mapping}, DEFAULT_LIMITS)
    assert walk_values(mapping, DEFAULT_LIMITS) == [(path[1:], text) for path, text in nested]
    nested_keys = [(p[1:], k) for p, k in walk_keys({"n": mapping}, DEFAULT_LIMITS) if len(p) > 1]
    assert keys_of(mapping, DEFAULT_LIMITS) == nested_keys


def test_limits_apply_on_both_paths() -> None:
    small = Limits(max_string_length=4, max_container_size=2, max_container_depth=3)
    assert walk_values({"a": "abcdef", "b": ["x", "y", "z"], "c": "q"}, small) == [
        (("a",), "abcd"), (("b", 0), "x"), (("b", 1), "y")]
    assert walk_values({"a": {"b": {"c": {"d": "deep"}}}}, small) == []
    assert walk_values({"\udc80": "\ud800x"}, DEFAULT_LIMITS) == [(("\ufffd",), "\ufffdx")]


objects = st.recursive(
    st.one_of(texts, st.text(alphabet="é\n\udc80x", max_size=6), st.integers(), st.none(),
              st.binary(max_size=6)),
    lambda children: st.lists(children, max_size=10)
    | st.dictionaries(st.text(max_size=6) | st.integers(), children, max_size=10),
    max_leaves=40,
)


@given(objects)
def test_value_and_key_texts_are_the_walks_as_lists(value: object) -> None:
    for limits in (DEFAULT_LIMITS, Limits(max_string_length=5, max_container_size=3,
                                          max_container_depth=3)):
        paths, values, joined, names, names_joined, tree_keys = value_texts(
            value, limits, want_keys=True)
        walked = walk_values(value, limits)
        assert [paths[i] for i in range(len(paths))] == [path for path, _ in walked]
        assert values == [text for _, text in walked]
        assert joined == "\n".join(values)
        key_paths, keys = key_texts(value, limits)
        assert [(key_paths[i], key) for i, key in enumerate(keys)] == keys_of(value, limits)
        if names is not None:  # a flat mapping: its names are all its keys
            assert names == keys and names_joined == "\n".join(keys)
        if tree_keys is not None:  # any other shape: its keys, from the same walk
            walked_paths, walked_keys = tree_keys
            assert list(zip(walked_paths, walked_keys, strict=True)) == keys_of(value, limits)


def test_flat_paths_are_made_on_demand_and_found_by_name() -> None:
    headers = FlatPaths(["host", "user-agent"])
    assert headers[1] == ("user-agent",) and list(headers[:]) == [("host",), ("user-agent",)]
    assert headers.under(("user-agent",)) == [1]
    assert headers.under(("cookie",)) == [] and headers.under(("host", 0)) == []
    query = FlatPaths(["q", "page"], (0,))
    assert query[0] == ("q", 0)
    assert query.under(("page",)) == query.under(("page", 0)) == [1]
    assert query.under(("page", 1)) == []


def test_valid_non_ascii_texts_take_the_flat_path() -> None:
    """A search in any language is read as fast as an English one; a lone surrogate still
    takes the general walk, which cleans it."""
    paths, values, _, names, _, _ = value_texts({"q": ["café"], "p": ["2"]}, DEFAULT_LIMITS)
    assert isinstance(paths, FlatPaths) and values == ["café", "2"] and names == ["q", "p"]
    paths, values, *_ = value_texts({"q": ["caf\udce9"]}, DEFAULT_LIMITS)
    assert not isinstance(paths, FlatPaths) and values == ["caf\ufffd"]
