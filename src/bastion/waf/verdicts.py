"""Remembered clean verdicts: request parts that came out clean need no second look.

Browsers send the same user agent, accept headers, host and cookie names on request after
request; a run that matches no value proves that each of its (address, name, text) parts
matches no condition of any rule, so later runs on the same Ruleset can skip those parts. Flat
parts are remembered whole (a scalar address, or one entry of a {name: text} or {name: [text]}
mapping): their verdict depends on nothing else. Nested values (a JSON body) are remembered
text by text (`Leaves`), except under a key some rule reads by key path. A part is remembered
only from a run with no active exclusion, no timeout and no error, where every rule looked at
it and none matched it (the engine's `_remember_clean`: an attack in one query parameter
leaves the headers and the other parameters remembered); matches on whole addresses
(`exists`, the exploit checks) read the store, not the parts, and do not count.

A nested address parsed from raw bytes (a JSON, form or XML body) may come with a digest of
those bytes under a companion address (`DIGEST_ADDRESSES`): the same bytes parse to the same
value, so a body sent again as it was (an API client polling, a retry, a persisted GraphQL
query) is known clean whole, without walking it. It is remembered under the same condition as
its texts: the run matched none of it. The digest is BLAKE2b over the content type and the
bytes, 128 bits: no one can make a hostile body share the digest of a clean one.

Verdicts belong to one Ruleset: a rule or data update makes a new Ruleset and an empty memory.
Deny-list data only ever expires, so a part clean under it stays clean. The memory is bounded by
entries and by text length; when full it starts over, so a flood of unique values costs the
speed-up, never memory or correctness.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Set
from typing import Final

# What one run may remember: (address, its text) for a scalar address, or (address, entries)
# for a mapping, each entry (name, text) or (name, (texts...)) for {name: [texts]}: the two
# shapes reach rules under different key paths, so they are different entries.
Fresh = tuple[str, "str | Iterable[Hashable]"]

# Nested addresses that may come with the digest of the bytes they were parsed from, and the
# companion address that carries it (see the module's docstring and `bastion.addresses`).
DIGEST_ADDRESSES: Final = {"server.request.body": "server.request.body.digest"}

DEFAULT_CAPACITY: Final = 8192
DEFAULT_MAX_LENGTH: Final = 512


class CleanParts:
    """A bounded memory of parts that matched nothing, by address. Safe to share between
    threads: lookups and additions are single set operations, atomic under the GIL, and a
    reset swaps in a new mapping."""

    __slots__ = ("_capacity", "_digests", "_leaves", "_max_items", "_max_length", "_seen",
                 "_size")

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, max_length: int = DEFAULT_MAX_LENGTH,
        max_items: int = 256,
    ) -> None:
        self._capacity = capacity
        self._max_length = max_length
        # A mapping larger than the engine's container limit is not read whole: its parts
        # past the limit were never looked at, so none of it is remembered.
        self._max_items = max_items
        self._seen: dict[str, set[Hashable]] = {}
        # Texts of nested values (a JSON body's leaves and keys) found clean, by address:
        # (values, keys). See `Leaves`.
        self._leaves: dict[str, tuple[set[str], set[str]]] = {}
        # Digests of the raw bytes of nested values found clean whole, by address.
        self._digests: dict[str, set[bytes]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def split(self, address: str, value: object, fresh: list[Fresh]) -> object | None:
        """`value` without its remembered clean parts (None when nothing is left); what it
        still has that could be remembered is appended to `fresh`."""
        if not self._capacity:
            return value
        seen = self._seen.get(address)
        if type(value) is str:
            if seen is not None and value in seen:
                return None
            if len(value) <= self._max_length:
                fresh.append((address, value))
            return value
        if type(value) is not dict or len(value) > self._max_items:
            return value
        entries: Iterable[Hashable] = value.items()
        if type(next(iter(value.values()), None)) is list:  # {name: [texts]}
            entries = [(name, tuple(item)) for name, item in value.items()
                       if type(item) is list]
            if len(entries) != len(value):
                return value
        try:  # one set operation over all the entries
            known = (seen or set()).intersection(entries)
        except TypeError:  # something unhashable: not a flat mapping of texts
            return value
        if not known:
            fresh.append((address, entries))
            return value
        if len(known) == len(value):
            return None
        fresh.append((address, [entry for entry in entries if entry not in known]))
        if entries is value.items():
            return {name: item for name, item in value.items() if (name, item) not in known}
        return {
            name: item for (name, item), entry in zip(value.items(), entries, strict=True)
            if entry not in known
        }

    def knows_digest(self, address: str, digest: bytes) -> bool:
        """Whether the value of `address` parsed from bytes of this digest was found clean."""
        known = self._digests.get(address)
        return known is not None and digest in known

    def remember_digests(self, found: list[tuple[str, bytes]]) -> None:
        """Add the digests of nested values a run found clean whole."""
        if not self._capacity or not found:
            return
        self._make_room(len(found))
        for address, digest in found:
            known = self._digests.get(address)
            if known is None:
                known = self._digests[address] = set()
            if digest not in known:
                known.add(digest)
                self._size += 1

    def leaves(self, address: str, sensitive: frozenset[str | int]) -> Leaves | None:
        """What is known of `address`'s nested texts, for `AddressPlan.read` to leave out and
        to add to (None when nothing may be remembered)."""
        if not self._capacity:
            return None
        known = self._leaves.get(address)
        return Leaves(address, known or (set(), set()), sensitive, self._max_length)

    def remember_leaves(self, found: list[Leaves]) -> None:
        """Add the nested texts a run found clean (see the module's docstring)."""
        for leaves in found:
            added = len(leaves.fresh_values) + len(leaves.fresh_keys)
            if not added:
                continue
            self._make_room(added)
            known = self._leaves.get(leaves.address)
            if known is None:
                known = self._leaves[leaves.address] = (set(), set())
            before = len(known[0]) + len(known[1])
            known[0].update(leaves.fresh_values)
            known[1].update(leaves.fresh_keys)
            self._size += len(known[0]) + len(known[1]) - before

    def remember(self, fresh: list[Fresh]) -> None:
        """Add the parts a run found clean, leaving out long texts."""
        limit = self._max_length
        for address, part in fresh:
            if type(part) is str:
                added: list[Hashable] = [part]
            else:
                added = [entry for entry in part if _size(entry) <= limit]
            if not added:
                continue
            self._make_room(len(added))
            seen = self._seen.get(address)
            if seen is None:
                seen = self._seen[address] = set()
            before = len(seen)
            seen.update(added)
            self._size += len(seen) - before


    def _make_room(self, added: int) -> None:
        """Full, the memory starts over (see the module's docstring)."""
        if self._size + added > self._capacity:
            self._seen, self._leaves, self._digests, self._size = {}, {}, {}, 0


def settled_parts(
    fresh: list[Fresh], unsettled: Set[str], implicated: Mapping[str, Set[object]]
) -> list[Fresh]:
    """The parts of `fresh` a run with a value match still proves clean (the engine's
    `_remember_clean`): none of an `unsettled` address, and of a mapping whose entry names
    are `implicated`, its other entries."""
    kept: list[Fresh] = []
    for address, part in fresh:
        if address in unsettled:
            continue
        names = implicated.get(address)
        if names is None:
            kept.append((address, part))
        elif type(part) is not str:  # entries (name, text) or (name, (texts...))
            entries = [
                entry for entry in part
                if type(entry) is tuple and entry and entry[0] not in names
            ]
            if entries:
                kept.append((address, entries))
    return kept


def _size(entry: Hashable) -> int:
    """Characters of an entry, or more than any limit when it holds anything but texts."""
    name: object
    item: object
    name, item = entry  # type: ignore[misc]  # entries are pairs, see Fresh
    if type(name) is not str:
        return 1 << 30
    if type(item) is str:
        return len(name) + len(item)
    if type(item) is tuple and all(type(text) is str for text in item):
        return len(name) + sum(len(text) for text in item)
    return 1 << 30  # numbers, None...: rare, and left to the engine every time


class Leaves:
    """One run's view of the remembered texts of one nested address (a JSON body).

    A leaf's verdict depends on its text alone, as long as no rule reads it under a key path:
    leaves under the first key of such a path (`sensitive`) are never left out nor
    remembered. `AddressPlan.read` drops the known texts and lists the new ones in `fresh_*`.
    """

    __slots__ = ("address", "fresh_keys", "fresh_values", "known_keys", "known_values",
                 "max_length", "sensitive")

    def __init__(self, address: str, known: tuple[set[str], set[str]],
                 sensitive: frozenset[str | int], max_length: int) -> None:
        self.address = address
        self.known_values, self.known_keys = known
        self.sensitive = sensitive
        self.max_length = max_length
        self.fresh_values: list[str] = []
        self.fresh_keys: list[str] = []
