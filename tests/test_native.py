"""The build: compiled where the install could, and it says which."""

from __future__ import annotations

import os

import pytest

from bastion import native
from bastion.cli import main


def test_under_ci_every_listed_module_runs_compiled() -> None:
    if os.environ.get("BASTION_EXPECT_PURE"):
        pytest.skip("this run is the pure Python one (make test-pure)")
    if os.environ.get("CI") != "true":
        pytest.skip("a local install may lack a C compiler; under CI the build must compile")
    assert native.compiled() == list(native.COMPILED_MODULES)
    assert native.summary() == "engine: compiled (mypyc)"
    assert native.stale() == []


def test_rules_lint_says_how_the_engine_runs(capsys: pytest.CaptureFixture[str]) -> None:
    main(["rules", "lint"])
    assert native.summary() in capsys.readouterr().out


def test_a_source_edited_after_the_build_is_named_stale() -> None:
    if "bastion.waf.engine" not in native.compiled():
        pytest.skip("the engine runs as pure Python here")
    import bastion.waf.engine as engine

    source = os.path.join(os.path.dirname(str(engine.__file__)), "engine.py")
    before = os.stat(source)
    built = os.stat(str(engine.__file__)).st_mtime
    try:
        os.utime(source, (before.st_atime, built + 3600))  # "edited" an hour after the build
        assert "bastion.waf.engine" in native.stale()
    finally:
        os.utime(source, (before.st_atime, before.st_mtime))
    assert native.stale() == []
