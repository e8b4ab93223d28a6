from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bastion.contrib.importhook import when_imported


def test_callback_runs_after_a_later_import_and_the_module_keeps_its_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bastion_hook_probe.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[ModuleType] = []

    def patch(module: ModuleType) -> None:
        module.VALUE += 1
        seen.append(module)

    when_imported("bastion_hook_probe", patch)
    assert seen == []
    try:
        module = importlib.import_module("bastion_hook_probe")
        assert seen == [module] and module.VALUE == 42
        assert type(module.__loader__).__name__ == "SourceFileLoader"
    finally:
        sys.modules.pop("bastion_hook_probe", None)


def test_callback_runs_at_once_for_an_imported_module() -> None:
    seen: list[str] = []
    when_imported("json", lambda module: seen.append(module.__name__))
    assert seen == ["json"]


def test_a_failing_callback_does_not_break_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bastion_hook_probe2.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def broken(module: ModuleType) -> None:
        raise RuntimeError("patch failed")

    when_imported("bastion_hook_probe2", broken)
    try:
        assert importlib.import_module("bastion_hook_probe2").VALUE == 1
    finally:
        sys.modules.pop("bastion_hook_probe2", None)
