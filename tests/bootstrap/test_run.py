"""`bastion-run` protects the command's Python processes, says what is wrong with a setting,
and keeps a sitecustomize the environment already had."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
PROBE = ("import bastion.runtime as r, sys; p = r.installed(); "
         "print('protected' if p is not None else 'bare', p.settings.mode if p else '-')")


def run(args: list[str], env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    base["BASTION_EVENT_LOG"] = "off"
    return subprocess.run([str(BIN / "bastion-run"), *args], env=base | (env or {}),
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_command_runs_protected() -> None:
    done = run([sys.executable, "-c", PROBE], {"BASTION_MODE": "block"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["protected", "block"]


def test_a_bad_setting_is_named_and_the_default_kept() -> None:
    done = run([sys.executable, "-c", PROBE], {"BASTION_MODE": "blok"})
    assert done.returncode == 0
    assert "BASTION_MODE: expected monitor or block, got 'blok'" in done.stderr
    assert done.stdout.split() == ["protected", "monitor"]


def test_an_existing_sitecustomize_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import builtins; builtins.USER_SITE_RAN = True\n")
    probe = "import builtins; print(getattr(builtins, 'USER_SITE_RAN', False))"
    done = run([sys.executable, "-c", probe], {"PYTHONPATH": str(tmp_path)})
    assert done.stdout.strip() == "True", done.stderr


def test_unknown_command_and_usage() -> None:
    assert run(["no-such-command-here"]).returncode == 127
    assert run([]).returncode == 2
