"""The evaluation plan: rules regrouped by the values they inspect, once per Ruleset.

Rules are written one by one, but they mostly look at the same few addresses through the same
few transformer chains. The plan inverts them:
- a *lane* per (address, transformer chain, keys or values) knows which rule conditions each
  pattern decides, and runs each value operator once, grouped by key path;
- an *address plan* per address knows its lanes and the distinct ways they read the address
  (its *variants*: keys or values, through one chain), so a run walks an address once per kind
  and transforms each value once per chain, and most often not at all (see
  transformers.Chain);
- addresses whose rule patterns are nearly the same share a *scan group*, one compiled pattern
  set that a run scans their values with in one call; an address with patterns of its own
  (headers) gets its own set, so its bytes meet only the patterns that concern them;
- detector triggers share one line scanner, which tells each detector the values it needs to
  see (see operators.Detector).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import ne
from typing import Final

from bastion.waf.document import KeyPath, Rule, Target
from bastion.waf.limits import (
    FlatPaths,
    Limits,
    TreePaths,
    key_texts,
    resolve_key_path,
    value_texts,
)
from bastion.waf.operators import PatternOperator, ValueOperator
from bastion.waf.patterns import LineScanner, Pattern, PatternSet
from bastion.waf.transformers import TRANSFORMERS, Chain, Transformer, make_values_chain
from bastion.waf.verdicts import CleanParts, Leaves

# An address joins a scan group when neither it nor the group would scan more than this many
# times the patterns of its own: scanning costs by pattern and by byte, a call costs by call.
_GROUP_GROWTH: Final = 1.2


@dataclass(frozen=True)
class ConditionRef:
    """Which condition of which rule a hit satisfies, and under which key path."""

    rule: int
    condition: int
    key_path: KeyPath
    min_length: int


# Owners of raw texts in AddressView.owner (variants are numbered from 0).
RAW_VALUE, RAW_KEY = -1, -2

# A value operator as the engine walks it: (operator, its trigger's index in the plan's line
# scanner or None, key path, the conditions it decides under that path, whether any has a
# minimum length).
OpGroup = tuple[ValueOperator, "int | None", KeyPath, list[ConditionRef], bool]


@dataclass
class Lane:
    """Everything the rules ask of one address seen through one transformer chain."""

    address: str
    transformers: tuple[str, ...]
    keys_only: bool
    variant: int = 0  # which of its address plan's variants it reads
    # Conditions decided by each pattern, by the pattern's index in the scan group's set.
    pattern_refs: dict[int, list[ConditionRef]] = field(default_factory=dict)
    pattern_ids: frozenset[int] = frozenset()
    pattern_paths: dict[int, tuple[KeyPath, ...]] = field(default_factory=dict)  # distinct
    # Each value operator once, with every condition it decides: rules that share a detector
    # on the same values cost one call per value, not one per rule.
    value_ops: list[tuple[ValueOperator, list[ConditionRef]]] = field(default_factory=list)
    _op_index: dict[object, int] = field(default_factory=dict, repr=False)
    op_groups: list[OpGroup] = field(default_factory=list)
    # Patterns recorded by `Lane` before the plan knew the scan groups.
    _pending: dict[Pattern, list[ConditionRef]] = field(default_factory=dict, repr=False)

    @property
    def ordered(self) -> bool:
        """Whether matches on this lane are recorded in chain order (see the engine)."""
        return bool(self.pattern_refs) or any(op.trigger is not None for op, _ in self.value_ops)

    def add_value_op(self, operator: ValueOperator, ref: ConditionRef) -> None:
        position = self._op_index.get(operator.share_key)
        if position is None:
            self._op_index[operator.share_key] = len(self.value_ops)
            self.value_ops.append((operator, [ref]))
        else:
            self.value_ops[position][1].append(ref)

    def group_value_ops(self, triggers: dict[Pattern, int]) -> None:
        """Build `op_groups` once the lane is complete, so runs need not regroup."""
        self.op_groups = []
        for operator, refs in self.value_ops:
            by_path: dict[KeyPath, list[ConditionRef]] = {}
            for ref in refs:
                by_path.setdefault(ref.key_path, []).append(ref)
            trigger = triggers.get(operator.trigger) if operator.trigger is not None else None
            for key_path, path_refs in by_path.items():
                sized = any(ref.min_length for ref in path_refs)
                # A trigger saves calls on many values; under a key path (one header) there
                # are few, and the detector looks at them directly.
                self.op_groups.append(
                    (operator, None if key_path else trigger, key_path, path_refs, sized)
                )


@dataclass(frozen=True)
class Variant:
    """One way a run reads an address: its keys or its values, through one chain."""

    keys_only: bool
    chain: Chain | None


@dataclass
class ScanGroup:
    """Addresses scanned together: one pattern set for all their rule patterns."""

    index: int
    patterns: PatternSet
    # Patterns every condition of which reads one key path (one header, say): a hit is
    # looked for only under those paths, not value by value across the group.
    keyed: frozenset[int] = frozenset()


@dataclass
class AddressPlan:
    """How a run reads one address: its lanes, its variants, its scan group."""

    address: str
    lanes: list[Lane]
    variants: list[Variant]
    group: ScanGroup | None
    reads_values: bool
    reads_keys: bool
    # The lanes with value operators. A run evaluates an operator group `(lane, group)` (by
    # position in `op_lanes` and in the lane's `op_groups`) on every value when it has no
    # trigger (`untriggered`), else only on the values of its variant its trigger reported:
    # `triggered[variant][trigger]` lists the groups to run then.
    op_lanes: list[Lane] = field(default_factory=list)
    untriggered: tuple[tuple[int, int], ...] = ()
    triggered: dict[int, dict[int, list[tuple[int, int]]]] = field(default_factory=dict)
    # The same by kind, for runs where no chain changed a text: (keys, the `triggered` entries
    # of the variants of that kind).
    trigger_users: tuple[tuple[bool, tuple[dict[int, list[tuple[int, int]]], ...]], ...] = ()

    # First keys of the key paths any lane reads this address under: what lies beneath them
    # is never left out as known clean (see verdicts.Leaves).
    sensitive_keys: frozenset[str | int] = frozenset()

    # Per variant, whether it reads keys; and (variant, keys, chain) of those with a chain.
    kinds: tuple[bool, ...] = field(init=False)
    chained: tuple[tuple[int, bool, Chain], ...] = field(init=False)
    # The chains of lanes with patterns or detector triggers, in lane order, among those that
    # read values (if any), keys (if any): the order in which pattern matches are recorded
    # (see the engine). Indexed by has_values + 2 * has_keys.
    chain_sequence: tuple[tuple[tuple[str, ...], ...], ...] = field(init=False)
    # Each operator group with its lane, by (lane position, group position): runs look them
    # up once instead of indexing twice.
    op_entries: dict[tuple[int, int], tuple[Lane, OpGroup]] = field(init=False)

    def __post_init__(self) -> None:
        self.kinds = tuple(variant.keys_only for variant in self.variants)
        self.op_entries = {
            (lane_position, group_position): (lane, group)
            for lane_position, lane in enumerate(self.op_lanes)
            for group_position, group in enumerate(lane.op_groups)
        }
        self.chained = tuple(
            (index, variant.keys_only, variant.chain)
            for index, variant in enumerate(self.variants) if variant.chain is not None
        )
        self.chain_sequence = tuple(
            tuple(dict.fromkeys(
                lane.transformers for lane in self.lanes
                if lane.ordered and (keys if lane.keys_only else values)
            ))
            for keys in (False, True) for values in (False, True)
        )

    def read(
        self, value: object, limits: Limits, memory: CleanParts | None = None,
        remembered: list[Leaves] | None = None,
    ) -> AddressView | None:
        """The address's values as every lane sees them; None when nothing is inspectable.
        With `memory`, the texts of a nested value it knows to be clean are left out, and
        the others are listed in a `Leaves` appended to `remembered`, to be remembered if the
        run finds nothing (see verdicts.Leaves)."""
        if type(value) is str and value.isascii() and len(value) <= limits.max_string_length:
            return self._read_text(value)
        value_paths: Sequence[KeyPath] = ()
        key_paths: Sequence[KeyPath] = ()
        values: list[str] = []
        keys: list[str] = []
        value_joined = key_joined = ""
        names = None
        tree_keys = None
        if self.reads_values:
            value_paths, values, value_joined, names, key_joined, tree_keys = value_texts(
                value, limits, self.reads_keys)
        if self.reads_keys:
            if names is not None:  # a flat mapping's names are all its keys
                key_paths, keys = FlatPaths(names), names
            elif tree_keys is not None:  # walked with the values
                key_paths, keys = tree_keys
                key_joined = "\n".join(keys)
            else:
                key_paths, keys = key_texts(value, limits)
                key_joined = "\n".join(keys)
        if memory is not None and isinstance(value_paths, TreePaths) and (
                leaves := memory.leaves(self.address, self.sensitive_keys)) is not None:
            if remembered is not None:
                remembered.append(leaves)
            sensitive = _sensitive_under(value, leaves.sensitive)
            value_paths, values = _unknown(value_paths, values, leaves.known_values,
                                           leaves.fresh_values, leaves, sensitive)
            value_joined = "\n".join(values)
            if isinstance(key_paths, TreePaths):
                key_paths, keys = _unknown(key_paths, keys, leaves.known_keys,
                                           leaves.fresh_keys, leaves, sensitive)
                key_joined = "\n".join(keys)
        if not values and not keys:
            return None
        # What the scan group must see: every raw text once, and the texts chains changed.
        scanned = value_joined if not keys else key_joined if not values else (
            f"{value_joined}\n{key_joined}"
        )
        if self.reads_keys:
            texts = list(map((values, keys).__getitem__, self.kinds))
        else:
            texts = [values] * len(self.kinds)
        extras: list[tuple[int, int]] = []
        for variant, keys_only, chain in self.chained:
            base = keys if keys_only else values
            own = chain.apply_all(base, key_joined if keys_only else value_joined)
            if own is not base:
                texts[variant] = own
                changed = list(compress(range(len(own)), map(ne, own, base)))
                scanned = "\n".join((scanned, *map(own.__getitem__, changed)))
                extras += zip(repeat(variant), changed)
        return AddressView(
            self, texts, scanned, (value_paths, key_paths), (values, keys),
            (value_joined, key_joined), extras,
        )


    def _read_text(self, text: str) -> AddressView:
        """`read` for the most common scalar, one ASCII text within the limits (the URI, the
        method): no walk, and each chain applied to the one text directly."""
        values = [text]
        texts = [[] if keys_only else values for keys_only in self.kinds]
        scanned = text
        extras: list[tuple[int, int]] = []
        for variant, keys_only, chain in self.chained:
            if keys_only:
                continue
            own = chain.apply(text)
            if own != text:
                texts[variant] = [own]
                scanned = f"{scanned}\n{own}"
                extras.append((variant, 0))
        return AddressView(self, texts, scanned, (_SCALAR_PATHS, ()), (values, []),
                           (text, ""), extras)


def _sensitive_under(value: object, sensitive: frozenset[str | int]) -> frozenset[str | int]:
    """The sensitive first keys (see `_unknown`) that `value` may have: none when it is a
    mapping of text keys without any of them, the usual JSON body. Then no text needs its
    path looked up."""
    if sensitive and type(value) is dict and all(type(key) is str for key in value):
        return frozenset() if sensitive.isdisjoint(value) else sensitive
    return sensitive


def _unknown(
    paths: TreePaths, texts: list[str], known: set[str], fresh: list[str], leaves: Leaves,
    sensitive: frozenset[str | int],
) -> tuple[TreePaths, list[str]]:
    """The texts (and their paths) not known to be clean; the new ones go to `fresh`. Texts
    under a first key some rule reads by key path (`sensitive`) are always kept and never
    remembered."""
    limit = leaves.max_length
    keep: list[int] = []
    for index, text in enumerate(texts):
        if sensitive and paths.first_key(index) in sensitive:
            keep.append(index)
        elif text not in known:
            keep.append(index)
            if len(text) <= limit:
                fresh.append(text)
    if len(keep) == len(texts):
        return paths, texts
    return paths.subset(keep), [texts[index] for index in keep]


# The key paths of a scalar address's one value.
_SCALAR_PATHS: Final[Sequence[KeyPath]] = ((),)


class AddressView:
    """One address as one run sees it: per variant of its plan, the texts its chain made of
    the raw texts (`raws`, of values and of keys, with their key paths in `paths`). Variants
    that transform no value share the very list of raw texts, which the engine takes as
    "same values".

    `scanned` holds each distinct text once, joined by newlines, for the scan group: the raw
    values, the raw keys, then the texts chains changed, whose (variant, index) `extras`
    lists in order."""

    __slots__ = (
        "_first_keys", "_lines", "extras", "paths", "plan", "raw_joined", "raws", "scanned",
        "texts",
    )

    def __init__(
        self, plan: AddressPlan, texts: list[list[str]], scanned: str,
        paths: tuple[Sequence[KeyPath], Sequence[KeyPath]], raws: tuple[list[str], list[str]],
        raw_joined: tuple[str, str], extras: list[tuple[int, int]],
    ) -> None:
        self.plan = plan
        self.texts = texts
        self.scanned = scanned
        self.paths = paths
        self.raws = raws
        self.raw_joined = raw_joined
        self.extras = extras
        self._first_keys: dict[int, dict[str | int, list[int]]] | None = None
        self._lines: list[tuple[int, int]] | None = None

    def owner(self, line: int) -> tuple[int, int]:
        """Whose text line `line` of `scanned` is: (RAW_VALUE, i) or (RAW_KEY, i) a raw
        text, (variant, i) text i of a variant whose chain changed it."""
        if self._lines is None:
            values, keys = self.raws
            owners = [(RAW_VALUE, i) for i in range(len(values))]
            owners += [(RAW_KEY, i) for i in range(len(keys))]
            owners += self.extras
            if self.scanned.count("\n") != len(owners) - 1:  # texts that hold newlines
                owners = [
                    owner for owner in owners
                    for _ in range(self.text_of(owner).count("\n") + 1)
                ]
            self._lines = owners
        return self._lines[line]

    def text_of(self, owner: tuple[int, int]) -> str:
        kind, index = owner
        if kind < 0:
            return self.raws[kind == RAW_KEY][index]
        return self.texts[kind][index]

    def line_count(self) -> int:
        return self.scanned.count("\n") + 1

    def shows(self, variant: int, owner: tuple[int, int]) -> bool:
        """Whether text `owner` is, as it is, text `owner[1]` of `variant`."""
        kind, index = owner
        if kind >= 0:
            return kind == variant
        keys_only = kind == RAW_KEY
        if self.plan.kinds[variant] != keys_only:
            return False
        texts, raws = self.texts[variant], self.raws[keys_only]
        return texts is raws or texts[index] == raws[index]

    def path(self, variant: int, index: int) -> KeyPath:
        return self.paths[self.plan.kinds[variant]][index]

    def raw(self, variant: int, index: int) -> str:
        return self.raws[self.plan.kinds[variant]][index]

    def under(self, variant: int, key_path: KeyPath) -> Sequence[int]:
        """Indexes of the values of `variant` at or below `key_path`."""
        paths = self.paths[self.plan.kinds[variant]]
        if not key_path:
            return range(len(paths))
        if isinstance(paths, FlatPaths):
            return paths.under(key_path)
        if self._first_keys is None:
            self._first_keys = {}
        by_first = self._first_keys.get(id(paths))
        if by_first is None:
            by_first = self._first_keys[id(paths)] = {}
            for index, path in enumerate(paths):
                if path:
                    by_first.setdefault(path[0], []).append(index)
        size = len(key_path)
        return [i for i in by_first.get(key_path[0], ()) if paths[i][:size] == key_path]


class PresenceCheck:
    """Where an `exists` condition looks, arranged for one lookup per address: the names of
    one-key paths (one header, say) as a set, other key paths as they are."""

    __slots__ = ("targets",)

    def __init__(self, targets: Sequence[Target]) -> None:
        by_address: dict[str, tuple[list[str], list[KeyPath]]] = {}
        for target in targets:
            names, paths = by_address.setdefault(target.address, ([], []))
            path = target.key_path
            if len(path) == 1 and isinstance(path[0], str):
                names.append(path[0])
            else:
                paths.append(path)
        self.targets = tuple(
            (address, frozenset(names), tuple(paths))
            for address, (names, paths) in by_address.items()
        )

    def holds(self, store: Mapping[str, object]) -> bool:
        """Whether any target is present in `store`."""
        for address, names, paths in self.targets:
            if address not in store:
                continue
            value = store[address]
            if names:
                if type(value) is dict:
                    if not names.isdisjoint(value):
                        return True
                elif any(resolve_key_path(value, (name,))[0] for name in names):
                    return True
            if any(resolve_key_path(value, path)[0] for path in paths):
                return True
        return False


class PatternCache:
    """Compiled pattern sets by content, so that a rule update recompiles only what changed."""

    def __init__(self) -> None:
        self._sets: dict[tuple[Pattern, ...], PatternSet] = {}
        self._lines: dict[tuple[Pattern, ...], LineScanner] = {}

    def get(self, patterns: Sequence[Pattern]) -> PatternSet:
        key = tuple(patterns)
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = PatternSet(key)
        return found

    def lines(self, patterns: Sequence[Pattern]) -> LineScanner:
        key = tuple(patterns)
        found = self._lines.get(key)
        if found is None:
            found = self._lines[key] = LineScanner(key)
        return found


@dataclass
class Plan:
    """The whole plan of a Ruleset."""

    addresses: dict[str, AddressPlan]
    groups: list[ScanGroup]
    triggers: LineScanner | None

    @property
    def lanes(self) -> dict[str, list[Lane]]:
        return {address: plan.lanes for address, plan in self.addresses.items()}


def build_plan(rules: Sequence[Rule], cache: PatternCache) -> Plan:
    lanes = _collect_lanes(rules)
    triggers, trigger_ids = _build_triggers(lanes, cache)
    by_address: dict[str, list[Lane]] = {}
    for lane in lanes:
        lane.group_value_ops(trigger_ids)
        by_address.setdefault(lane.address, []).append(lane)
    groups = _build_groups(by_address, cache)
    plans = {
        address: _address_plan(address, address_lanes, groups.get(address))
        for address, address_lanes in by_address.items()
    }
    return Plan(plans, list({id(g): g for g in groups.values()}.values()), triggers)


def _collect_lanes(rules: Sequence[Rule]) -> list[Lane]:
    """Lanes in the order rules first mention them. Conditions on a key path (one header, say)
    join the lane of their address: a lane per key path would cost more scans than finding
    the few values under the path."""
    lanes: dict[tuple[str, tuple[str, ...], bool], Lane] = {}
    for rule_index, rule in enumerate(rules):
        for condition_index, condition in enumerate(rule.conditions):
            operator = condition.operator
            if not isinstance(operator, PatternOperator | ValueOperator):
                continue
            for target in condition.targets:
                key = (target.address, target.transformers, target.keys_only)
                lane = lanes.get(key)
                if lane is None:
                    lane = lanes[key] = Lane(target.address, target.transformers, target.keys_only)
                ref = ConditionRef(rule_index, condition_index, target.key_path,
                                   operator.min_length)
                if isinstance(operator, PatternOperator):
                    lane._pending.setdefault(operator.pattern, []).append(ref)
                else:
                    lane.add_value_op(operator, ref)
    return list(lanes.values())


def _build_triggers(
    lanes: Sequence[Lane], cache: PatternCache
) -> tuple[LineScanner | None, dict[Pattern, int]]:
    """One line scanner for every detector trigger; a trigger Hyperscan refuses is left out,
    and its detector then sees every value."""
    patterns: dict[Pattern, int] = {}
    for lane in lanes:
        for operator, _ in lane.value_ops:
            if operator.trigger is not None:
                patterns.setdefault(operator.trigger, len(patterns))
    if not patterns:
        return None, {}
    scanner = cache.lines(list(patterns))
    return scanner, {p: i for p, i in patterns.items() if i in scanner.usable}


@dataclass
class _Forming:
    """A scan group while addresses join it."""

    addresses: list[str]
    union: dict[Pattern, None]
    smallest: int  # the fewest patterns any member has of its own

    def take(self, address: str, own: dict[Pattern, None]) -> bool:
        merged = len(self.union.keys() | own.keys())
        if merged > _GROUP_GROWTH * min(self.smallest, len(own)):
            return False
        self.addresses.append(address)
        self.union.update(own)
        self.smallest = min(self.smallest, len(own))
        return True


def _build_groups(
    by_address: dict[str, list[Lane]], cache: PatternCache
) -> dict[str, ScanGroup]:
    """Scan groups by address, and each lane's pattern references keyed by group index."""
    forming: list[_Forming] = []
    for address, lanes in by_address.items():
        own = dict.fromkeys(p for lane in lanes for p in lane._pending)
        if own and not any(group.take(address, own) for group in forming):
            forming.append(_Forming([address], own, len(own)))
    groups: dict[str, ScanGroup] = {}
    for number, group in enumerate(forming):
        built = ScanGroup(number, cache.get(list(group.union)))
        index = {pattern: i for i, pattern in enumerate(group.union)}
        anywhere: set[int] = set()
        for address in group.addresses:
            groups[address] = built
            for lane in by_address[address]:
                lane.pattern_refs = {index[p]: refs for p, refs in lane._pending.items()}
                lane.pattern_ids = frozenset(lane.pattern_refs)
                lane.pattern_paths = {
                    i: tuple(dict.fromkeys(ref.key_path for ref in refs))
                    for i, refs in lane.pattern_refs.items()
                }
                anywhere.update(
                    i for i, paths in lane.pattern_paths.items() if () in paths
                )
        built.keyed = frozenset(range(len(group.union))) - anywhere
    return groups


def _address_plan(address: str, lanes: list[Lane], group: ScanGroup | None) -> AddressPlan:
    # Lanes whose chains name the same functions (aliases) read the same variant.
    variants: dict[tuple[bool, tuple[Transformer, ...]], int] = {}
    built: list[Variant] = []
    for lane in lanes:
        key = (lane.keys_only, tuple(TRANSFORMERS[name] for name in lane.transformers))
        if key not in variants:
            variants[key] = len(variants)
            built.append(Variant(lane.keys_only, make_values_chain(lane.transformers)))
        lane.variant = variants[key]
    op_lanes = [lane for lane in lanes if lane.op_groups]
    untriggered: list[tuple[int, int]] = []
    triggered: dict[int, dict[int, list[tuple[int, int]]]] = {}
    for lane_position, lane in enumerate(op_lanes):
        for group_position, (_, trigger, _, _, _) in enumerate(lane.op_groups):
            if trigger is None:
                untriggered.append((lane_position, group_position))
            else:
                triggered.setdefault(lane.variant, {}).setdefault(trigger, []).append(
                    (lane_position, group_position)
                )
    sensitive = frozenset(
        path[0] for lane in lanes
        for path in (*(p for paths in lane.pattern_paths.values() for p in paths),
                     *(group[2] for group in lane.op_groups))
        if path
    )
    return AddressPlan(
        address, lanes, built, group,
        sensitive_keys=sensitive,
        reads_values=any(not v.keys_only for v in built),
        reads_keys=any(v.keys_only for v in built),
        op_lanes=op_lanes, untriggered=tuple(untriggered), triggered=triggered,
        trigger_users=tuple(
            (keys_only, users) for keys_only in (False, True)
            if (users := tuple(
                by_trigger for variant, by_trigger in triggered.items()
                if built[variant].keys_only == keys_only
            ))
        ),
    )
