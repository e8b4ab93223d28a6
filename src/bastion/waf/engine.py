"""One request's evaluation: addresses in, events and actions out, within a deadline.

A `WafContext` is cheap to create and remembers what it has seen: addresses may arrive over
several `run()` calls (headers first, body later, sinks while the handler runs), each call only
inspects what is new, conditions matched earlier stay matched, and a rule fires at most once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.waf.document import Condition, Exclusion, KeyPath, Rule
from bastion.waf.exploits import detect_exploit
from bastion.waf.limits import keys_of, resolve_key_path, walk_keys, walk_values
from bastion.waf.operators import Exists, ExploitDetector, PatternOperator, ValueOperator
from bastion.waf.patterns import compile_re2
from bastion.waf.plan import ConditionRef, Lane
from bastion.waf.transformers import make_chain

if TYPE_CHECKING:
    from bastion.waf.ruleset import Ruleset

DEFAULT_TIMEOUT_US = 5000
_BLOCKING = ("block_request", "redirect_request")


@dataclass
class WafResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeout: bool = False
    duration_us: float = 0.0
    error: str | None = None  # an internal failure, already logged; the request goes on

    @property
    def blocking(self) -> bool:
        return any(kind in self.actions for kind in _BLOCKING)


@dataclass
class _Match:
    operator: str
    operator_value: str
    address: str
    key_path: KeyPath
    value: str
    highlight: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "operator_value": self.operator_value,
            "parameters": [
                {
                    "address": self.address,
                    "key_path": list(self.key_path),
                    "value": self.value,
                    "highlight": [self.highlight],
                }
            ],
        }


class _Deadline(Exception):
    pass


@dataclass
class _Work:
    """One lane's share of a run: the values it reads, transformed by its chain."""

    lane: Lane
    address: str
    items: list[tuple[KeyPath, str]]
    texts: list[str]
    # The detector triggers that matched somewhere in this lane's values; None: not scanned.
    triggered: set[int] | None = None
    plain: bool = False  # every value is single-line ASCII (known once scanned)
    _by_first_key: dict[str | int, list[int]] | None = None

    def under(self, key_path: KeyPath) -> Iterable[int]:
        """Indexes of the values at or below `key_path`."""
        if not key_path:
            return range(len(self.items))
        if self._by_first_key is None:
            self._by_first_key = {}
            for index, (path, _) in enumerate(self.items):
                if path:
                    self._by_first_key.setdefault(path[0], []).append(index)
        size = len(key_path)
        return [
            i for i in self._by_first_key.get(key_path[0], ())
            if self.items[i][0][:size] == key_path
        ]


class WafContext:
    """Per-request state over an immutable Ruleset. Not shared between threads."""

    def __init__(self, ruleset: Ruleset) -> None:
        self._ruleset = ruleset
        self._store: dict[str, object] = {}
        self._matches: dict[tuple[int, int], _Match] = {}
        self._fired: set[int] = set()
        self._active_exclusions: set[int] = set()

    @property
    def addresses(self) -> Mapping[str, object]:
        return self._store

    def run(
        self, addresses: Mapping[str, object], timeout_us: int = DEFAULT_TIMEOUT_US
    ) -> WafResult:
        """Evaluate the new addresses; returns the events and actions of rules that fired now."""
        started = time.perf_counter()
        deadline = started + timeout_us / 1e6
        result = WafResult()
        self._store.update(addresses)
        filters: tuple[set[int], set[int], dict[int, list[tuple[str, KeyPath]]]] | None = None
        try:
            filters = self._exclusions(deadline)
            bypass, _, excluded = filters
            work = self._prepare(addresses, deadline)
            self._scan_patterns(work, bypass, excluded, deadline)
            self._run_value_ops(work, bypass, excluded, deadline)
        except _Deadline:
            result.timeout = True
        except Exception as exc:  # fail open: report, and let the request go on
            self._ruleset.report_operator_error("engine", exc)
            result.error = repr(exc)
        # Without the exclusions' verdict nothing may fire: a bypassed rule would.
        if filters is not None:
            try:
                self._fire(result, addresses, filters[0], filters[1])
            except Exception as exc:
                self._ruleset.report_operator_error("engine", exc)
                result.error = repr(exc)
        result.duration_us = (time.perf_counter() - started) * 1e6
        return result

    # ------------------------------------------------------------ exclusions

    def _exclusions(
        self, deadline: float
    ) -> tuple[set[int], set[int], dict[int, list[tuple[str, KeyPath]]]]:
        ruleset = self._ruleset
        bypass: set[int] = set()
        monitor: set[int] = set()
        excluded: dict[int, list[tuple[str, KeyPath]]] = {}
        for index, exclusion in enumerate(ruleset.exclusions):
            if index not in self._active_exclusions:
                if not all(self._condition_holds(c) for c in exclusion.conditions):
                    continue
                self._active_exclusions.add(index)
            self._apply_exclusion(exclusion, bypass, monitor, excluded)
        if time.perf_counter() > deadline:
            raise _Deadline
        return bypass, monitor, excluded

    def _apply_exclusion(
        self, exclusion: Exclusion, bypass: set[int], monitor: set[int],
        excluded: dict[int, list[tuple[str, KeyPath]]],
    ) -> None:
        for rule_index in self._ruleset.exclusion_targets[exclusion.id]:
            if exclusion.inputs:
                excluded.setdefault(rule_index, []).extend(exclusion.inputs)
            elif exclusion.mode == "monitor":
                monitor.add(rule_index)
            else:
                bypass.add(rule_index)

    def _condition_holds(self, condition: Condition) -> bool:
        """Direct evaluation of one condition over the whole store (exclusion filters)."""
        operator = condition.operator
        limits = self._ruleset.limits
        for target in condition.targets:
            if target.address not in self._store:
                continue
            present, value = resolve_key_path(self._store[target.address], target.key_path)
            if not present:
                continue
            if isinstance(operator, Exists):
                return not operator.negated
            chain = make_chain(target.transformers)
            walk = walk_keys if target.keys_only else walk_values
            for _, text in walk(value, limits):
                text = chain(text) if chain else text
                if isinstance(operator, PatternOperator):
                    program = compile_re2(operator.pattern)
                    if len(text) >= operator.min_length and program.search(text) is not None:
                        return True
                elif isinstance(operator, ValueOperator) and operator.match(text) is not None:
                    return True
        return isinstance(operator, Exists) and operator.negated

    # ------------------------------------------------------------ scanning

    def _prepare(self, addresses: Mapping[str, object], deadline: float) -> list[_Work]:
        """The transformed values of every lane that reads one of the new addresses."""
        work: list[_Work] = []
        for address, value in addresses.items():
            lanes = self._ruleset.lanes.get(address)
            if not lanes:
                continue
            walks: dict[bool, list[tuple[KeyPath, str]]] = {}
            for lane in lanes:
                items = walks.get(lane.keys_only)
                if items is None:
                    items = walks[lane.keys_only] = self._walk(value, lane.keys_only)
                if not items:
                    continue
                chain = lane.chain
                texts = [chain(r) for _, r in items] if chain is not None else [r for _, r in items]
                work.append(_Work(lane, address, items, texts))
            if time.perf_counter() > deadline:
                raise _Deadline
        return work

    def _walk(self, value: object, keys_only: bool) -> list[tuple[KeyPath, str]]:
        limits = self._ruleset.limits
        return keys_of(value, limits) if keys_only else walk_values(value, limits)

    def _scan_patterns(
        self, work: list[_Work], bypass: set[int],
        excluded: dict[int, list[tuple[str, KeyPath]]], deadline: float,
    ) -> None:
        """Filter down from many values to few, one Hyperscan call per step: the values of all
        lanes sharing a pattern set, joined; then each lane's values, joined, when the first
        scan hit one of its rule patterns; then single values, when that hit again. Benign
        requests usually stop at the first step."""
        groups: dict[int, list[_Work]] = {}
        for entry in work:
            if entry.lane.patterns is not None:
                groups.setdefault(id(entry.lane.patterns), []).append(entry)
        for entries in groups.values():
            patterns = entries[0].lane.patterns
            assert patterns is not None
            # Texts are clean Unicode (see limits.clean_text): encoding cannot fail.
            joined = ["\n".join(entry.texts) for entry in entries]
            group_hits = patterns.scan("\n".join(joined))
            for entry, entry_text in zip(entries, joined, strict=True):
                if time.perf_counter() > deadline:
                    raise _Deadline
                lane = entry.lane
                # Single-line ASCII throughout: triggers speak for every value of the lane.
                newlines = entry_text.count("\n")
                entry.plain = entry_text.isascii() and newlines == len(entry.texts) - 1
                # Triggers are taken at group level: a detector's own fast path costs less
                # than another scan. Rule patterns that hit are narrowed to the lane.
                entry.triggered = group_hits.intersection(lane.triggers.values())
                relevant = group_hits.intersection(lane.pattern_refs.keys())
                if relevant and len(entries) > 1:
                    relevant &= patterns.scan(entry_text)
                if not relevant:
                    continue
                for (key_path, raw), text in zip(entry.items, entry.texts, strict=True):
                    for index in patterns.matches(text, relevant):
                        if index in relevant:
                            self._record_pattern(lane, index, entry.address, key_path, raw, text,
                                                 bypass, excluded)

    def _run_value_ops(
        self, work: list[_Work], bypass: set[int],
        excluded: dict[int, list[tuple[str, KeyPath]]], deadline: float,
    ) -> None:
        done, matches = self._fired, self._matches
        for entry in work:
            if not entry.lane.op_groups:
                continue
            if time.perf_counter() > deadline:
                raise _Deadline
            triggered = entry.triggered
            for operator, trigger, key_path, refs, sized in entry.lane.op_groups:
                if done or bypass or matches:
                    refs = [
                        ref for ref in refs
                        if ref.rule not in done and ref.rule not in bypass
                        and (ref.rule, ref.condition) not in matches
                    ]
                    if not refs:
                        continue
                # Values its trigger did not match cannot interest the operator; triggers
                # speak for single-line ASCII values, the others always go to the operator.
                skip_plain = (
                    trigger is not None and triggered is not None and trigger not in triggered
                )
                if skip_plain and entry.plain:
                    continue
                self._evaluate(entry, operator, refs, entry.under(key_path), skip_plain,
                               sized or bool(excluded), excluded)

    def _evaluate(
        self, entry: _Work, operator: ValueOperator, refs: list[ConditionRef],
        indexes: Iterable[int], skip_plain: bool, filtered: bool,
        excluded: dict[int, list[tuple[str, KeyPath]]],
    ) -> None:
        """Run one value operator over some values of a lane until all `refs` matched."""
        matches, address, texts = self._matches, entry.address, entry.texts
        for index in indexes:
            text = texts[index]
            if skip_plain and text.isascii() and "\n" not in text:
                continue
            key_path, raw = entry.items[index]
            waiting = refs if not filtered else [
                ref for ref in refs
                if len(text) >= ref.min_length
                and not self._is_excluded(excluded, ref.rule, address, key_path)
            ]
            if not waiting:
                continue
            try:
                highlight = operator.match(text)
            except Exception as exc:  # fail open: a detector bug must not break the request
                self._ruleset.report_operator_error(operator.name, exc)
                continue
            if highlight is None:
                continue
            for ref in waiting:
                matches[(ref.rule, ref.condition)] = _Match(
                    operator.name, operator.operator_value, address, key_path, raw, highlight
                )
            refs = [ref for ref in refs if ref not in waiting]
            if not refs:
                return

    def _record_pattern(
        self, lane: Lane, index: int, address: str, key_path: KeyPath, raw: str, text: str,
        bypass: set[int], excluded: dict[int, list[tuple[str, KeyPath]]],
    ) -> None:
        matches = self._matches
        rules = self._ruleset.rules
        for ref in lane.pattern_refs.get(index, ()):
            slot = (ref.rule, ref.condition)
            if (
                ref.rule in self._fired or ref.rule in bypass or slot in matches
                or len(text) < ref.min_length
                or key_path[: len(ref.key_path)] != ref.key_path
                or self._is_excluded(excluded, ref.rule, address, key_path)
            ):
                continue
            operator = rules[ref.rule].conditions[ref.condition].operator
            assert isinstance(operator, PatternOperator)
            assert lane.patterns is not None
            matches[slot] = _Match(
                operator.name, operator.operator_value, address, key_path, raw,
                lane.patterns.highlight(index, text),
            )

    @staticmethod
    def _is_excluded(
        excluded: dict[int, list[tuple[str, KeyPath]]], rule: int, address: str, key_path: KeyPath
    ) -> bool:
        if not excluded:
            return False
        return any(
            address == ex_address and key_path[: len(ex_path)] == ex_path
            for ex_address, ex_path in excluded.get(rule, ())
        )

    # ------------------------------------------------------------ firing

    def _address_condition(self, rule: int, index: int, condition: Condition) -> bool:
        """Conditions decided on whole addresses: exists, !exists and the exploit detectors."""
        operator = condition.operator
        slot = (rule, index)
        if slot in self._matches:
            return True
        if isinstance(operator, Exists):
            if not self._condition_holds(condition):
                return False
            target = condition.targets[0]
            self._matches[slot] = _Match(operator.name, "", target.address, target.key_path, "", "")
            return True
        if isinstance(operator, ExploitDetector):
            found = detect_exploit(operator, self._store, self._ruleset.limits)
            if found is None:
                return False
            resource, param = found
            address, key_path = operator.resource[0]
            self._matches[slot] = _Match(operator.name, "", address, key_path, resource, param)
            return True
        return False

    def _fire(
        self, result: WafResult, addresses: Mapping[str, object], bypass: set[int],
        monitor: set[int],
    ) -> None:
        ruleset = self._ruleset
        # Only rules that gained a match now, or that look at whole addresses, can fire now.
        candidates = {rule for rule, _ in self._matches}
        candidates.update(ruleset.always_check)
        for address in addresses:
            candidates.update(ruleset.check_on_address.get(address, ()))
        candidates -= self._fired
        candidates -= bypass
        for rule_index in sorted(candidates, key=ruleset.position.__getitem__):
            rule: Rule = ruleset.rules[rule_index]
            # Matches recorded by the scans first: whole-address checks cost more.
            if any(
                (rule_index, i) not in self._matches
                for i in ruleset.value_conditions[rule_index]
            ) or not all(
                self._address_condition(rule_index, i, rule.conditions[i])
                for i in ruleset.address_conditions[rule_index]
            ):
                continue
            self._fired.add(rule_index)
            on_match = ruleset.on_match[rule_index]
            result.events.append(self._event(rule, on_match))
            if rule_index not in monitor:
                self._collect_actions(result, on_match)

    def _event(self, rule: Rule, on_match: tuple[str, ...]) -> dict[str, Any]:
        rule_index = self._ruleset.index[rule.id]
        return {
            "rule": {
                "id": rule.id,
                "name": rule.name,
                "tags": dict(rule.tags),
                "on_match": list(on_match),
            },
            "rule_matches": [
                self._matches[(rule_index, i)].as_dict() for i in range(len(rule.conditions))
            ],
        }

    def _collect_actions(self, result: WafResult, on_match: tuple[str, ...]) -> None:
        for action_id in on_match:
            action = self._ruleset.actions.get(action_id)
            if action is None or action.type == "monitor":
                continue
            if action.type in _BLOCKING and result.blocking:
                continue  # the first blocking action wins
            result.actions.setdefault(action.type, dict(action.parameters))
