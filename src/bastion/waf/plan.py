"""The evaluation plan: rules regrouped by the values they inspect.

Rules are written one by one, but they mostly look at the same few addresses through the same
few transformer chains. The plan inverts them: for each (address, transformer chain, keys or
values) it keeps one lane holding one compiled pattern set for all pattern operators, the value
operators, and for each pattern which rule conditions it decides. At run time each value is
transformed once per lane and scanned once, however many rules read it.
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
    address: str
    transformers: tuple[str, ...]
    keys_only: bool
    chain: Transformer | None
    patterns: PatternSet | None = None
    pattern_refs: dict[int, list[ConditionRef]] = field(default_factory=dict)
    value_ops: list[tuple[ValueOperator, ConditionRef]] = field(default_factory=list)


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
    """Lanes by address. Lanes with the same chain share one compiled pattern set."""
    lanes: dict[tuple[str, tuple[str, ...], bool], Lane] = {}
    shared: dict[tuple[tuple[str, ...], bool], _SharedSet] = {}
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
                if isinstance(operator, PatternOperator):
                    group = shared.setdefault((target.transformers, target.keys_only), _SharedSet())
                    index = group.add(operator.pattern)
                    lane.pattern_refs.setdefault(index, []).append(ref)
                else:
                    lane.value_ops.append((operator, ref))
    compiled = {key: cache.get(group.patterns) for key, group in shared.items()}
    by_address: dict[str, list[Lane]] = {}
    for (address, transformers, keys_only), lane in lanes.items():
        if lane.pattern_refs:
            lane.patterns = compiled[(transformers, keys_only)]
        by_address.setdefault(address, []).append(lane)
    return by_address
