from __future__ import annotations

from pathlib import Path

from bastion.config import Settings, variable_names


def test_defaults_are_safe() -> None:
    settings, errors = Settings.from_env({})
    assert errors == []
    assert settings.mode == "monitor" and not settings.blocking
    assert settings.enabled and settings.rules is None and settings.event_log == "stderr"


def test_values_are_read_and_normalised(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text("{}")
    settings, errors = Settings.from_env({
        "BASTION_MODE": "BLOCK", "BASTION_ENABLED": "yes", "BASTION_RULES": str(rules),
        "BASTION_EVENT_LOG": str(tmp_path / "events.jsonl"), "BASTION_WAF_TIMEOUT_US": "20000",
        "BASTION_CLIENT_IP_HEADER": "X-Real-IP", "BASTION_TRUSTED_PROXIES": "10.0.0.0/8",
    })
    assert errors == []
    assert settings.blocking and settings.rules == str(rules)
    assert settings.waf_timeout_us == 20000 and settings.client_ip_header == "x-real-ip"


def test_each_bad_value_is_named_and_keeps_its_default() -> None:
    settings, errors = Settings.from_env({
        "BASTION_MODE": "blok", "BASTION_WAF_TIMEOUT_US": "fast", "BASTION_ENABLED": "maybe",
        "BASTION_RULES": "/nonexistent/rules.json", "BASTION_TRUSTED_PROXIES": "10.0.0.0/33",
        "BASTION_OBFUSCATION_KEY_REGEX": "(unclosed", "BASTION_EVENT_LOG": "/nonexistent/x.log",
    })
    messages = {error.variable: str(error) for error in errors}
    assert set(messages) == {
        "BASTION_MODE", "BASTION_WAF_TIMEOUT_US", "BASTION_ENABLED", "BASTION_RULES",
        "BASTION_TRUSTED_PROXIES", "BASTION_OBFUSCATION_KEY_REGEX", "BASTION_EVENT_LOG"}
    assert messages["BASTION_MODE"] == "BASTION_MODE: expected monitor or block, got 'blok'"
    assert all("\n" not in message for message in messages.values())
    assert settings == Settings()


def test_blank_values_mean_the_default() -> None:
    settings, errors = Settings.from_env({"BASTION_MODE": "  ", "BASTION_RULES": ""})
    assert errors == [] and settings == Settings()


def test_every_setting_has_a_documented_variable() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for variable in variable_names().values():
        assert variable in readme, f"{variable} is not documented in the README"
