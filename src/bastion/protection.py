"""The running protection of one process: settings, the current rules, the event log.

One `Protection` exists per process once `bastion.protect()` ran (or a middleware was built
without it). The rules in force are one immutable `Ruleset` reference: the live configuration
replaces it whole, so a request sees either the old rules or the new ones, never a mix.

Loading and compiling rules takes a few hundred milliseconds, too long to hold up the
application's start: `protect()` loads them in a background thread while the application
imports, and a request that arrives before they are ready waits for them (at most
`STARTUP_WAIT_S`, then it goes on uninspected and that is said once).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bastion.blocking import Templates
from bastion.config import Settings
from bastion.report.eventlog import EventLog
from bastion.report.obfuscation import DEFAULT_KEY_PATTERN, DEFAULT_VALUE_PATTERN, Obfuscator

if TYPE_CHECKING:
    from bastion.waf import Ruleset

logger = logging.getLogger("bastion")

STARTUP_WAIT_S = 30.0

# Run once through new base rules before they are put in force (`_install_base`): lazy
# set-ups (scratch space, detector tables) happen then, and a few attacks of the usual kinds
# build the regex engines' first states, which the first real attack would otherwise pay for
# out of its time budget (1.7 ms against 0.7-0.8 for the first attack a process sees).
_WARM_UP: dict[str, object] = {
    "server.request.method": "GET",
    "server.request.uri.raw": "/warm-up?q=1",
    "server.request.headers.no_cookies": {"host": "localhost", "user-agent": "bastion"},
    "server.request.query": {"q": ["1"], "s": ["1' UNION SELECT a FROM b--"],
                             "x": ["<img src=x onerror=alert(1)>"], "f": ["../../etc/passwd"],
                             "j": ["${jndi:ldap://a/b}"], "c": [";cat /etc/hosts"],
                             "p": ["<?php system($_GET[0]); ?>"], "u": ["http://169.254.169.254/"]},
    "server.request.cookies": {"c": ["1"]},
    "server.request.body": {"a": "<b>1</b>; 1' or 1=1"},
    "http.client_ip": "127.0.0.1",
}


class Protection:
    """Process-wide state the request path reads; built once, rules swapped atomically."""

    def __init__(
        self, settings: Settings, ruleset: Ruleset | None = None, *, background: bool = False
    ) -> None:
        self.settings = settings
        self.templates = Templates.load(settings.block_template_html,
                                        settings.block_template_json)
        self.obfuscator = Obfuscator(
            settings.obfuscation_key_regex or DEFAULT_KEY_PATTERN,
            settings.obfuscation_value_regex or DEFAULT_VALUE_PATTERN,
        )
        self.event_log = EventLog(settings.event_log, self.obfuscator,
                                  rate_per_s=settings.event_rate_limit)
        self.errors: dict[str, int] = {}
        self._errors_lock = threading.Lock()
        self._ready = threading.Event()
        self._base: Ruleset | None = None
        self._ruleset: Ruleset | None = None
        if ruleset is not None:
            self._install_base(ruleset)
        elif background:
            self._load_in_background()
            # A server that forks workers (gunicorn) may fork while the rules load. A thread
            # does not survive a fork, and the locks it held (imports) would stay held in the
            # child forever: so the fork waits for the load, and children inherit the rules.
            os.register_at_fork(before=self._finish_loading,
                                after_in_child=self._reload_if_not_ready)
        else:
            self._load()

    # ------------------------------------------------------------ rules

    @property
    def ruleset(self) -> Ruleset | None:
        """The rules in force; None only when they could not be made ready in time."""
        current = self._ruleset
        if current is None and self._ready.wait(STARTUP_WAIT_S):
            current = self._ruleset
        if current is None:
            self.report_error("rules", TimeoutError("rules not ready; request not inspected"))
        return current

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def rules_with(self, changes: Mapping[str, Any]) -> Ruleset:
        """The base rules with `changes` (rules_data, exclusions, ...), not yet in force.
        Raises RulesetError or TypeError when they are invalid."""
        if not self._ready.wait(STARTUP_WAIT_S) or self._base is None:
            raise RuntimeError("the base rules are not loaded")
        return self._base.update(**changes) if changes else self._base

    @property
    def base_ruleset(self) -> Ruleset | None:
        return self._base

    def put_in_force(self, ruleset: Ruleset) -> None:
        """Requests that start from now on use `ruleset`; running ones keep theirs."""
        self._ruleset = ruleset

    def _load_in_background(self) -> None:
        # Not a daemon: a process that ends while the rules compile waits for them (a few
        # hundred ms) rather than having the compiler's thread killed inside native code,
        # which can abort the interpreter at exit.
        threading.Thread(target=self._load, name="bastion-rules", daemon=False).start()

    def _finish_loading(self) -> None:
        self._ready.wait(STARTUP_WAIT_S)

    def _reload_if_not_ready(self) -> None:
        self._errors_lock = threading.Lock()
        if not self._ready.is_set():
            self._ready = threading.Event()
            self._load_in_background()

    def _load(self) -> None:
        try:
            self._install_base(_load_rules(self.settings.rules))
        except Exception as exc:  # never reached with the bundled rules; said loudly if it is
            logger.critical("bastion: no rules could be loaded, requests are NOT inspected: %r",
                            exc)
            self._ready.set()

    def _install_base(self, ruleset: Ruleset) -> None:
        # One run first (see _WARM_UP), not in the first request's time budget.
        try:
            ruleset.context().run(_WARM_UP, timeout_us=10_000_000)
        except Exception as exc:
            self.report_error("rules warm-up", exc)
        self._base = ruleset
        self._ruleset = ruleset
        self._ready.set()

    # ------------------------------------------------------------ failures

    def report_error(self, where: str, error: BaseException) -> None:
        """Count an internal failure; log the first of each kind. The request goes on."""
        with self._errors_lock:
            count = self.errors.get(where, 0) + 1
            self.errors[where] = count
        if count == 1:
            logger.error("bastion: internal error in %s, the request went on without it "
                         "(fail open; logged once): %r", where, error)

    def close(self) -> None:
        self.event_log.close()


def _load_rules(path: str | None) -> Ruleset:
    """The user's rule file, or the bundled rules when it cannot be used (said once)."""
    from bastion.waf import RulesetError, load_ruleset

    if path:
        try:
            return load_ruleset(path)
        except (OSError, RulesetError) as exc:
            logger.error("bastion: cannot load BASTION_RULES=%s (%s); using the bundled rules",
                         path, exc)
    return load_ruleset()
