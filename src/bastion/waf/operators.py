"""Condition operators of the ddwaf rule format.

Three shapes of operator exist, by how the engine can run them:
- pattern operators (`match_regex`, `phrase_match`) contribute one linear-time pattern to the
  shared Hyperscan database of the value they inspect, so they cost nothing per rule at run time;
- value operators (`exact_match`, `ip_match`, `equals`, `is_sqli`, `is_xss`, `!match_regex`)
  look at one value at a time;
- address operators (`exists`, `!exists` and the exploit detectors) look at whole addresses.
"""

from __future__ import annotations

import importlib
import ipaddress
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bastion.waf.patterns import Pattern, PatternError, compile_re2


class OperatorError(ValueError):
    """A condition's parameters do not describe a usable operator."""


# ---------------------------------------------------------------- pattern operators


@dataclass(frozen=True)
class PatternOperator:
    """An operator decided by one pattern in the shared scan."""

    name: str
    pattern: Pattern
    min_length: int
    operator_value: str


def _literal(text: str) -> str:
    """Escape `text` for Hyperscan and RE2 alike."""
    out = []
    for ch in text:
        if ch.isalnum() or ch == "_" or ord(ch) > 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}")
    return "".join(out)


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def phrase_pattern(phrases: Sequence[str], word_boundary: bool) -> str:
    """One alternation for a phrase list: Hyperscan turns it into a literal matcher."""
    parts = []
    for phrase in phrases:
        body = _literal(phrase)
        if word_boundary and phrase:
            if _is_word(phrase[0]):
                body = r"\b" + body
            if _is_word(phrase[-1]):
                body += r"\b"
        parts.append(body)
    return "(?:" + "|".join(parts) + ")"


# ---------------------------------------------------------------- value operators


class ValueOperator:
    """Looks at one transformed value; returns the highlight when it matches."""

    name = ""
    operator_value = ""
    min_length = 0
    trigger: Pattern | None = None

    @property
    def share_key(self) -> object:
        """Operators with equal keys give equal answers: the engine asks only one of them."""
        return id(self)

    def match(self, value: str) -> str | None:
        raise NotImplementedError


class NegatedRegex(ValueOperator):
    def __init__(self, pattern: Pattern, min_length: int) -> None:
        self.name = "!match_regex"
        self.operator_value = pattern.regex
        self.min_length = min_length
        self._program = compile_re2(pattern)
        self._pattern = pattern

    @property
    def share_key(self) -> object:
        return (self.name, self._pattern, self.min_length)

    def match(self, value: str) -> str | None:
        return value if self._program.search(value) is None else None


class DataSet:
    """A deny list: literal values with optional expiry (seconds since the epoch, 0 = never)."""

    def __init__(self, entries: Mapping[str, float]) -> None:
        self.entries = dict(entries)

    def active(self, value: str, now: float) -> bool:
        expiry = self.entries.get(value)
        return expiry is not None and (expiry == 0 or expiry > now)


class ExactMatch(ValueOperator):
    def __init__(self, data: DataSet) -> None:
        self.name = "exact_match"
        self._data = data

    def match(self, value: str) -> str | None:
        return value if self._data.active(value, time.time()) else None


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class IpSet:
    """CIDR ranges with expiry; single addresses are looked up in a dict, ranges scanned."""

    def __init__(self, entries: Mapping[str, float]) -> None:
        self._hosts: dict[int, float] = {}
        self._hosts6: dict[int, float] = {}
        self._networks: list[tuple[IpNetwork, float]] = []
        for text, expiry in entries.items():
            network = ipaddress.ip_network(text.strip(), strict=False)
            if network.num_addresses == 1:
                table = self._hosts if network.version == 4 else self._hosts6
                table[int(network.network_address)] = expiry
            else:
                self._networks.append((network, expiry))

    def active(self, address: str, now: float) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        table = self._hosts if ip.version == 4 else self._hosts6
        expiry = table.get(int(ip))
        if expiry is not None and (expiry == 0 or expiry > now):
            return True
        return any(
            ip in network and (expiry == 0 or expiry > now)
            for network, expiry in self._networks
            if network.version == ip.version
        )


class IpMatch(ValueOperator):
    def __init__(self, data: IpSet) -> None:
        self.name = "ip_match"
        self._data = data

    def match(self, value: str) -> str | None:
        return value if self._data.active(value, time.time()) else None


class Equals(ValueOperator):
    """Compares a scalar with a typed constant (string, boolean, signed, unsigned, float)."""

    def __init__(self, kind: str, expected: Any, delta: float) -> None:
        self.name = "equals"
        self.operator_value = str(expected)
        self._kind = kind
        self._expected = expected
        self._delta = delta

    def match(self, value: str) -> str | None:
        kind = self._kind
        if kind == "string":
            return value if value == self._expected else None
        if kind == "boolean":
            return value if value.lower() == ("true" if self._expected else "false") else None
        try:
            number = float(value) if kind == "float" else int(value)
        except ValueError:
            return None
        if kind == "float":
            return value if math.isclose(number, self._expected, abs_tol=self._delta) else None
        return value if number == self._expected else None


class Detector(ValueOperator):
    """A tokenizer-backed detector from `bastion.detect` (is_sqli, is_xss, ...).

    A detector module may declare `TRIGGER`, a regular expression that matches every
    single-line ASCII value the detector can flag, and `TRIGGER_LINE`, the same test in the
    form the engine scans: compiled multi-line, it runs from a trigger hit to the end of the
    line holding it, so that over many values joined by newlines it reports each matching
    value once (without `TRIGGER_LINE` the engine appends `[^\n]*$` to `TRIGGER`). The engine
    calls the detector only on the values whose line the trigger reported, and on values that
    are not single-line ASCII, which spares most Python calls on benign values. `trigger` is
    the line form.
    """

    def __init__(
        self, name: str, function: Callable[[str], str | None], trigger: Pattern | None = None
    ) -> None:
        self.name = name
        self._function = function
        self.trigger = trigger

    @property
    def share_key(self) -> object:
        return (self.name, self._function)

    def match(self, value: str) -> str | None:
        return self._function(value)


# `is_shi` (shell injection in user input) is a Bastion extension of the ddwaf operators.
_DETECTORS: Final = {
    "is_sqli": "bastion.detect.sql",
    "is_xss": "bastion.detect.html",
    "is_shi": "bastion.detect.shell",
}


def _detector(name: str) -> Detector:
    """The detector behind an operator name, imported on first use."""
    try:
        module = importlib.import_module(_DETECTORS[name])
        function: Callable[[str], str | None] = getattr(module, name)
    except (ImportError, AttributeError) as exc:
        raise OperatorError(f"detector {name!r} is unavailable: {exc}") from exc
    line = getattr(module, "TRIGGER_LINE", None)
    trigger = getattr(module, "TRIGGER", None)
    if line is None and trigger:
        line = f"(?:{trigger})[^\\n]*$"
    pattern = Pattern(line, case_sensitive=False) if line else None
    return Detector(name, function, pattern)


# ---------------------------------------------------------------- address operators


@dataclass(frozen=True)
class Exists:
    negated: bool

    @property
    def name(self) -> str:
        return "!exists" if self.negated else "exists"


@dataclass(frozen=True)
class ExploitDetector:
    """Compares what reaches a dangerous sink (`resource`) with what the user sent (`params`)."""

    name: str
    resource: list[tuple[str, tuple[str | int, ...]]]
    params: list[tuple[str, tuple[str | int, ...]]]
    extra: dict[str, list[tuple[str, tuple[str | int, ...]]]] = field(default_factory=dict)
    # The rule's `options` (`path-inspection` for ssrf_detector), as written.
    options: Mapping[str, Any] = field(default_factory=dict)


EXPLOIT_DETECTORS: Final = frozenset(
    {"sqli_detector", "sqli_detector@v2", "lfi_detector", "lfi_detector@v2", "ssrf_detector",
     "shi_detector", "cmdi_detector"}
)

Operator = PatternOperator | ValueOperator | Exists | ExploitDetector


def _options(params: Mapping[str, Any]) -> Mapping[str, Any]:
    options = params.get("options", {})
    if not isinstance(options, Mapping):
        raise OperatorError("options must be an object")
    return options


def _min_length(options: Mapping[str, Any]) -> int:
    value = options.get("min_length", 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise OperatorError("options.min_length must be a non-negative integer")
    return value


def _string_list(params: Mapping[str, Any], key: str) -> list[str]:
    values = params.get(key)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise OperatorError(f"parameters.{key} must be a list of strings")
    return list(values)


def build_value_data(
    params: Mapping[str, Any], data: Mapping[str, Mapping[str, float]]
) -> Mapping[str, float]:
    """The literal list of an operator: inline `list`, or a `rules_data` entry named by `data`."""
    if "data" in params:
        name = params["data"]
        if not isinstance(name, str):
            raise OperatorError("parameters.data must be a string")
        return data.get(name, {})
    return dict.fromkeys(_string_list(params, "list"), 0.0)


def build_operator(
    name: str, params: Mapping[str, Any], data: Mapping[str, Mapping[str, float]]
) -> Operator:
    """Build the operator `name` from a condition's parameters; OperatorError if unusable."""
    options = _options(params)
    if name in ("match_regex", "!match_regex"):
        regex = params.get("regex")
        if not isinstance(regex, str):
            raise OperatorError("parameters.regex must be a string")
        case_sensitive = options.get("case_sensitive", False)
        if not isinstance(case_sensitive, bool):
            raise OperatorError("options.case_sensitive must be a boolean")
        pattern = Pattern(regex, case_sensitive)
        try:
            if name == "!match_regex":
                return NegatedRegex(pattern, _min_length(options))
            compile_re2(pattern)  # RE2 must accept it: it finds the highlight
        except PatternError as exc:
            raise OperatorError(str(exc)) from exc
        return PatternOperator(name, pattern, _min_length(options), regex)
    if name == "phrase_match":
        phrases = _string_list(params, "list")
        if not phrases:
            raise OperatorError("parameters.list must not be empty")
        boundary = bool(options.get("enforce_word_boundary", False))
        pattern = Pattern(phrase_pattern(phrases, boundary), case_sensitive=True)
        return PatternOperator(name, pattern, 0, "")
    if name == "exact_match":
        return ExactMatch(DataSet(build_value_data(params, data)))
    if name == "ip_match":
        try:
            return IpMatch(IpSet(build_value_data(params, data)))
        except ValueError as exc:
            raise OperatorError(f"invalid IP or CIDR: {exc}") from exc
    if name == "equals":
        return _build_equals(params)
    if name in ("exists", "!exists"):
        return Exists(negated=name.startswith("!"))
    if name in _DETECTORS:
        return _detector(name)
    raise OperatorError(f"unknown operator {name!r}")


def _build_equals(params: Mapping[str, Any]) -> Equals:
    kind = params.get("type", "string")
    if "value" not in params:
        raise OperatorError("parameters.value is required")
    value = params["value"]
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "signed": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "unsigned": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    }
    if kind not in checks:
        raise OperatorError(f"parameters.type {kind!r} is not one of {sorted(checks)}")
    if not checks[kind](value):
        raise OperatorError(f"parameters.value does not have type {kind}")
    delta = params.get("delta", 0.01)
    return Equals(kind, float(value) if kind == "float" else value, float(delta))
