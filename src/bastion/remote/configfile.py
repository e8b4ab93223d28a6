"""Live configuration from a file (`BASTION_CONFIG_FILE`), swapped in without a restart.

The file is JSON, the same shape the console will push:

    {"blocked_ips": ["198.51.100.7", {"value": "203.0.113.0/24", "expiration": 1893456000}],
     "blocked_users": ["mallory"],
     "allowed_ips": ["10.1.2.3"],
     "exclusions": [...], "rules_data": [...], "custom_rules": [...],
     "rules_override": [...], "actions": [...]}

The last five are ddwaf rule-document sections, applied as they are. Deny lists become two
custom rules that block; the allow list becomes an exclusion that bypasses every rule, so it
wins over everything. A file that cannot be read or applied changes nothing: the last good
configuration stays in force and the fault is said once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from bastion.protection import Protection

logger = logging.getLogger("bastion")

RULE_SECTIONS = ("exclusions", "rules_data", "custom_rules", "rules_override", "actions")
LIST_SECTIONS = ("blocked_ips", "blocked_users", "allowed_ips")

DENY_IP_RULE = "bastion-deny-ip"
DENY_USER_RULE = "bastion-deny-user"
ALLOW_IP_EXCLUSION = "bastion-allow-ip"


class ConfigError(ValueError):
    """The file cannot be applied; the message says where."""


def changes_from(config: object) -> dict[str, list[Any]]:
    """The Ruleset.update() changes a configuration document asks for."""
    if not isinstance(config, Mapping):
        raise ConfigError("the configuration must be a JSON object")
    unknown = sorted(set(config) - set(RULE_SECTIONS) - set(LIST_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(map(repr, unknown))}; expected "
                          + ", ".join(LIST_SECTIONS + RULE_SECTIONS))
    changes: dict[str, list[Any]] = {}
    for key in RULE_SECTIONS:
        if key in config:
            if not isinstance(config[key], list):
                raise ConfigError(f"{key} must be a list")
            changes[key] = list(config[key])
    blocked_ips = _entries(config, "blocked_ips", _ip)
    blocked_users = _entries(config, "blocked_users", _user)
    allowed_ips = _entries(config, "allowed_ips", _ip)
    data = changes.setdefault("rules_data", [])
    rules = changes.setdefault("custom_rules", [])
    if blocked_ips:
        data.append({"id": "bastion_blocked_ips", "type": "ip_with_expiration",
                     "data": blocked_ips})
        rules.append(_deny_rule(DENY_IP_RULE, "Blocked IP address", "block_ip", "ip_match",
                                "http.client_ip", "bastion_blocked_ips"))
    if blocked_users:
        data.append({"id": "bastion_blocked_users", "type": "data_with_expiration",
                     "data": blocked_users})
        rules.append(_deny_rule(DENY_USER_RULE, "Blocked user", "block_user", "exact_match",
                                "usr.id", "bastion_blocked_users"))
    if allowed_ips:
        data.append({"id": "bastion_allowed_ips", "type": "ip_with_expiration",
                     "data": allowed_ips})
        changes.setdefault("exclusions", []).append({
            "id": ALLOW_IP_EXCLUSION,
            "conditions": [{"operator": "ip_match", "parameters": {
                "inputs": [{"address": "http.client_ip"}], "data": "bastion_allowed_ips"}}],
        })
    return {key: value for key, value in changes.items() if value or key in config}


def _deny_rule(
    rule_id: str, name: str, kind: str, operator: str, address: str, data: str
) -> dict[str, Any]:
    return {
        "id": rule_id, "name": name,
        "tags": {"type": kind, "category": "security_response"},
        "conditions": [{"operator": operator,
                        "parameters": {"inputs": [{"address": address}], "data": data}}],
        "on_match": ["block"],
    }


def _entries(config: Mapping[str, Any], key: str, check: Any) -> list[dict[str, Any]]:
    raw = config.get(key, [])
    if not isinstance(raw, list):
        raise ConfigError(f"{key} must be a list")
    entries = []
    for index, item in enumerate(raw):
        where = f"{key}[{index}]"
        if isinstance(item, Mapping):
            value, expiration = item.get("value"), item.get("expiration", 0)
        else:
            value, expiration = item, 0
        if not isinstance(expiration, int) or isinstance(expiration, bool) or expiration < 0:
            raise ConfigError(f"{where}.expiration must be a Unix time in seconds (0: never)")
        entries.append({"value": check(value, where), "expiration": expiration})
    return entries


def _ip(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be an IP address or CIDR range")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an IP address or CIDR range") from None


def _user(value: object, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ConfigError(f"{where} must be a non-empty user id")
    return str(value)


def _check_diagnostics(diagnostics: Mapping[str, Any], base: Any) -> None:
    """Refuse a configuration whose own parts did not all load: half of a change (an
    exclusion dropped, a deny rule skipped) is worse than keeping the last good one."""
    base_diagnostics = base.diagnostics if base is not None else {}
    failed = {rule: why for rule, why in diagnostics.get("failed", {}).items()
              if rule not in base_diagnostics.get("failed", {})}
    warnings = [w for w in diagnostics.get("warnings", [])
                if w not in base_diagnostics.get("warnings", [])]
    problems = [f"{rule}: {why}" for rule, why in failed.items()] + warnings
    if problems:
        raise ConfigError("; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""))


class ConfigFileWatcher:
    """Polls the file; applies each new version; keeps the last good one on any fault."""

    def __init__(self, protection: Protection, path: str, interval_s: float | None = None):
        self.protection = protection
        self.path = path
        self.interval_s = interval_s or protection.settings.config_poll_interval_s
        self.applied_digest: str | None = None
        self.last_error: str | None = None
        self._seen: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        os.register_at_fork(after_in_child=self._spawn)

    def _spawn(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="bastion-config", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        self.protection.wait_ready()
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as exc:  # never let the watcher die
                self._fault(f"unexpected error: {exc!r}")
            self._stop.wait(self.interval_s)

    def check(self) -> bool:
        """Apply the file if it changed since the last look; True when a new one took effect."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self.applied_digest is not None:
                self._fault("the file was removed; the last good configuration stays")
            return False
        except OSError as exc:
            self._fault(f"cannot read it ({exc.strerror})")
            return False
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(16 << 20)
        except OSError as exc:
            self._fault(f"cannot read it ({exc.strerror})")
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self.applied_digest:
            return False
        return self._apply(raw, digest)

    def _apply(self, raw: bytes, digest: str) -> bool:
        started = time.monotonic()
        try:
            config = json.loads(raw.decode("utf-8"))
            ruleset = self.protection.rules_with(changes_from(config))
            _check_diagnostics(ruleset.diagnostics, self.protection.base_ruleset)
        except (ValueError, TypeError, RuntimeError) as exc:
            self._fault(str(exc))
            return False
        self.protection.put_in_force(ruleset)
        first = self.applied_digest is None
        self.applied_digest = digest
        self.last_error = None
        # The file as found at start is expected; a change while running is worth a line.
        logger.log(logging.INFO if first else logging.WARNING,
                   "bastion: configuration from %s applied in %.0f ms", self.path,
                   (time.monotonic() - started) * 1000)
        return True

    def _fault(self, message: str) -> None:
        if message != self.last_error:
            self.last_error = message
            logger.error("bastion: configuration file %s not applied: %s; the last good "
                         "configuration stays in force", self.path, message)
