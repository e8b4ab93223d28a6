"""The evaluation plan: rules regrouped by the values they inspect.

Rules are written one by one, but they mostly look at the same few addresses through the same
few transformer chains. The plan inverts them: for each (address, transformer chain, keys or
values) it keeps one lane holding the compiled pattern set its chain shares with other lanes,
which rule conditions each pattern decides, and the value operators (each once, grouped by
key path, with its detector trigger). At run time each value is transformed once per lane and
the values are scanned together, however many rules read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bastion.waf.document import KeyPath, Rule
from bastion.waf.operators import PatternOperator, ValueOperator
from bastion.waf.patterns import Pattern, PatternSet
from bastion.waf.transformers import Transformer, make_chain


@dataclass(frozen=True)
class ConditionRef:
    """Which condition of which rule a hit satisfies, and under which key path."""

    rule: int
    condition: int
    key_path: KeyPath
    min_length: int


@dataclass
class Lane:
    """Everything the rules ask of one address seen through one transformer chain."""

    address: str
    transformers: tuple[str, ...]
    keys_only: bool
    chain: Transformer | None
    patterns: PatternSet | None = None
    pattern_refs: dict[int, list[ConditionRef]] = field(default_factory=dict)
    # Each value operator once, with every condition it decides: rules that share a detector
    # on the same values cost one call per value, not one per rule.
    value_ops: list[tuple[ValueOperator, list[ConditionRef]]] = field(default_factory=list)
    _op_index: dict[object, int] = field(default_factory=dict, repr=False)

    # Pattern index of the trigger of value operator i, when it has one.
    triggers: dict[int, int] = field(default_factory=dict)
    # The value operators as the engine walks them: (operator, its trigger's pattern index or
    # None, key path, the conditions it decides under that path, whether any has a min length).
    op_groups: list[
        tuple[ValueOperator, int | None, KeyPath, list[ConditionRef], bool]
    ] = field(default_factory=list)

    def group_value_ops(self) -> None:
        """Build `op_groups` once the lane is complete, so runs need not regroup."""
        self.op_groups = []
        for position, (operator, refs) in enumerate(self.value_ops):
            by_path: dict[KeyPath, list[ConditionRef]] = {}
            for ref in refs:
                by_path.setdefault(ref.key_path, []).append(ref)
            trigger = self.triggers.get(position)
            for key_path, path_refs in by_path.items():
                sized = any(ref.min_length for ref in path_refs)
                self.op_groups.append((operator, trigger, key_path, path_refs, sized))

    def add_value_op(self, operator: ValueOperator, ref: ConditionRef) -> int | None:
        """Register the operator; returns its position when it is new to this lane."""
        position = self._op_index.get(operator.share_key)
        if position is None:
            self._op_index[operator.share_key] = len(self.value_ops)
            self.value_ops.append((operator, [ref]))
            return len(self.value_ops) - 1
        self.value_ops[position][1].append(ref)
        return None


class PatternCache:
    """Compiled pattern sets by content, so that a rule update recompiles only what changed."""

    def __init__(self) -> None:
        self._sets: dict[tuple[Pattern, ...], PatternSet] = {}

    def get(self, patterns: Sequence[Pattern]) -> PatternSet:
        key = tuple(patterns)
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = PatternSet(key)
        return found


@dataclass
class _SharedSet:
    patterns: list[Pattern] = field(default_factory=list)
    index: dict[Pattern, int] = field(default_factory=dict)

    def add(self, pattern: Pattern) -> int:
        if pattern not in self.index:
            self.index[pattern] = len(self.patterns)
            self.patterns.append(pattern)
        return self.index[pattern]


def build_lanes(rules: Sequence[Rule], cache: PatternCache) -> dict[str, list[Lane]]:
    """Lanes by address. Lanes with the same chain share one compiled pattern set. Conditions
    on a key path (one header, say) join the lane of their address: one more lane per key
    path would cost more than finding the few values under the path."""
    lanes: dict[tuple[str, tuple[str, ...], bool], Lane] = {}
    shared: dict[tuple[str, ...], _SharedSet] = {}
    for rule_index, rule in enumerate(rules):
        for condition_index, condition in enumerate(rule.conditions):
            operator = condition.operator
            if not isinstance(operator, PatternOperator | ValueOperator):
                continue
            for target in condition.targets:
                key = (target.address, target.transformers, target.keys_only)
                lane = lanes.get(key)
                if lane is None:
                    lane = lanes[key] = Lane(
                        target.address, target.transformers, target.keys_only,
                        make_chain(target.transformers),
                    )
                ref = ConditionRef(rule_index, condition_index, target.key_path,
                                   operator.min_length)
                group = shared.setdefault(target.transformers, _SharedSet())
                if isinstance(operator, PatternOperator):
                    index = group.add(operator.pattern)
                    lane.pattern_refs.setdefault(index, []).append(ref)
                else:
                    position = lane.add_value_op(operator, ref)
                    if position is not None and operator.trigger is not None:
                        lane.triggers[position] = group.add(operator.trigger)
    compiled = {
        key: cache.get(group.patterns) for key, group in shared.items() if group.patterns
    }
    by_address: dict[str, list[Lane]] = {}
    for (address, transformers, _), lane in lanes.items():
        lane.group_value_ops()
        if lane.pattern_refs or lane.triggers:
            lane.patterns = compiled[transformers]
        by_address.setdefault(address, []).append(lane)
    return by_address
