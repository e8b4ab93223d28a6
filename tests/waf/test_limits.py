"""Bounded walks: the fast paths for flat mappings give exactly what the general walk gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.waf.limits import DEFAULT_LIMITS, Limits, keys_of, walk_keys, walk_values

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
