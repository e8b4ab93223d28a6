"""The one-pass tree walk must read exactly what the two walks it replaces read: the same
texts, the same key paths, the same limits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.waf.limits import Limits, tree_texts, walk_keys, walk_values

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=12), st.binary(max_size=6))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=6),
    ),
    max_leaves=40,
)
limits = st.builds(Limits, max_string_length=st.integers(1, 20),
                   max_container_size=st.integers(1, 8), max_container_depth=st.integers(1, 6))


@settings(max_examples=400, deadline=None)
@given(document=documents, bounds=limits)
def test_one_walk_reads_what_the_value_and_key_walks_read(
    document: object, bounds: Limits
) -> None:
    value_paths, values, key_paths, keys = tree_texts(document, bounds, want_keys=True)
    expected_values = walk_values(document, bounds)
    expected_keys = list(walk_keys(document, bounds))
    assert values == [text for _, text in expected_values]
    assert list(value_paths) == [path for path, _ in expected_values]
    assert keys == [text for _, text in expected_keys]
    assert list(key_paths) == [path for path, _ in expected_keys]
    assert [value_paths[i] for i in range(len(values))] == list(value_paths[:])


def test_without_keys_only_values_are_collected() -> None:
    _, values, key_paths, keys = tree_texts({"a": {"b": "x"}}, Limits(), want_keys=False)
    assert values == ["x"] and keys == [] and len(key_paths) == 0
