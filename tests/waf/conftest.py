"""Shared fixtures for the rule tests."""

from __future__ import annotations

import pytest

from bastion.waf import Ruleset, load_ruleset


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    """The bundled default rules, loaded once per test module."""
    return load_ruleset()
