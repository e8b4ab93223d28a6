"""Settings from `BASTION_*` environment variables, validated once at start.

A bad value must never take the application down, nor silently weaken protection: each bad
value is reported with a one-line message naming the variable, and that setting keeps its safe
default (monitor mode, bundled rules, events to stderr).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bastion.clientip import TrustedProxies

MODES = ("monitor", "block")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingError(ValueError):
    """One bad setting: `str()` is the one-line message shown to the user."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """Everything a user can set, with the safe defaults. See README, "Settings"."""

    enabled: bool = True
    mode: str = "monitor"
    rules: str | None = None
    config_file: str | None = None
    event_log: str = "stderr"
    event_rate_limit: float = 100.0
    waf_timeout_us: int = 5000
    max_body_bytes: int = 1 << 20
    trusted_proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies.parse("private"))
    client_ip_header: str | None = None
    obfuscation_key_regex: str | None = None
    obfuscation_value_regex: str | None = None
    block_template_html: str | None = None
    block_template_json: str | None = None
    config_poll_interval_s: float = 1.0
    exploit_prevention: bool = True
    tracing: bool | None = None  # None: on when otlp_endpoint is set
    otlp_endpoint: str | None = None
    service_name: str | None = None
    tracing_global: bool = False  # Bastion's own provider becomes OpenTelemetry's global one

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None
    ) -> tuple[Settings, list[SettingError]]:
        """Settings from the environment, and the errors of the values that were refused."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        errors: list[SettingError] = []
        for name, (variable, parse) in _PARSERS.items():
            raw = env.get(variable)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = parse(raw.strip())
            except SettingError as exc:
                errors.append(exc)
            except ValueError as exc:
                errors.append(SettingError(variable, str(exc)))
        return cls(**values), errors

    @property
    def blocking(self) -> bool:
        return self.mode == "block"

    @property
    def tracing_on(self) -> bool:
        """BASTION_TRACING, or by default whether an OTLP endpoint was given."""
        return self.otlp_endpoint is not None if self.tracing is None else self.tracing


def variable_names() -> dict[str, str]:
    """Setting name -> environment variable, for the documentation and the CLI."""
    return {name: variable for name, (variable, _) in _PARSERS.items()}


def _boolean(raw: str) -> bool:
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _mode(raw: str) -> str:
    low = raw.lower()
    if low not in MODES:
        raise ValueError(f"expected monitor or block, got {raw!r}")
    return low


def _positive_int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low} to {high}, got {value}")
        return value

    return parse


def _positive_float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low:g} to {high:g}, got {value:g}")
        return value

    return parse


def _existing_file(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError(f"no such file: {raw}")
    return raw


def _any_file(raw: str) -> str:
    """A file that may not exist yet (the live configuration), in a directory that does."""
    parent = Path(raw).expanduser().resolve().parent
    if not parent.is_dir():
        raise ValueError(f"the directory of {raw} does not exist")
    return raw


def _event_log(raw: str) -> str:
    if raw.lower() in ("stdout", "stderr", "off"):
        return raw.lower()
    return _any_file(raw)


def _header_name(raw: str) -> str:
    name = raw.lower()
    if not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"not a header name: {raw!r}")
    return name


def _regex(raw: str) -> str:
    import re2

    try:
        re2.compile(raw)
    except re2.error as exc:
        raise ValueError(f"not a valid RE2 regex ({exc})") from None
    return raw


def _http_url(raw: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return raw


def _service_name(raw: str) -> str:
    if len(raw) > 255 or not raw.isprintable():
        raise ValueError(f"expected a printable name of at most 255 characters, got {raw!r}")
    return raw


_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "enabled": ("BASTION_ENABLED", _boolean),
    "mode": ("BASTION_MODE", _mode),
    "rules": ("BASTION_RULES", _existing_file),
    "config_file": ("BASTION_CONFIG_FILE", _any_file),
    "event_log": ("BASTION_EVENT_LOG", _event_log),
    "event_rate_limit": ("BASTION_EVENT_RATE_LIMIT", _positive_float(0.1, 100_000)),
    "waf_timeout_us": ("BASTION_WAF_TIMEOUT_US", _positive_int(100, 10_000_000)),
    "max_body_bytes": ("BASTION_MAX_BODY_BYTES", _positive_int(0, 64 << 20)),
    "trusted_proxies": ("BASTION_TRUSTED_PROXIES", TrustedProxies.parse),
    "client_ip_header": ("BASTION_CLIENT_IP_HEADER", _header_name),
    "obfuscation_key_regex": ("BASTION_OBFUSCATION_KEY_REGEX", _regex),
    "obfuscation_value_regex": ("BASTION_OBFUSCATION_VALUE_REGEX", _regex),
    "block_template_html": ("BASTION_BLOCK_TEMPLATE_HTML", _existing_file),
    "block_template_json": ("BASTION_BLOCK_TEMPLATE_JSON", _existing_file),
    "config_poll_interval_s": ("BASTION_CONFIG_POLL_INTERVAL", _positive_float(0.05, 60)),
    "exploit_prevention": ("BASTION_EXPLOIT_PREVENTION", _boolean),
    "tracing": ("BASTION_TRACING", _boolean),
    "otlp_endpoint": ("BASTION_OTLP_ENDPOINT", _http_url),
    "service_name": ("BASTION_SERVICE_NAME", _service_name),
    "tracing_global": ("BASTION_TRACING_GLOBAL", _boolean),
}

assert set(_PARSERS) == {f.name for f in fields(Settings)}, "every setting has a variable"
