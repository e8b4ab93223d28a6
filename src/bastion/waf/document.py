"""Reading ddwaf 2.x rule documents into plain, validated objects.

Validation is strict about shape and lenient about content: a malformed document is an error
naming the JSON path of the fault, while one bad rule among good ones is skipped and reported,
so a single typo in a large rule file never leaves an application unprotected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.waf.operators import (
    EXPLOIT_DETECTORS,
    ExploitDetector,
    Operator,
    OperatorError,
    build_operator,
)
from bastion.waf.transformers import SELECTORS, unknown_transformers

# The reference-engine version this engine answers to in `min_version`/`max_version` gates.
COMPAT_VERSION = (1, 24, 1)

KeyPath = tuple[str | int, ...]


class RulesetError(ValueError):
    """A rule document that cannot be used at all; the message starts with the JSON path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class Target:
    """One input of a condition: where to look and how to transform what is there."""

    address: str
    key_path: KeyPath
    transformers: tuple[str, ...]
    keys_only: bool


@dataclass(frozen=True)
class Condition:
    operator: Operator
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    tags: Mapping[str, str]
    conditions: tuple[Condition, ...]
    on_match: tuple[str, ...]
    enabled: bool
    custom: bool


@dataclass(frozen=True)
class RuleTarget:
    """Selects rules by id or by tags, as `rules_target` entries do."""

    rule_id: str | None
    tags: Mapping[str, str]

    def selects(self, rule: Rule) -> bool:
        if self.rule_id is not None:
            return rule.id == self.rule_id
        return all(rule.tags.get(k) == v for k, v in self.tags.items())


@dataclass(frozen=True)
class Exclusion:
    """A rule filter (no inputs) or an input filter, active when its conditions hold."""

    id: str
    targets: tuple[RuleTarget, ...]
    conditions: tuple[Condition, ...]
    inputs: tuple[tuple[str, KeyPath], ...]
    mode: str  # "bypass" or "monitor"

    def selects(self, rule: Rule) -> bool:
        return not self.targets or any(t.selects(rule) for t in self.targets)


@dataclass(frozen=True)
class Override:
    targets: tuple[RuleTarget, ...]
    enabled: bool | None
    on_match: tuple[str, ...] | None


@dataclass(frozen=True)
class Action:
    type: str
    parameters: Mapping[str, Any]


@dataclass
class Diagnostics:
    loaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "loaded": list(self.loaded),
            "failed": dict(self.failed),
            "skipped": list(self.skipped),
            "disabled": list(self.disabled),
            "warnings": list(self.warnings),
        }


DataTables = Mapping[str, Mapping[str, float]]


def _version(text: object) -> tuple[int, ...] | None:
    if not isinstance(text, str):
        return None
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return None


def check_document(document: object) -> Mapping[str, Any]:
    """The top-level shape every document must have; raises RulesetError otherwise."""
    if not isinstance(document, Mapping):
        raise RulesetError("$", "a rule document must be a JSON object")
    version = document.get("version")
    if version is not None and (not isinstance(version, str) or not version.startswith("2.")):
        raise RulesetError("$.version", f"unsupported format version {version!r}; expected 2.x")
    for key in ("rules", "custom_rules", "rules_data", "exclusions", "actions",
                "rules_override", "processors", "scanners", "rules_compat"):
        if key in document and not isinstance(document[key], list):
            raise RulesetError(f"$.{key}", "must be a list")
    return document


def _require(mapping: Any, key: str, kind: type | tuple[type, ...], path: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise OperatorError(f"{path}.{key} is required")
    value = mapping[key]
    if not isinstance(value, kind):
        raise OperatorError(f"{path}.{key} has the wrong type")
    return value


def _key_path(raw: object, path: str) -> KeyPath:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(k, str) or (isinstance(k, int) and not isinstance(k, bool)) for k in raw
    ):
        raise OperatorError(f"{path}.key_path must be a list of strings or integers")
    return tuple(raw)


def _transformers(raw: object, path: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise OperatorError(f"{path} must be a list of strings")
    unknown = unknown_transformers(raw)
    if unknown:
        raise OperatorError(f"{path}: unknown transformer {unknown[0]!r}")
    return tuple(raw)


def _targets(raw: object, rule_transformers: tuple[str, ...], path: str) -> tuple[Target, ...]:
    if not isinstance(raw, list) or not raw:
        raise OperatorError(f"{path} must be a non-empty list")
    targets = []
    for index, entry in enumerate(raw):
        where = f"{path}[{index}]"
        address = _require(entry, "address", str, where)
        key_path = _key_path(entry.get("key_path"), where)
        names = (
            _transformers(entry["transformers"], f"{where}.transformers")
            if "transformers" in entry
            else rule_transformers
        )
        keys_only = "keys_only" in names
        chain = tuple(n for n in names if n not in SELECTORS)
        targets.append(Target(address, key_path, chain, keys_only))
    return tuple(targets)


def parse_condition(
    raw: object, rule_transformers: tuple[str, ...], data: DataTables, path: str
) -> Condition:
    operator_name = _require(raw, "operator", str, path)
    params = _require(raw, "parameters", Mapping, path)
    if operator_name in EXPLOIT_DETECTORS:
        groups = {
            key: [(t.address, t.key_path) for t in _targets(value, (), f"{path}.parameters.{key}")]
            for key, value in params.items()
            if key != "options"
        }
        if "resource" not in groups or "params" not in groups:
            raise OperatorError(f"{path}.parameters needs 'resource' and 'params'")
        resource, user_params = groups.pop("resource"), groups.pop("params")
        options = params.get("options", {})
        if not isinstance(options, Mapping):
            raise OperatorError(f"{path}.parameters.options must be an object")
        operator: Operator = ExploitDetector(operator_name, resource, user_params, groups,
                                             dict(options))
        targets = tuple(Target(a, k, (), False) for a, k in resource)
        return Condition(operator, targets)
    try:
        operator = build_operator(operator_name, params, data)
    except OperatorError as exc:
        raise OperatorError(f"{path}.parameters: {exc}") from exc
    targets = _targets(params.get("inputs"), rule_transformers, f"{path}.parameters.inputs")
    return Condition(operator, targets)


def _conditions(
    raw: object, transformers: tuple[str, ...], data: DataTables, path: str, allow_empty: bool
) -> tuple[Condition, ...]:
    if raw is None and allow_empty:
        return ()
    if not isinstance(raw, list) or (not raw and not allow_empty):
        raise OperatorError(f"{path} must be a non-empty list")
    return tuple(
        parse_condition(entry, transformers, data, f"{path}[{i}]") for i, entry in enumerate(raw)
    )


def _tags(raw: object, path: str) -> dict[str, str]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise OperatorError(f"{path}.tags must be an object with a string 'type'")
    return {str(k): str(v) for k, v in raw.items()}


def version_gate(raw: Mapping[str, Any]) -> bool:
    """Whether this engine version is within the rule's min_version/max_version."""
    low, high = _version(raw.get("min_version")), _version(raw.get("max_version"))
    return (low is None or low <= COMPAT_VERSION) and (high is None or high >= COMPAT_VERSION)


def _object(raw: object, path: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise OperatorError(f"{path} must be an object")
    return raw


def parse_rule(raw: object, data: DataTables, path: str, custom: bool) -> Rule:
    raw = _object(raw, path)
    rule_id = _require(raw, "id", str, path)
    name = raw.get("name", rule_id)
    transformers = _transformers(raw.get("transformers", []), f"{path}.transformers")
    conditions = _conditions(raw.get("conditions"), transformers, data, f"{path}.conditions", False)
    on_match = raw.get("on_match", [])
    if not isinstance(on_match, list) or not all(isinstance(a, str) for a in on_match):
        raise OperatorError(f"{path}.on_match must be a list of action ids")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise OperatorError(f"{path}.enabled must be a boolean")
    return Rule(
        rule_id, str(name), _tags(raw.get("tags"), path), conditions, tuple(on_match), enabled,
        custom,
    )


def parse_rules_target(raw: object, path: str) -> tuple[RuleTarget, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise OperatorError(f"{path} must be a list")
    targets = []
    for index, entry in enumerate(raw):
        where = f"{path}[{index}]"
        if isinstance(entry, Mapping) and isinstance(entry.get("rule_id"), str):
            targets.append(RuleTarget(entry["rule_id"], {}))
        elif isinstance(entry, Mapping) and isinstance(entry.get("tags"), Mapping):
            targets.append(RuleTarget(None, {str(k): str(v) for k, v in entry["tags"].items()}))
        else:
            raise OperatorError(f"{where} needs 'rule_id' or 'tags'")
    return tuple(targets)


def parse_exclusion(raw: object, data: DataTables, path: str) -> Exclusion:
    raw = _object(raw, path)
    exclusion_id = _require(raw, "id", str, path)
    targets = parse_rules_target(raw.get("rules_target"), f"{path}.rules_target")
    conditions = _conditions(raw.get("conditions"), (), data, f"{path}.conditions", True)
    inputs_raw = raw.get("inputs", [])
    if not isinstance(inputs_raw, list):
        raise OperatorError(f"{path}.inputs must be a list")
    inputs = tuple(
        (
            _require(entry, "address", str, f"{path}.inputs[{i}]"),
            _key_path(entry.get("key_path"), f"{path}.inputs[{i}]"),
        )
        for i, entry in enumerate(inputs_raw)
    )
    mode = raw.get("on_match", "bypass")
    if mode not in ("bypass", "monitor"):
        raise OperatorError(f"{path}.on_match must be 'bypass' or 'monitor'")
    return Exclusion(exclusion_id, targets, conditions, inputs, mode)


def parse_override(raw: object, path: str) -> Override:
    raw = _object(raw, path)
    targets = parse_rules_target(raw.get("rules_target"), f"{path}.rules_target")
    if not targets:
        raise OperatorError(f"{path}.rules_target must not be empty")
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise OperatorError(f"{path}.enabled must be a boolean")
    on_match = raw.get("on_match")
    if on_match is not None and (
        not isinstance(on_match, list) or not all(isinstance(a, str) for a in on_match)
    ):
        raise OperatorError(f"{path}.on_match must be a list of action ids")
    return Override(targets, enabled, tuple(on_match) if on_match is not None else None)


ACTION_TYPES = frozenset(
    {"block_request", "redirect_request", "generate_stack", "generate_schema", "monitor"}
)

DEFAULT_ACTIONS: dict[str, Action] = {
    "block": Action("block_request", {"status_code": 403, "type": "auto", "grpc_status_code": 10}),
    "stack_trace": Action("generate_stack", {}),
    "extract_schema": Action("generate_schema", {}),
    "monitor": Action("monitor", {}),
}


def parse_action(raw: object, path: str) -> tuple[str, Action]:
    raw = _object(raw, path)
    action_id = _require(raw, "id", str, path)
    kind = _require(raw, "type", str, path)
    if kind not in ACTION_TYPES:
        raise OperatorError(f"{path}.type {kind!r} is not one of {sorted(ACTION_TYPES)}")
    params = dict(raw.get("parameters", {}))
    if kind == "block_request":
        params.setdefault("status_code", 403)
        params.setdefault("type", "auto")
        status = params["status_code"]
        if isinstance(status, str) and status.isdigit():
            params["status_code"] = int(status)
        if not isinstance(params["status_code"], int) or not 100 <= params["status_code"] <= 599:
            raise OperatorError(f"{path}.parameters.status_code must be an HTTP status")
        if params["type"] not in ("auto", "json", "html"):
            raise OperatorError(f"{path}.parameters.type must be auto, json or html")
    if kind == "redirect_request":
        location = params.get("location")
        if not isinstance(location, str) or not location:
            raise OperatorError(f"{path}.parameters.location is required")
        status = int(params.get("status_code", 303))
        # Only real redirect codes redirect; anything else falls back to 303 as ddwaf does.
        params["status_code"] = status if status in (301, 302, 303, 307) else 303
    return action_id, Action(kind, params)


def parse_rules_data(
    raw: Sequence[Any], path: str, warnings: list[str]
) -> dict[str, dict[str, float]]:
    """Deny lists by id; entries from several documents with the same id are merged."""
    tables: dict[str, dict[str, float]] = {}
    for index, entry in enumerate(raw):
        where = f"{path}[{index}]"
        try:
            data_id = _require(entry, "id", str, where)
            kind = _require(entry, "type", str, where)
            if kind not in ("ip_with_expiration", "data_with_expiration"):
                raise OperatorError(f"{where}.type {kind!r} is not supported")
            items = _require(entry, "data", list, where)
        except OperatorError as exc:
            warnings.append(str(exc))
            continue
        table = tables.setdefault(data_id, {})
        for position, item in enumerate(items):
            value = item.get("value") if isinstance(item, Mapping) else None
            expiry = item.get("expiration", 0) if isinstance(item, Mapping) else None
            if not isinstance(value, str) or not isinstance(expiry, int | float):
                warnings.append(f"{where}.data[{position}]: needs a string value and a number")
                continue
            previous = table.get(value)
            # The longest-lived entry wins; 0 means it never expires.
            if previous is None or expiry == 0 or (previous != 0 and expiry > previous):
                table[value] = float(expiry)
    return tables
