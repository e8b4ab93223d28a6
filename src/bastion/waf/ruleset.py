"""The immutable Ruleset: rule documents loaded, validated, merged and compiled once.

A Ruleset never changes after it is built; `update()` returns a new one that shares the
compiled pattern sets that did not change. Swapping a reference to a Ruleset is therefore the
whole of a live rule update, and requests already running keep the rules they started with.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from bastion.waf.document import (
    DEFAULT_ACTIONS,
    Action,
    Diagnostics,
    Exclusion,
    Override,
    Rule,
    RulesetError,
    check_document,
    parse_action,
    parse_exclusion,
    parse_override,
    parse_rule,
    parse_rules_data,
    version_gate,
)
from bastion.waf.engine import WafContext
from bastion.waf.limits import DEFAULT_LIMITS, Limits
from bastion.waf.operators import Exists, ExploitDetector, OperatorError, PatternOperator
from bastion.waf.patterns import PatternError, check_pattern
from bastion.waf.plan import Lane, PatternCache, Plan, PresenceCheck, build_plan
from bastion.waf.verdicts import DEFAULT_MAX_LENGTH, CleanParts

logger = logging.getLogger("bastion.waf")

_UPDATABLE = ("rules_data", "exclusions", "custom_rules", "actions", "rules_override")


def read_document(source: str | Path) -> dict[str, Any]:
    """Parse a rule file; a syntax error names the line and column."""
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesetError("$", f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RulesetError("$", f"{path} is not UTF-8 text: {exc.reason}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RulesetError("$", f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                           f"{exc.msg}") from exc
    except RecursionError as exc:
        raise RulesetError("$", f"{path}: JSON nested too deeply") from exc
    return dict(check_document(document))


def default_rules_document() -> dict[str, Any]:
    """Our own rule set, bundled with the package."""
    text = resources.files("bastion.waf").joinpath("rules/default.json").read_text("utf-8")
    return dict(check_document(json.loads(text)))


class Ruleset:
    """Compiled rules, exclusions, actions and data; create contexts with `context()`."""

    def __init__(
        self, document: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS,
        cache: PatternCache | None = None,
    ) -> None:
        self.document: Mapping[str, Any] = check_document(document)
        self.limits = limits
        self._cache = cache or PatternCache()
        # Parts of requests that matched nothing (see verdicts.py); set to CleanParts(0) to
        # look at every part every time.
        self.clean_parts = CleanParts(
            max_length=min(DEFAULT_MAX_LENGTH, limits.max_string_length),
            max_items=limits.max_container_size,
        )
        diagnostics = Diagnostics()
        self.data = parse_rules_data(document.get("rules_data", []), "$.rules_data",
                                     diagnostics.warnings)
        self.actions: dict[str, Action] = dict(DEFAULT_ACTIONS)
        for index, raw in enumerate(document.get("actions", [])):
            try:
                action_id, action = parse_action(raw, f"$.actions[{index}]")
            except OperatorError as exc:
                diagnostics.warnings.append(str(exc))
                continue
            self.actions[action_id] = action

        rules: list[Rule] = []
        seen: set[str] = set()
        # Custom rules come first: a user's own rule takes precedence over the bundled ones.
        for key, custom in (("custom_rules", True), ("rules", False)):
            for index, raw in enumerate(document.get(key, [])):
                path = f"$.{key}[{index}]"
                name = _rule_name(raw, path)
                if isinstance(raw, Mapping) and not version_gate(raw):
                    diagnostics.skipped.append(name)
                    continue
                if name in seen:
                    diagnostics.failed[name] = f"{path}: duplicate rule id"
                    continue
                try:
                    rule = parse_rule(raw, self.data, path, custom)
                    self._check_patterns(rule, path)
                except (OperatorError, PatternError) as exc:
                    diagnostics.failed[name] = str(exc)
                    continue
                seen.add(name)
                rules.append(rule)
        overrides = self._overrides(document.get("rules_override", []), diagnostics)
        enabled = {r.id: self._enabled(r, overrides) for r in rules}
        self.rules: tuple[Rule, ...] = tuple(r for r in rules if enabled[r.id])
        diagnostics.loaded = [r.id for r in rules]
        diagnostics.disabled = [r.id for r in rules if not enabled[r.id]]
        self.index = {rule.id: i for i, rule in enumerate(self.rules)}
        self.on_match = [self._on_match(rule, overrides) for rule in self.rules]
        # Blocking rules first, as the reference engine does: a block should not wait.
        self.order = sorted(
            range(len(self.rules)),
            key=lambda i: (not self.rules[i].custom, not self._blocks(self.on_match[i]), i),
        )

        self.exclusions: list[Exclusion] = []
        for index, raw in enumerate(document.get("exclusions", [])):
            try:
                self.exclusions.append(parse_exclusion(raw, self.data, f"$.exclusions[{index}]"))
            except OperatorError as exc:
                diagnostics.warnings.append(str(exc))
        self.exclusion_targets = {
            e.id: [i for i, rule in enumerate(self.rules) if e.selects(rule)]
            for e in self.exclusions
        }
        if (document.get("rules") or document.get("custom_rules")) and not rules:
            raise RulesetError("$.rules", "no rule could be loaded: "
                               + "; ".join(list(diagnostics.failed.values())[:3]))
        self.plan: Plan = build_plan(self.rules, self._cache)
        # Rules with conditions on whole addresses: checked when those addresses arrive,
        # and `!exists` rules on every run, since an absence can only be seen at the end.
        self.position = {rule: place for place, rule in enumerate(self.order)}
        # Per rule, which conditions the scans decide and which look at whole addresses.
        self.value_conditions = [
            [i for i, c in enumerate(r.conditions)
             if not isinstance(c.operator, Exists | ExploitDetector)]
            for r in self.rules
        ]
        # (rule, condition) of the conditions decided on values, the only matches that
        # depend on the parts a run looked at (see verdicts.py).
        self.value_slots = frozenset(
            (rule, condition) for rule, conditions in enumerate(self.value_conditions)
            for condition in conditions
        )
        self.address_conditions = [
            [i for i, c in enumerate(r.conditions)
             if isinstance(c.operator, Exists | ExploitDetector)]
            for r in self.rules
        ]
        self.check_on_address: dict[str, set[int]] = {}
        self.always_check: set[int] = set()
        # Exploit rules by the addresses of their user parameters: a parameter arriving after
        # the sink's resource can still complete them, but on the usual run (parameters,
        # no sink yet) they are not looked at. `resources` are the sinks' addresses.
        self.check_with_resource: dict[str, set[int]] = {}
        resources: set[str] = set()
        sinks: set[str] = set()  # the resources and what comes with them (db_type)
        for rule_index, rule in enumerate(self.rules):
            for condition in rule.conditions:
                operator = condition.operator
                if isinstance(operator, Exists) and operator.negated:
                    self.always_check.add(rule_index)
                elif isinstance(operator, Exists | ExploitDetector):
                    for target in condition.targets:
                        self.check_on_address.setdefault(target.address, set()).add(rule_index)
                if isinstance(operator, ExploitDetector):
                    resources.update(target.address for target in condition.targets)
                    sinks.update(address for targets in operator.extra.values()
                                 for address, _ in targets)
                    for address, _ in operator.params:
                        self.check_with_resource.setdefault(address, set()).add(rule_index)
        self.resources = frozenset(resources)
        # What a sink hook's run may carry: a run of these alone is a sink call.
        self.sink_addresses = frozenset(resources | sinks)
        self.presence_gates = _presence_gates(self.rules, self.check_on_address)
        self.sink_gates = _sink_gates(self.rules, self.sink_addresses)
        # Every address a rule or an exclusion reads: a caller may skip building the others.
        self.addresses: frozenset[str] = frozenset(
            target.address
            for condition in (*(c for r in self.rules for c in r.conditions),
                              *(c for e in self.exclusions for c in e.conditions))
            for target in condition.targets
        ) | frozenset(self.check_on_address) | frozenset(self.check_with_resource)
        # Where each `exists` condition looks, by id(condition): checked on every run that
        # brings its address.
        conditions = [c for r in self.rules for c in r.conditions]
        conditions += [c for e in self.exclusions for c in e.conditions]
        self.presence = {
            id(c): PresenceCheck(c.targets) for c in conditions if isinstance(c.operator, Exists)
        }
        # Addresses read whole on the runs that bring them (or on every run), whatever their
        # values say: `exists` conditions either way, and the exclusions' conditions. A body
        # known clean may be left unparsed only when it is not among them (context.py).
        whole = {t.address for c in conditions if isinstance(c.operator, Exists)
                 for t in c.targets}
        whole.update(t.address for e in self.exclusions for c in e.conditions for t in c.targets)
        self.read_whole = frozenset(whole)
        self.diagnostics: dict[str, Any] = diagnostics.as_dict()
        # Operators that raised while evaluating, by name: the engine fails open on them.
        self.operator_errors: dict[str, int] = {}

    @property
    def lanes(self) -> dict[str, list[Lane]]:
        """The plan's lanes by address (see plan.py)."""
        return self.plan.lanes

    @staticmethod
    def _check_patterns(rule: Rule, path: str) -> None:
        for index, condition in enumerate(rule.conditions):
            if isinstance(condition.operator, PatternOperator):
                problem = check_pattern(condition.operator.pattern)
                if problem:
                    raise PatternError(f"{path}.conditions[{index}].parameters.regex: {problem}")

    @staticmethod
    def _overrides(raw: Sequence[Any], diagnostics: Diagnostics) -> list[Override]:
        overrides = []
        for index, entry in enumerate(raw):
            try:
                overrides.append(parse_override(entry, f"$.rules_override[{index}]"))
            except OperatorError as exc:
                diagnostics.warnings.append(str(exc))
        # Overrides by id beat overrides by tags, whatever their order in the document.
        return sorted(overrides, key=lambda o: any(t.rule_id for t in o.targets))

    @staticmethod
    def _enabled(rule: Rule, overrides: Sequence[Override]) -> bool:
        enabled = rule.enabled
        for override in overrides:
            if override.enabled is not None and any(t.selects(rule) for t in override.targets):
                enabled = override.enabled
        return enabled

    @staticmethod
    def _on_match(rule: Rule, overrides: Sequence[Override]) -> tuple[str, ...]:
        on_match = rule.on_match
        for override in overrides:
            if override.on_match is not None and any(t.selects(rule) for t in override.targets):
                on_match = override.on_match
        return on_match

    def _blocks(self, on_match: Sequence[str]) -> bool:
        return any(
            a in self.actions and self.actions[a].type in ("block_request", "redirect_request")
            for a in on_match
        )

    def report_operator_error(self, operator: str, error: Exception) -> None:
        """Count an operator that raised; log the first failure of each operator once."""
        self.operator_errors[operator] = self.operator_errors.get(operator, 0) + 1
        if self.operator_errors[operator] == 1:
            logger.error("bastion: operator %s failed and was skipped (fail open): %r",
                         operator, error)

    def context(self) -> WafContext:
        """A fresh per-request context."""
        return WafContext(self)

    def update(self, **changes: Sequence[Any]) -> Ruleset:
        """A new Ruleset with some of rules_data, exclusions, custom_rules, actions and
        rules_override replaced; compiled patterns that did not change are reused."""
        unknown = sorted(set(changes) - set(_UPDATABLE))
        if unknown:
            raise TypeError(f"update() cannot change {', '.join(unknown)}")
        document = dict(self.document)
        for key, value in changes.items():
            if not isinstance(value, list):
                raise RulesetError(f"$.{key}", "must be a list")
            document[key] = value
        return Ruleset(document, self.limits, self._cache)


def _presence_gates(
    rules: Sequence[Rule], check_on_address: Mapping[str, set[int]]
) -> dict[str, tuple[frozenset[str], tuple[tuple[int, int], ...], frozenset[int]]]:
    """Per address, (rule, condition) pairs where the condition is an `exists` on one-key paths
    of that address alone (one header, say), with all their names and their rules: while the
    address (a mapping) holds none of the names, none of those rules can fire unless the
    condition matched earlier. Requests rarely carry the headers scanners and smuggling leave,
    so the engine skips those rules at once."""
    gates: dict[str, tuple[set[str], list[tuple[int, int]]]] = {}
    for address, indexes in check_on_address.items():
        for rule_index in sorted(indexes):
            for condition_index, condition in enumerate(rules[rule_index].conditions):
                operator, targets = condition.operator, condition.targets
                if isinstance(operator, Exists) and not operator.negated and all(
                    t.address == address and len(t.key_path) == 1
                    and isinstance(t.key_path[0], str) for t in targets
                ):
                    names, gated = gates.setdefault(address, (set(), []))
                    names.update(str(t.key_path[0]) for t in targets)
                    gated.append((rule_index, condition_index))
                    break
    return {
        a: (frozenset(names), tuple(gated), frozenset(rule for rule, _ in gated))
        for a, (names, gated) in gates.items()
    }


def _sink_gates(
    rules: Sequence[Rule], sink_addresses: frozenset[str]
) -> dict[str, tuple[ExploitDetector, ...]]:
    """Per sink resource, the exploit detectors that read it, when a sink call can be settled
    without the rules. A detector reports user input that reshapes its resource, so a call
    whose resource holds none of the user's parameters (see `WafContext.quiet_sink`) cannot
    complete a rule that needs that detector. That settles the call when each detector reads
    one whole address, and every other condition on a sink address shares its rule with a
    detector of that very address (the reference's SSRF rule pairs a URL pattern with its
    detector); otherwise there are no gates."""
    gates: dict[str, list[ExploitDetector]] = {}
    for rule in rules:
        detected: set[str] = set()
        for condition in rule.conditions:
            operator = condition.operator
            if isinstance(operator, ExploitDetector):
                if len(operator.resource) != 1 or operator.resource[0][1]:
                    return {}
                detected.add(operator.resource[0][0])
                gates.setdefault(operator.resource[0][0], []).append(operator)
        for condition in rule.conditions:
            if not isinstance(condition.operator, ExploitDetector) and any(
                    target.address in sink_addresses and target.address not in detected
                    for target in condition.targets):
                return {}
    return {address: tuple(detectors) for address, detectors in gates.items()}


def _rule_name(raw: object, path: str) -> str:
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
        return str(raw["id"])
    return path


def load_ruleset(
    source: str | Path | Mapping[str, Any] | None = None, limits: Limits = DEFAULT_LIMITS
) -> Ruleset:
    """Load the bundled default rules, a rule file, or an already-parsed document."""
    if source is None:
        document: Mapping[str, Any] = default_rules_document()
    elif isinstance(source, str | Path):
        document = read_document(source)
    else:
        document = check_document(source)
    return Ruleset(document, limits)
