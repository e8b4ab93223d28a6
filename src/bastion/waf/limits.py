"""Bounds on what the engine inspects, and the bounded walk over an address's object.

Attackers control the size and shape of request data, so every walk is capped the way the
reference engine caps it: long strings are truncated, big containers are cut, deep nesting is
not followed. The caps make the cost of one evaluation a known constant, whatever arrives.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import Final, cast, overload

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Limits:
    """Inspection bounds; the defaults match the reference engine."""

    max_string_length: int = 4096
    max_container_size: int = 256
    max_container_depth: int = 20


DEFAULT_LIMITS: Final = Limits()


def clean_text(text: str) -> str:
    """`text` as valid Unicode: lone surrogates (from JSON escapes or undecodable bytes) become
    U+FFFD, so that no matcher downstream trips on text it cannot encode."""
    if text.isascii() or is_clean(text):
        return text
    return "".join("\ufffd" if _SURROGATES[0] <= c <= _SURROGATES[1] else c for c in text)


# The surrogate range, written as code points: a compiled build (setup.py) refuses them as
# literals.
_SURROGATES: Final = (chr(0xD800), chr(0xDFFF))


def scalar_text(value: object, limits: Limits) -> str | None:
    """The inspectable text of a scalar, truncated; None for containers and nulls."""
    if isinstance(value, str):
        text = clean_text(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value[: limits.max_string_length * 4]).decode("utf-8", "replace")
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = str(value)
    else:
        return None
    if len(text) > limits.max_string_length:
        text = text[: limits.max_string_length]
    return text


def resolve_key_path(value: object, key_path: Sequence[str | int]) -> tuple[bool, object]:
    """Follow `key_path` into nested mappings and sequences; (found, target)."""
    if len(key_path) == 1 and type(value) is dict and type(key_path[0]) is str:
        # One header, one parameter: the common case, found or not by one lookup.
        name = key_path[0]
        return (True, value[name]) if name in value else (False, None)
    current = value
    for key in key_path:
        if isinstance(current, Mapping):
            if key not in current:
                if isinstance(key, int) and str(key) in current:
                    key = str(key)
                else:
                    return False, None
            current = current[key]
        elif isinstance(current, list | tuple) and isinstance(key, int):
            if not -len(current) <= key < len(current):
                return False, None
            current = current[key]
        else:
            return False, None
    return True, current


def walk_values(
    value: object, limits: Limits, prefix: KeyPath = (), depth: int = 0
) -> list[tuple[KeyPath, str]]:
    """(key_path, text) for every scalar under `value`, within the limits, in document order.

    Built as a list by one recursive helper rather than nested generators: this runs for every
    address of every request, and the common shapes ({name: str}, {name: [str]}) take the
    short path without a call per value.
    """
    found: list[tuple[KeyPath, str]] = []
    max_size, max_depth, max_length = (
        limits.max_container_size, limits.max_container_depth, limits.max_string_length
    )
    if not prefix and type(value) is dict and len(value) <= max_size and max_depth > 2:
        flat = _flat_mapping(value, max_length)
        if flat is not None:
            return flat

    def visit(node: object, prefix: KeyPath, depth: int) -> None:
        # Concrete types first: JSON bodies are dicts, lists, str, int, float, bool, None,
        # and the abstract-class checks below cost several times more.
        kind = type(node)
        if kind is str:
            text = cast(str, node)
            if not text.isascii():
                text = clean_text(text)
            found.append((prefix, text if len(text) <= max_length else text[:max_length]))
            return
        if kind is dict or kind is list:
            pass
        elif kind is int or kind is float:
            text = str(node)
            found.append((prefix, text if len(text) <= max_length else text[:max_length]))
            return
        elif node is None:
            return
        else:
            scalar = scalar_text(node, limits)
            if scalar is not None:
                found.append((prefix, scalar))
                return
        if depth >= max_depth:
            return
        if kind is dict or (kind is not list and isinstance(node, Mapping)):
            for count, (key, item) in enumerate(node.items()):  # type: ignore[attr-defined]
                if count >= max_size:
                    return
                if not (type(key) is str and key.isascii() and len(key) <= max_length):
                    key = _key_text(key, limits)
                path = (*prefix, key)
                if type(item) is str:
                    if not item.isascii():
                        item = clean_text(item)
                    found.append((path, item if len(item) <= max_length else item[:max_length]))
                elif type(item) is list and depth + 1 < max_depth:
                    # {name: [values]}, the shape of query strings, forms and cookies
                    for index, element in enumerate(item[:max_size]):
                        if type(element) is str:
                            if not element.isascii():
                                element = clean_text(element)
                            if len(element) > max_length:
                                element = element[:max_length]
                            found.append(((*path, index), element))
                        else:
                            visit(element, (*path, index), depth + 2)
                else:
                    visit(item, path, depth + 1)
        elif kind is list or isinstance(node, tuple):
            for index, item in enumerate(node[:max_size]):  # type: ignore[index]
                if type(item) is str:
                    if not item.isascii():
                        item = clean_text(item)
                    text = item if len(item) <= max_length else item[:max_length]
                    found.append(((*prefix, index), text))
                else:
                    visit(item, (*prefix, index), depth + 1)

    visit(value, prefix, depth)
    return found


def _flat_mapping(
    value: dict[object, object], max_length: int
) -> list[tuple[KeyPath, str]] | None:
    """The common shapes, {name: text} (headers) and {name: [texts]} (query, form, cookies),
    walked without a call per value; None for anything else, which takes the general walk."""
    found: list[tuple[KeyPath, str]] = []
    append = found.append
    for key, item in value.items():
        if type(key) is not str or not key.isascii() or len(key) > max_length:
            return None
        if type(item) is str:
            if item.isascii() and len(item) <= max_length:
                append(((key,), item))
            else:
                return None
        elif type(item) is list and len(item) <= 8:
            for index, element in enumerate(item):
                if type(element) is not str or not element.isascii() or len(element) > max_length:
                    return None
                append(((key, index), element))
        else:
            return None
    return found


class FlatPaths(Sequence[KeyPath]):
    """The key paths of a flat mapping's entries, `(key, *tail)` each, made only when asked
    for: most runs never need a path. `tail` is `(0,)` for {name: [text]} mappings."""

    __slots__ = ("keys", "tail")

    def __init__(self, keys: list[str], tail: KeyPath = ()) -> None:
        self.keys = keys
        self.tail = tail

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> KeyPath: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[KeyPath]: ...
    def __getitem__(self, index: int | slice) -> KeyPath | Sequence[KeyPath]:
        if isinstance(index, slice):
            return [(key, *self.tail) for key in self.keys[index]]
        return (self.keys[index], *self.tail)

    def under(self, key_path: KeyPath) -> list[int]:
        """Indexes of the entries at or below `key_path` (keys are unique)."""
        if not key_path:
            return list(range(len(self.keys)))
        name = key_path[0]
        if name not in self.keys or (name, *self.tail)[: len(key_path)] != key_path:
            return []
        return [self.keys.index(name)]


# What `value_texts` finds under an address: (key paths, texts, the texts joined by newlines,
# the mapping's names when it is a flat mapping of texts (then they are all of `keys_of`), the
# names joined by newlines, and for other shapes the (key paths, keys) of the same walk when
# keys were wanted).
Texts = tuple[Sequence[KeyPath], list[str], str, "list[str] | None", str,
              "tuple[Sequence[KeyPath], list[str]] | None"]


def value_texts(value: object, limits: Limits, want_keys: bool = False) -> Texts:
    """`walk_values` as lists, with the common shapes taken without a tuple per value: a
    scalar text (method, URI), {name: text} (headers), {name: [texts]} (query); anything else
    (a JSON body) in one walk with lazy key paths that also collects the keys when wanted."""
    max_length = limits.max_string_length
    if type(value) is str:
        if value.isascii() and len(value) <= max_length:
            return [()], [value], value, None, "", None
    elif type(value) is dict and len(value) <= limits.max_container_size and (
        limits.max_container_depth > 2
    ):
        names = _ascii_names(value, max_length)
        if names is not None:
            flat = _flat_texts(value, names, max_length)
            if flat is not None:
                return (*flat, names, "\n".join(names), None)
    paths, texts, key_paths, keys = tree_texts(value, limits, want_keys)
    return paths, texts, "\n".join(texts), None, "", (key_paths, keys) if want_keys else None


def _flat_texts(
    value: dict[object, object], names: list[str], max_length: int
) -> tuple[Sequence[KeyPath], list[str], str] | None:
    """{name: text} and {name: [text]} by whole-list operations, other {name: [texts]} by
    `_flat_lists`; None for anything else."""
    items = list(value.values())
    tail: KeyPath = ()
    if items and type(items[0]) is list:
        # {name: [text]}, one text per name: query strings, forms and cookies, mostly.
        lists: list[list[object]] = items  # type: ignore[assignment]  # all lists, just seen
        if set(map(type, items)) != {list} or set(map(len, lists)) != {1}:
            return _flat_lists(value, max_length)
        items = list(map(itemgetter(0), lists))
        tail = (0,)
    try:
        joined = "\n".join(items)  # type: ignore[arg-type]
    except TypeError:  # not all texts
        return None if tail else _flat_lists(value, max_length)
    texts: list[str] = items  # type: ignore[assignment]  # all texts: join accepted them
    if (joined.isascii() or is_clean(joined)) and (
            len(joined) <= max_length or max(map(len, texts)) <= max_length):
        return FlatPaths(names, tail), texts, joined
    return None


def is_clean(text: str) -> bool:
    """Whether `text` is valid Unicode as it is (no lone surrogate; see `clean_text`): a
    search in French or Japanese takes the flat path as an English one does."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ascii_names(value: dict[object, object], max_length: int) -> list[str] | None:
    """The keys of `value` when all are ASCII texts within the length limit."""
    names = list(value)
    try:
        joined = "".join(names)  # type: ignore[arg-type]
    except TypeError:
        return None
    strings: list[str] = names  # type: ignore[assignment]  # all texts: join accepted them
    if joined.isascii() and (len(joined) <= max_length or max(map(len, strings)) <= max_length):
        return strings
    return None


def _flat_lists(
    value: dict[object, object], max_length: int
) -> tuple[list[KeyPath], list[str], str] | None:
    """{name: [texts]}, the shape of query strings, forms and cookies, in one loop."""
    paths: list[KeyPath] = []
    texts: list[str] = []
    for key, item in value.items():
        name = cast(str, key)
        if type(item) is list and len(item) == 1:  # one value per name, the usual case
            element = item[0]
            if type(element) is not str or len(element) > max_length or not (
                    element.isascii() or is_clean(element)):
                return None
            paths.append((name, 0))
            texts.append(element)
        elif type(item) is str:
            if len(item) > max_length or not (item.isascii() or is_clean(item)):
                return None
            paths.append((name,))
            texts.append(item)
        elif type(item) is list and len(item) <= 8:
            for index, element in enumerate(item):
                if type(element) is not str or len(element) > max_length or not (
                        element.isascii() or is_clean(element)):
                    return None
                paths.append((name, index))
                texts.append(element)
        else:
            return None
    return paths, texts, "\n".join(texts)


def key_texts(value: object, limits: Limits) -> tuple[Sequence[KeyPath], list[str]]:
    """`keys_of` as (key paths, keys), flat mappings of texts without a tuple per key."""
    if type(value) is dict and len(value) <= limits.max_container_size and (
        limits.max_container_depth > 2
    ):
        names = _ascii_names(value, limits.max_string_length)
        if names is not None and all(
            type(item) is str or (type(item) is list and all(type(e) is str for e in item))
            for item in value.values()
        ):
            return FlatPaths(names), names
    items = keys_of(value, limits)
    return [path for path, _ in items], [text for _, text in items]


def keys_of(value: object, limits: Limits) -> list[tuple[KeyPath, str]]:
    """(key_path, key) for every mapping key under `value`, within the limits; flat mappings
    of texts (headers, query strings, forms, cookies) without a generator per level."""
    if (
        type(value) is dict and len(value) <= limits.max_container_size
        and limits.max_container_depth > 2
        and all(
            type(key) is str and key.isascii() and len(key) <= limits.max_string_length
            and (type(item) is str or (type(item) is list and all(type(e) is str for e in item)))
            for key, item in value.items()
        )
    ):
        return [((key,), key) for key in value]
    return list(walk_keys(value, limits))


# Types that are never containers: the abstract-class checks are skipped for them.
_SCALARS: Final = frozenset({str, int, float, bool, type(None), bytes})


def walk_keys(
    value: object, limits: Limits, prefix: KeyPath = (), depth: int = 0
) -> Iterator[tuple[KeyPath, str]]:
    """Yield (key_path, key) for every mapping key under `value`, within the limits."""
    found: list[tuple[KeyPath, str]] = []
    max_size, max_depth, max_length = (
        limits.max_container_size, limits.max_container_depth, limits.max_string_length
    )

    def visit(node: object, prefix: KeyPath, depth: int) -> None:
        # One list built by recursion, not generators nested per level: a JSON body walks
        # its keys on every request.
        if depth >= max_depth:
            return
        kind = type(node)
        if kind is dict or (kind is not list and isinstance(node, Mapping)):
            for count, (key, item) in enumerate(node.items()):  # type: ignore[attr-defined]
                if count >= max_size:
                    return
                if type(key) is str and key.isascii() and len(key) <= max_length:
                    name = key
                else:
                    name = _key_text(key, limits)
                path = (*prefix, name)
                found.append((path, name))
                kind = type(item)
                if kind is dict or kind is list or (
                    kind not in _SCALARS and isinstance(item, Mapping | tuple)
                ):
                    visit(item, path, depth + 1)
        elif kind is list or isinstance(node, tuple):
            for index, item in enumerate(node[:max_size]):  # type: ignore[index]
                kind = type(item)
                if kind is dict or kind is list or (
                    kind not in _SCALARS and isinstance(item, Mapping | tuple)
                ):
                    visit(item, (*prefix, index), depth + 1)

    visit(value, prefix, depth)
    return iter(found)


def _key_text(key: object, limits: Limits) -> str:
    text = scalar_text(key, limits)
    return text if text is not None else clean_text(str(key)[: limits.max_string_length])


class TreePaths(Sequence[KeyPath]):
    """The key paths of a tree walk's items, made only when asked for: each item names a node,
    each node its parent and its key. A JSON body's walk would otherwise build a tuple per
    value and per level, and most runs never look at a path."""

    __slots__ = ("_items", "_keys", "_parents")

    def __init__(self, items: list[int], parents: list[int], keys: list[str | int]) -> None:
        self._items = items
        self._parents = parents
        self._keys = keys

    def __len__(self) -> int:
        return len(self._items)

    def first_key(self, index: int) -> str | int | None:
        """The first key of item `index`'s path (None for the root itself)."""
        parents, node = self._parents, self._items[index]
        while node > 0 and parents[node] > 0:
            node = parents[node]
        return self._keys[node] if node > 0 else None

    def subset(self, indexes: list[int]) -> TreePaths:
        """The paths of some of the items, in the order given."""
        items = self._items
        return TreePaths([items[i] for i in indexes], self._parents, self._keys)

    def _path(self, node: int) -> KeyPath:
        parents, keys = self._parents, self._keys
        path: list[str | int] = []
        while node > 0:
            path.append(keys[node])
            node = parents[node]
        path.reverse()
        return tuple(path)

    @overload
    def __getitem__(self, index: int) -> KeyPath: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[KeyPath]: ...
    def __getitem__(self, index: int | slice) -> KeyPath | Sequence[KeyPath]:
        if isinstance(index, slice):
            return [self._path(node) for node in self._items[index]]
        return self._path(self._items[index])


def tree_texts(
    value: object, limits: Limits, want_keys: bool
) -> tuple[TreePaths, list[str], TreePaths, list[str]]:
    """`walk_values` and, when `want_keys`, `walk_keys` in one walk, with lazy key paths:
    (value paths, values, key paths, keys), in document order and within the same limits."""
    walk = _TreeWalk(limits, want_keys)
    if not walk.leaf(value, 0):
        walk.visit(value, 0, 0)
    return (TreePaths(walk.value_nodes, walk.parents, walk.node_keys), walk.values,
            TreePaths(walk.key_nodes, walk.parents, walk.node_keys), walk.keys)


class _TreeWalk:
    """The state of one `tree_texts` walk. A class rather than closures: compiled (setup.py),
    its attributes are plain fields, and dicts and lists typed as such iterate natively."""

    def __init__(self, limits: Limits, want_keys: bool) -> None:
        self.limits = limits
        self.want_keys = want_keys
        self.max_size = limits.max_container_size
        self.max_depth = limits.max_container_depth
        self.max_length = limits.max_string_length
        self.parents: list[int] = [-1]  # node 0 is the root, whose path is ()
        self.node_keys: list[str | int] = [""]
        self.value_nodes: list[int] = []
        self.values: list[str] = []
        self.key_nodes: list[int] = []
        self.keys: list[str] = []

    def leaf(self, node: object, at: int) -> bool:
        """Record a scalar; False for a container (or anything else to descend into)."""
        kind = type(node)
        if kind is str:
            text = cast(str, node)
            if not text.isascii():
                text = clean_text(text)
        elif kind is int or kind is float:
            text = str(node)
        elif kind is dict or kind is list:
            return False
        elif node is None:
            return True
        else:
            scalar = scalar_text(node, self.limits)
            if scalar is None:
                return False
            text = scalar
        self.value_nodes.append(at)
        self.values.append(text if len(text) <= self.max_length else text[: self.max_length])
        return True

    def item(self, item: object, at: int, key: str | int, depth: int) -> None:
        """One entry of a container: a new node under `at`, its text or what it holds.
        Texts, most of a JSON body, are recorded inline: a call per leaf would cost more."""
        child = len(self.parents)
        self.parents.append(at)
        self.node_keys.append(key)
        if type(item) is str and item.isascii():
            self.value_nodes.append(child)
            self.values.append(item if len(item) <= self.max_length else item[: self.max_length])
            return
        kind = type(item)
        if kind is dict or kind is list or not self.leaf(item, child):
            self.visit(item, child, depth + 1)

    def visit(self, node: object, at: int, depth: int) -> None:
        if depth >= self.max_depth:
            return
        kind = type(node)
        if kind is dict:
            mapping = cast(dict[object, object], node)
            pairs = mapping.items() if len(mapping) <= self.max_size else list(
                islice(mapping.items(), self.max_size))
            for key, item in pairs:
                self.entry(key, item, at, depth)
        elif kind is not list and isinstance(node, Mapping):
            for key, item in islice(node.items(), self.max_size):
                self.entry(key, item, at, depth)
        elif kind is list:
            sequence = cast(list[object], node)
            if len(sequence) > self.max_size:
                sequence = sequence[: self.max_size]
            for index, item in enumerate(sequence):
                self.item(item, at, index, depth)
        elif isinstance(node, tuple):
            for index, item in enumerate(node[: self.max_size]):
                self.item(item, at, index, depth)

    def entry(self, key: object, item: object, at: int, depth: int) -> None:
        """One key and value of a mapping."""
        if type(key) is str and key.isascii() and len(key) <= self.max_length:
            name: str = key
        else:
            name = _key_text(key, self.limits)
        if self.want_keys:
            self.key_nodes.append(len(self.parents))
            self.keys.append(name)
        self.item(item, at, name, depth)
