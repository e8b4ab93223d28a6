"""Protection: the rules in force, loaded in the background and warmed up before use."""

from __future__ import annotations

from bastion.config import Settings
from bastion.protection import _WARM_UP, Protection
from bastion.waf import load_ruleset


def test_the_warm_up_meets_each_usual_kind_of_attack_before_a_request_does() -> None:
    """Each kind builds its patterns' first regex states at load, not in the time budget of
    the first real attack of that kind."""
    result = load_ruleset().context().run(_WARM_UP, timeout_us=10_000_000)
    assert not result.timeout and result.error is None
    kinds = {event["rule"]["tags"]["type"] for event in result.events}
    assert kinds >= {"sql_injection", "xss", "lfi", "command_injection", "java_code_injection",
                     "php_code_injection", "ssrf"}


def test_rules_loaded_in_the_background_are_in_force_once_ready() -> None:
    protection = Protection(Settings(), background=True)
    try:
        protection.wait_ready()
        assert protection.ruleset is not None and protection.ruleset is protection.base_ruleset
    finally:
        protection.close()
