"""Forced failures inside Bastion, shared by the WSGI and ASGI fail-open tests."""

from __future__ import annotations

import pytest

from bastion.protection import Protection

PARTS = ["engine", "body parser", "reporter"]


def break_part(monkeypatch: pytest.MonkeyPatch, protection: Protection, part: str) -> str:
    """Make one part of Bastion raise; returns the text its error carries."""
    message = f"forced failure in the {part}"

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(message)

    if part == "engine":
        monkeypatch.setattr("bastion.waf.engine.WafContext.run", explode)
    elif part == "body parser":
        monkeypatch.setattr("bastion.addresses.parse_body", explode)
    else:
        monkeypatch.setattr(protection.event_log, "submit", explode)
    return message
