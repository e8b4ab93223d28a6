"""One request's evaluation: addresses in, events and actions out, within a deadline.

A `WafContext` is cheap to create and remembers what it has seen: addresses may arrive over
several `run()` calls (headers first, body later, sinks while the handler runs), each call only
inspects what is new, conditions matched earlier stay matched, and a rule fires at most once.

A run reads each new address once (plan.AddressPlan.read), scans the values of each scan group
in one Hyperscan call, looks value by value only where that scan hit, and gives each detector
only the values its trigger reported in one more scan (plan, patterns.LineScanner).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final

from bastion.waf import gcclock
from bastion.waf.document import Condition, Exclusion, KeyPath, Rule
from bastion.waf.exploits import ParamTexts, detect_exploit, needles
from bastion.waf.limits import resolve_key_path, walk_keys, walk_values
from bastion.waf.operators import Exists, ExploitDetector, PatternOperator, ValueOperator
from bastion.waf.patterns import PatternSet, compile_re2
from bastion.waf.plan import AddressView, ConditionRef, Lane, Plan
from bastion.waf.transformers import make_chain
from bastion.waf.verdicts import DIGEST_ADDRESSES, Fresh, Leaves, settled_parts

if TYPE_CHECKING:
    from bastion.waf.ruleset import Ruleset

DEFAULT_TIMEOUT_US: Final = 5000
_MAX_CLEAN_SINKS: Final = 256  # sink calls remembered clean per request
_BLOCKING: Final = ("block_request", "redirect_request")
# Up to this many patterns that may match a value are searched one by one with RE2; above, a
# Hyperscan scan of the value alone first tells which can (one scan costs a few RE2 searches).
_RE2_FIRST: Final = 4

Excluded = Mapping[int, list[tuple[str, KeyPath]]]
_Filters = tuple[Set[int], Set[int], Excluded]
_NO_FILTERS: Final[_Filters] = (frozenset(), frozenset(), {})


@dataclass
class WafResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeout: bool = False
    duration_us: float = 0.0
    error: str | None = None  # an internal failure, already logged; the request goes on

    @property
    def blocking(self) -> bool:
        return not self.actions.keys().isdisjoint(_BLOCKING)


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


# Who reads a list of texts that detectors with triggers read, in one run: (position of the
# view, the trigger groups of the variants that read it (variants that transform nothing
# share the list), the value index of each line of its part of the buffer, None when line i
# is value i).
_Reader = tuple[int, Sequence[dict[int, list[tuple[int, int]]]], "list[int] | None"]


def _split_lines(texts: list[str]) -> tuple[str | None, list[int], list[int]]:
    """The single-line ASCII texts of `texts` joined by newlines (None: there are none), the
    value index of each line, and the indexes of the other texts, which the trigger cannot
    speak for: every detector sees them."""
    owners: list[int] = []
    lines: list[str] = []
    always: list[int] = []
    for index, text in enumerate(texts):
        if text.isascii() and "\n" not in text:
            owners.append(index)
            lines.append(text)
        else:
            always.append(index)
    return ("\n".join(lines) if lines else None), owners, always


# A value to look at alone for some patterns: (recording order, value index, view, lane, the
# value's text in that lane, the patterns). See `_candidates` for the order.
_Candidate = tuple[tuple[int, int, int], int, AddressView, Lane, str, set[int]]


class WafContext:
    """Per-request state over an immutable Ruleset. Not shared between threads."""

    def __init__(self, ruleset: Ruleset) -> None:
        self._ruleset = ruleset
        self._plan: Plan = ruleset.plan
        self._store: dict[str, object] = {}
        self._matches: dict[tuple[int, int], _Match] = {}
        self._fired: set[int] = set()
        self._active_exclusions: set[int] = set()
        self._budget = (0.0, 0.0)  # (thread CPU time at the run's start, seconds allowed)
        self._gc: gcclock.GcClock | None = None  # the run's collections (waf/gcclock.py)
        # User parameters' texts for the exploit detectors, until a run brings parameters.
        self._param_texts: ParamTexts = {}
        # Sink calls found clean since the parameters last changed: an application runs the
        # same statement many times in one request (a query per item of a list).
        self._clean_sinks: set[tuple[tuple[str, str], ...]] = set()
        # Per gated sink address (Ruleset.sink_gates), the texts of the user's parameters its
        # detectors look for, until the parameters change (see `quiet_sink`).
        self._sink_needles: dict[str, tuple[str, ...]] = {}
        # Addresses of this run whose values were not all looked at by every rule condition
        # that reads them, or that some condition matched (see `_remember_clean`); for a
        # mapping, the names of the entries that hold such values, when each value's entry
        # is known (`_implicate`).
        self._unsettled: set[str] = set()
        self._implicated: dict[str, set[object]] = {}

    @property
    def addresses(self) -> Mapping[str, object]:
        return self._store

    def run(
        self, addresses: Mapping[str, object], timeout_us: int = DEFAULT_TIMEOUT_US
    ) -> WafResult:
        """Evaluate the new addresses; returns the events and actions of rules that fired now."""
        sink = self._sink_call(addresses)
        if sink is not None and sink in self._clean_sinks:
            self._store.update(addresses)
            return WafResult()
        started = time.perf_counter()
        deadline = started + timeout_us / 1e6
        self._budget = (time.thread_time(), timeout_us / 1e6)
        result = WafResult()
        self._store.update(addresses)
        if sink is None:  # parameters may have changed: what was found clean may not be
            self._clean_sinks.clear()
            self._sink_needles.clear()
        if self._param_texts and not self._ruleset.check_with_resource.keys().isdisjoint(
                addresses):
            self._param_texts = {}
        filters: _Filters | None = None
        self._unsettled.clear()
        self._implicated.clear()
        fresh: list[Fresh] = []
        leaves: list[Leaves] = []  # the run's nested addresses (verdicts.Leaves)
        digests: list[tuple[str, bytes]] = []  # and the digests of their bytes, when known
        clock = self._gc = gcclock.start()  # collections are not the rules' time
        try:
            filters = self._exclusions(deadline)
            bypass, _, excluded = filters
            views = self._read(addresses, deadline, fresh, leaves, digests)
            if views:
                self._scan_patterns(views, bypass, excluded, deadline)
                self._run_value_ops(views, bypass, excluded, deadline)
        except _Deadline:
            result.timeout = True
        except Exception as exc:  # fail open: report, and let the request go on
            self._ruleset.report_operator_error("engine", exc)
            result.error = repr(exc)
        finally:
            gcclock.stop(clock)
        # Without the exclusions' verdict nothing may fire: a bypassed rule would.
        if filters is not None:
            try:
                self._fire(result, addresses, filters[0], filters[1])
            except Exception as exc:
                self._ruleset.report_operator_error("engine", exc)
                result.error = repr(exc)
        if (fresh or leaves or digests) and filters is not None:
            self._remember_clean(result, filters, fresh, leaves, digests)
        if sink is not None and not (result.events or result.timeout or result.error):
            if len(self._clean_sinks) >= _MAX_CLEAN_SINKS:
                self._clean_sinks.clear()  # bounded: a request of many statements starts over
            self._clean_sinks.add(sink)
        result.duration_us = (time.perf_counter() - started) * 1e6
        return result

    def _remember_clean(
        self, result: WafResult, filters: _Filters, fresh: list[Fresh], leaves: list[Leaves],
        digests: list[tuple[str, bytes]],
    ) -> None:
        """After a run where every rule looked at every part and none matched a value, the
        parts it read are known clean (verdicts.py). Matches on whole addresses (`exists`,
        the exploit checks) read the store, not the parts: a request with a Content-Length
        header is still remembered. When a value matched, the parts that no pattern hit
        and whose values every value operator saw to the end without a match are as clean as
        in a run that found nothing: an attack in the query leaves the headers remembered,
        and the query's other parameters too."""
        if result.timeout or result.error or any(filters):
            return
        if not self._ruleset.value_slots.isdisjoint(self._matches):
            unsettled, implicated = self._unsettled, self._implicated
            fresh = settled_parts(fresh, unsettled, implicated)
            leaves = [
                known for known in leaves
                if known.address not in unsettled and known.address not in implicated
            ]
            digests = [
                (address, digest) for address, digest in digests
                if address not in unsettled and address not in implicated
            ]
        memory = self._ruleset.clean_parts
        try:
            if fresh:
                memory.remember(fresh)
            if leaves:
                memory.remember_leaves(leaves)
            if digests:
                memory.remember_digests(digests)
        except Exception as exc:  # a memory that fails costs speed, never the request
            self._ruleset.report_operator_error("engine", exc)

    def quiet_sink(self, address: str, text: str) -> bool:
        """Whether a sink call that brings `text` at `address` (and nothing but sink
        addresses) may run without a run of the rules: every rule that reads the address
        looks for user input in it (Ruleset.sink_gates), and it holds none. Most statements,
        paths and URLs of a request do not; those that do get the full check."""
        found = self._sink_needles.get(address)
        if found is None:
            gate = self._ruleset.sink_gates.get(address)
            # "" is in every text: an address without a gate is never quiet.
            found = self._sink_needles[address] = ("",) if gate is None else needles(
                gate, self._store, self._ruleset.limits, self._param_texts)
        for needle in found:  # noqa: SIM110 (a generator costs more, on every statement)
            if needle in text:
                return False
        return True

    def quiet_call(self, addresses: Mapping[str, object]) -> bool:
        """`quiet_sink` for a sink hook's addresses: each a sink address, the gated ones
        texts that hold no user parameter, and at least one of them."""
        gates, sinks = self._ruleset.sink_gates, self._ruleset.sink_addresses
        gated = False
        for address, value in addresses.items():
            if address in gates:
                if type(value) is not str or not self.quiet_sink(address, value):
                    return False
                gated = True
            elif address not in sinks:
                return False
        return gated

    def _sink_call(self, addresses: Mapping[str, object]) -> tuple[tuple[str, str], ...] | None:
        """A run of a sink hook (only sink addresses, all texts), as a key; else None."""
        sinks = self._ruleset.sink_addresses
        if not sinks or not sinks.issuperset(addresses):
            return None
        for value in addresses.values():
            if type(value) is not str:
                return None  # an argv list: looked at every time
        # A hook passes its addresses in one order: no sort needed for the same call to meet
        # its earlier self.
        return tuple(addresses.items())  # type: ignore[arg-type]  # all texts, just checked

    def _overrun(self) -> None:
        """The wall clock passed the deadline: stop if this thread really spent the budget
        on the rules. Time spent waiting (for the GIL held by another thread, a configuration
        reload, a descheduled process) is not the rules' cost, and must not let an attack
        through unexamined; nor is a garbage collection that happened in the run."""
        started, budget = self._budget
        collecting = self._gc.spent if self._gc is not None else 0.0
        if time.thread_time() - started - collecting >= budget:
            raise _Deadline

    # ------------------------------------------------------------ exclusions

    def _exclusions(self, deadline: float) -> _Filters:
        ruleset = self._ruleset
        if not ruleset.exclusions:
            if time.perf_counter() > deadline:
                self._overrun()
            return _NO_FILTERS
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
            self._overrun()
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
        if isinstance(operator, Exists):
            return self._exists(condition) != operator.negated
        limits = self._ruleset.limits
        for target in condition.targets:
            if target.address not in self._store:
                continue
            present, value = resolve_key_path(self._store[target.address], target.key_path)
            if not present:
                continue
            transform = make_chain(target.transformers)
            walk = walk_keys if target.keys_only else walk_values
            for _, text in walk(value, limits):
                text = transform(text) if transform else text
                if isinstance(operator, PatternOperator):
                    program = compile_re2(operator.pattern)
                    if len(text) >= operator.min_length and program.search(text) is not None:
                        return True
                elif isinstance(operator, ValueOperator) and operator.match(text) is not None:
                    return True
        return False

    def _exists(self, condition: Condition) -> bool:
        """Whether any target of the condition is present in the store."""
        return self._ruleset.presence[id(condition)].holds(self._store)

    # ------------------------------------------------------------ reading

    def _read(
        self, addresses: Mapping[str, object], deadline: float, fresh: list[Fresh],
        leaves: list[Leaves], digests: list[tuple[str, bytes]],
    ) -> list[AddressView]:
        """Every new address that some lane reads, as the lanes see it, without the parts
        earlier runs found clean (see verdicts.py); the parts that could be remembered go
        to `fresh`, the nested addresses' texts to `leaves`, the digests of their bytes (when
        the run brings one) to `digests`. A nested address whose digest is known clean is
        not read at all."""
        plans = self._plan.addresses
        limits = self._ruleset.limits
        clean = self._ruleset.clean_parts
        views: list[AddressView] = []
        for address, value in addresses.items():
            plan = plans.get(address)
            if plan is None:
                continue
            companion = DIGEST_ADDRESSES.get(address)
            if companion is not None:
                digest = addresses.get(companion)
                if type(digest) is bytes:
                    if clean.knows_digest(address, digest):
                        continue
                    digests.append((address, digest))
            value = clean.split(address, value, fresh)
            if value is None:
                continue
            view = plan.read(value, limits, clean, leaves)
            if view is not None:
                views.append(view)
            if time.perf_counter() > deadline:
                self._overrun()
        return views

    # ------------------------------------------------------------ patterns

    def _scan_patterns(
        self, views: list[AddressView], bypass: Set[int], excluded: Excluded, deadline: float
    ) -> None:
        """One Hyperscan call per scan group over all its values, joined by newlines (patterns
        are compiled multi-line, so anchors hold per value). Benign requests stop there; a hit
        is narrowed down to the values that may hold it, then confirmed value by value."""
        by_group: dict[int, list[AddressView]] = {}
        for view in views:
            group = view.plan.group
            if group is not None:
                by_group.setdefault(group.index, []).append(view)
        found: list[_Candidate] = []
        ranks: dict[tuple[str, ...], int] | None = None
        for group_views in by_group.values():
            group = group_views[0].plan.group
            assert group is not None
            # Texts are clean Unicode (see limits.clean_text): encoding cannot fail.
            data = "\n".join(view.scanned for view in group_views).encode()
            hits = group.patterns.locate(data)
            if time.perf_counter() > deadline:
                self._overrun()
            if not hits:
                continue
            if ranks is None:
                ranks = _chain_ranks(views)
            keyed = group.keyed.intersection(hits)
            if keyed:
                found += _keyed_candidates(views, group_views, keyed, ranks)
                hits = {pattern: offset for pattern, offset in hits.items() if pattern not in keyed}
            if hits:
                lines = group.patterns.lines_to_check(data, hits)
                found += _candidates(views, group_views, lines, ranks)
        if found:
            for _, index, view, lane, _, _ in found:
                self._implicate(view, lane.variant, (index,))
            found.sort(key=lambda entry: (entry[0], entry[1]))
            self._record_patterns(found, bypass, excluded, deadline)

    def _record_patterns(
        self, found: list[_Candidate], bypass: Set[int], excluded: Excluded, deadline: float
    ) -> None:
        """Confirm each candidate value alone, in recording order (see `_candidates`): RE2
        finds the match, which is also the highlight. A value that many patterns may match
        is first scanned alone by Hyperscan, which rules most of them out in one pass."""
        by_text: dict[str, set[int]] = {}  # per run, not across runs: Hyperscan's answers
        for _, index, view, lane, text, relevant in found:
            if time.perf_counter() > deadline:
                self._overrun()
            group = view.plan.group
            assert group is not None
            patterns = group.patterns
            candidates: set[int] | None = None
            if len(relevant) > _RE2_FIRST:
                candidates = by_text.get(text)
                if candidates is None:
                    candidates = by_text[text] = patterns.candidates(text)
            for pattern in relevant:
                self._record_pattern(
                    lane, patterns, pattern, view.path(lane.variant, index),
                    view.raw(lane.variant, index), text, bypass, excluded, candidates,
                )

    def _record_pattern(
        self, lane: Lane, patterns: PatternSet, index: int, key_path: KeyPath, raw: str,
        text: str, bypass: Set[int], excluded: Excluded, candidates: set[int] | None,
    ) -> None:
        """Record pattern `index` matching `text` for the conditions still waiting for it;
        the value is searched only when one is."""
        matches = self._matches
        rules = self._ruleset.rules
        highlight: str | None = None
        for ref in lane.pattern_refs.get(index, ()):
            slot = (ref.rule, ref.condition)
            if (
                ref.rule in self._fired or ref.rule in bypass or slot in matches
                or len(text) < ref.min_length
                or key_path[: len(ref.key_path)] != ref.key_path
                or self._is_excluded(excluded, ref.rule, lane.address, key_path)
            ):
                continue
            if highlight is None:
                highlight = patterns.find(index, text, candidates)
                if highlight is None:
                    return
            operator = rules[ref.rule].conditions[ref.condition].operator
            assert isinstance(operator, PatternOperator)
            matches[slot] = _Match(
                operator.name, operator.operator_value, lane.address, key_path, raw, highlight,
            )

    def _implicate(self, view: AddressView, variant: int, indexes: Iterable[int]) -> None:
        """Values of `view` (of `variant`) this run does not prove clean: their entries, by
        the first key of their paths, or the whole address when one has no key."""
        address = view.plan.address
        if address in self._unsettled:
            return
        paths = view.paths[view.plan.kinds[variant]]
        names = self._implicated.get(address)
        for index in indexes:
            path = paths[index]
            if not path:
                self._unsettled.add(address)
                return
            if names is None:
                names = self._implicated[address] = set()
            names.add(path[0])

    @staticmethod
    def _is_excluded(excluded: Excluded, rule: int, address: str, key_path: KeyPath) -> bool:
        if not excluded:
            return False
        return any(
            address == ex_address and key_path[: len(ex_path)] == ex_path
            for ex_address, ex_path in excluded.get(rule, ())
        )

    # ------------------------------------------------------------ value operators

    def _run_value_ops(
        self, views: list[AddressView], bypass: Set[int], excluded: Excluded, deadline: float
    ) -> None:
        """Operator groups in plan order (view, lane, group, then value): those without a
        trigger on every value under their key path, detectors on the values their trigger
        reported (see `_reported`)."""
        reported = self._reported(views)
        done, matches, clock = self._fired, self._matches, time.perf_counter
        for view, found in zip(views, reported, strict=True):
            plan = view.plan
            order: Iterable[tuple[int, int]]
            if found is None:
                order = plan.untriggered
            elif plan.untriggered:
                order = sorted((*plan.untriggered, *found))
            else:  # positions are distinct: a single one needs no sort
                order = sorted(found) if len(found) > 1 else found
            entries = plan.op_entries
            for position in order:
                lane, (operator, trigger, key_path, refs, sized) = entries[position]
                if trigger is None:
                    indexes: Sequence[int] = view.under(lane.variant, key_path)
                    if not indexes:
                        continue
                else:
                    assert found is not None
                    chosen = found[position]
                    indexes = sorted(chosen) if len(chosen) > 1 else list(chosen)
                if clock() > deadline:
                    self._overrun()
                if done or bypass or matches:
                    waiting = [
                        ref for ref in refs
                        if ref.rule not in done and ref.rule not in bypass
                        and (ref.rule, ref.condition) not in matches
                    ]
                    if len(waiting) != len(refs):  # some condition does not look here
                        self._implicate(view, lane.variant, indexes)
                        if not waiting:
                            continue
                    refs = waiting
                self._evaluate(view, lane, operator, refs, indexes, sized or bool(excluded),
                               excluded)

    def _reported(self, views: list[AddressView]) -> list[dict[tuple[int, int], set[int]] | None]:
        """Per view, the detector groups (lane position, group position) to run and on which
        values: those their trigger reported, found by one line-scanner call over the lists
        of texts they read, and those it cannot speak for (not single-line ASCII)."""
        reported: list[dict[tuple[int, int], set[int]] | None] = [None] * len(views)
        parts: list[str] = []  # the buffer to scan, list by list
        readers: list[_Reader] = []  # who reads each part
        for position, view in enumerate(views):
            plan = view.plan
            if not plan.triggered:
                continue
            lists: Iterable[tuple[list[str], str, Sequence[dict[int, list[tuple[int, int]]]]]]
            if not view.extras:  # no chain changed a text: detectors read raw lists
                raws, joins = view.raws, view.raw_joined
                lists = [
                    (raws[keys_only], joins[keys_only], users)
                    for keys_only, users in plan.trigger_users
                ]
            else:
                own: dict[int, tuple[list[str], str, list[dict[int, list[tuple[int, int]]]]]]
                own = {}  # by id of the list of texts
                for variant, by_trigger in plan.triggered.items():
                    texts = view.texts[variant]
                    entry = own.get(id(texts))
                    if entry is not None:
                        entry[2].append(by_trigger)
                    elif texts:
                        own[id(texts)] = (texts, "\n".join(texts), [by_trigger])
                lists = own.values()
            for texts, joined, users in lists:
                if not texts:
                    continue
                # The common case: every value one ASCII line, as it is in `joined`.
                if joined.isascii() and joined.count("\n") == len(texts) - 1:
                    parts.append(joined)
                    readers.append((position, users, None))
                    continue
                lines, split_owners, always = _split_lines(texts)
                for index in always:
                    for by_trigger in users:
                        for groups in by_trigger.values():
                            _add(reported, position, groups, index)
                if lines is not None:
                    parts.append(lines)
                    readers.append((position, users, split_owners))
        scanner = self._plan.triggers
        if not parts or scanner is None:
            return reported
        # ASCII only: byte offsets of the buffer are offsets in its parts.
        found = scanner.lines("\n".join(parts).encode())
        if not found:  # the common case: no value needs a detector
            return reported
        starts = list(accumulate((len(part) + 1 for part in parts[:-1]), initial=0))
        for trigger, end in found:
            number = bisect_right(starts, end) - 1
            position, users, owners = readers[number]
            index = -1
            for by_trigger in users:
                reached = by_trigger.get(trigger)
                if reached is not None:
                    if index < 0:
                        line = parts[number].count("\n", 0, end - starts[number])
                        index = line if owners is None else owners[line]
                    _add(reported, position, reached, index)
        return reported

    def _evaluate(
        self, view: AddressView, lane: Lane, operator: ValueOperator, refs: list[ConditionRef],
        indexes: Sequence[int], filtered: bool, excluded: Excluded,
    ) -> None:
        """Run one value operator over some values of a lane until all `refs` matched."""
        matches, address = self._matches, lane.address
        kind = view.plan.kinds[lane.variant]
        texts, paths, raws = view.texts[lane.variant], view.paths[kind], view.raws[kind]
        for position, index in enumerate(indexes):
            text = texts[index]
            if filtered:
                key_path = paths[index]
                waiting = [
                    ref for ref in refs
                    if len(text) >= ref.min_length
                    and not self._is_excluded(excluded, ref.rule, address, key_path)
                ]
                if not waiting:
                    continue
            else:
                waiting = refs
            try:
                highlight = operator.match(text)
            except Exception as exc:  # fail open: a detector bug must not break the request
                self._ruleset.report_operator_error(operator.name, exc)
                continue
            if highlight is None:
                continue
            # This value matched; the conditions it satisfied look no further.
            self._implicate(view, lane.variant, indexes[position:])
            key_path = paths[index]
            for ref in waiting:
                matches[(ref.rule, ref.condition)] = _Match(
                    operator.name, operator.operator_value, address, key_path, raws[index],
                    highlight,
                )
            refs = [ref for ref in refs if ref not in waiting]
            if not refs:
                return

    # ------------------------------------------------------------ firing

    def _address_condition(self, rule: int, index: int, condition: Condition) -> bool:
        """Conditions decided on whole addresses: exists, !exists and the exploit detectors."""
        operator = condition.operator
        slot = (rule, index)
        if slot in self._matches:
            return True
        if isinstance(operator, Exists):
            if self._exists(condition) == operator.negated:
                return False
            target = condition.targets[0]
            self._matches[slot] = _Match(operator.name, "", target.address, target.key_path, "", "")
            return True
        if isinstance(operator, ExploitDetector):
            found = detect_exploit(operator, self._store, self._ruleset.limits,
                                   self._param_texts)
            if found is None:
                return False
            resource, param = found
            address, key_path = operator.resource[0]
            self._matches[slot] = _Match(operator.name, "", address, key_path, resource, param)
            return True
        return False

    def _fire(
        self, result: WafResult, addresses: Mapping[str, object], bypass: Set[int],
        monitor: Set[int],
    ) -> None:
        ruleset = self._ruleset
        # Only rules that gained a match now, or that look at whole addresses, can fire now.
        candidates = {rule for rule, _ in self._matches}
        candidates |= ruleset.always_check
        check, gates, store = ruleset.check_on_address, ruleset.presence_gates, self._store
        closed = []
        with_resource = ruleset.check_with_resource
        if with_resource and not ruleset.resources.isdisjoint(store):
            for address in addresses:
                rules = with_resource.get(address)
                if rules:
                    candidates |= rules
        for address in addresses:
            rules = check.get(address)
            if rules:
                candidates |= rules
                gate = gates.get(address)
                if gate is not None:
                    value = store[address]
                    if type(value) is dict and gate[0].isdisjoint(value):
                        closed.append(gate)
        matches = self._matches
        for _, pairs, gated in closed:  # rules whose `exists` on the address cannot hold now
            if not matches:  # the usual run: none of their conditions matched before
                candidates -= gated
            else:
                candidates.difference_update(
                    rule for rule, condition in pairs if (rule, condition) not in matches
                )
        candidates -= self._fired
        candidates -= bypass
        for rule_index in sorted(candidates, key=ruleset.position.__getitem__):
            if not self._conditions_hold(rule_index):
                continue
            self._fired.add(rule_index)
            on_match = ruleset.on_match[rule_index]
            result.events.append(self._event(rule_index, ruleset.rules[rule_index], on_match))
            if rule_index not in monitor:
                self._collect_actions(result, on_match)

    def _conditions_hold(self, rule_index: int) -> bool:
        """Matches recorded by the scans first: whole-address checks cost more."""
        ruleset, matches = self._ruleset, self._matches
        for index in ruleset.value_conditions[rule_index]:
            if (rule_index, index) not in matches:
                return False
        conditions = ruleset.rules[rule_index].conditions
        for index in ruleset.address_conditions[rule_index]:
            if not self._address_condition(rule_index, index, conditions[index]):
                return False
        return True

    def _event(self, rule_index: int, rule: Rule, on_match: tuple[str, ...]) -> dict[str, Any]:
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


def _add(
    reported: list[dict[tuple[int, int], set[int]] | None], position: int,
    groups: list[tuple[int, int]], index: int,
) -> None:
    found = reported[position]
    if found is None:
        found = reported[position] = {}
    for group in groups:
        chosen = found.get(group)
        if chosen is None:
            found[group] = {index}
        else:
            chosen.add(index)


def _candidates(
    views: list[AddressView], group: list[AddressView], lines: dict[int, set[int]],
    ranks: dict[tuple[str, ...], int],
) -> list[_Candidate]:
    """(recording order, value index, view, lane, text, patterns) for each lane that reads a
    candidate line of the group's scan as it is and has some of its patterns.

    When a condition matches several values, the first recorded is reported: lanes go chain
    by chain, in the order the run first meets each chain (see `_chain_ranks`), then in the
    order of the run's addresses and their lanes; values in order within a lane."""
    firsts = [0]
    for view in group[:-1]:
        firsts.append(firsts[-1] + view.line_count())
    found = []
    for line, patterns in lines.items():
        number = bisect_right(firsts, line) - 1
        view = group[number]
        owner = view.owner(line - firsts[number])
        text = view.text_of(owner)
        place = views.index(view)
        for position, lane in enumerate(view.plan.lanes):
            if lane.pattern_ids.isdisjoint(patterns):
                continue
            relevant = patterns & lane.pattern_ids
            if view.shows(lane.variant, owner):
                found.append(
                    ((ranks[lane.transformers], place, position), owner[1], view, lane, text,
                     relevant)
                )
    return found


def _keyed_candidates(
    views: list[AddressView], group: list[AddressView], keyed: Set[int],
    ranks: dict[tuple[str, ...], int],
) -> list[_Candidate]:
    """As `_candidates`, for patterns that only conditions on key paths read: the values
    under those paths, looked up directly (a pattern like `.*` hits every line)."""
    found = []
    for view in group:
        place = views.index(view)
        for position, lane in enumerate(view.plan.lanes):
            texts = view.texts[lane.variant]
            if not texts:
                continue
            for pattern in keyed & lane.pattern_ids:
                for key_path in lane.pattern_paths[pattern]:
                    for index in view.under(lane.variant, key_path):
                        found.append(
                            ((ranks[lane.transformers], place, position), index, view, lane,
                             texts[index], {pattern})
                        )
    return found


def _chain_ranks(views: list[AddressView]) -> dict[tuple[str, ...], int]:
    """Transformer chains in the order the run first meets them among lanes that have
    patterns or detector triggers and values to read."""
    ranks: dict[tuple[str, ...], int] = {}
    for view in views:
        for transformers in view.plan.chain_sequence[bool(view.raws[0]) + 2 * bool(view.raws[1])]:
            if transformers not in ranks:
                ranks[transformers] = len(ranks)
    return ranks
