"""BASTION_TRACING, BASTION_OTLP_ENDPOINT, BASTION_SERVICE_NAME: tracing is off unless asked
for, an endpoint asks for it, and a bad value is named and leaves tracing as it would be."""

from __future__ import annotations

import pytest

from bastion.config import Settings


def settings(**environ: str) -> tuple[Settings, list[str]]:
    parsed, errors = Settings.from_env(environ)
    return parsed, [str(error) for error in errors]


def test_tracing_is_off_by_default() -> None:
    parsed, errors = settings()
    assert errors == [] and not parsed.tracing_on and parsed.otlp_endpoint is None


def test_an_endpoint_turns_tracing_on_unless_it_is_turned_off() -> None:
    parsed, _ = settings(BASTION_OTLP_ENDPOINT="http://collector:4318")
    assert parsed.tracing_on and parsed.otlp_endpoint == "http://collector:4318"
    parsed, _ = settings(BASTION_OTLP_ENDPOINT="http://collector:4318", BASTION_TRACING="off")
    assert not parsed.tracing_on


@pytest.mark.parametrize("value", ["on", "true", "1"])
def test_tracing_can_be_on_without_an_endpoint(value: str) -> None:
    parsed, errors = settings(BASTION_TRACING=value, BASTION_SERVICE_NAME="shop")
    assert errors == [] and parsed.tracing_on and parsed.otlp_endpoint is None
    assert parsed.service_name == "shop"


@pytest.mark.parametrize("endpoint", ["collector:4318", "ftp://collector/", "http://", "4318"])
def test_a_bad_endpoint_is_named_and_not_used(endpoint: str) -> None:
    parsed, errors = settings(BASTION_OTLP_ENDPOINT=endpoint)
    assert [e.split(":")[0] for e in errors] == ["BASTION_OTLP_ENDPOINT"]
    assert parsed.otlp_endpoint is None and not parsed.tracing_on


def test_bad_switches_and_names_are_named() -> None:
    parsed, errors = settings(BASTION_TRACING="maybe", BASTION_SERVICE_NAME="shop\x1b[31m",
                              BASTION_OTLP_ENDPOINT="https://otlp.example:4318/v1/traces")
    assert sorted(e.split(":")[0] for e in errors) == ["BASTION_SERVICE_NAME", "BASTION_TRACING"]
    assert parsed.tracing_on and parsed.service_name is None
