"""`bastion-run <command> [args...]`: run a command with Bastion protecting its Python apps.

    bastion-run gunicorn app:app
    bastion-run uvicorn main:app

It puts Bastion's `sitecustomize` first on PYTHONPATH and replaces itself with the command, so
every Python process the command starts (gunicorn's workers included) calls `protect()` before
the application is imported. Settings come from the `BASTION_*` variables; a bad value is said
now, before the command starts.
"""

from __future__ import annotations

import os
import shutil
import sys

from bastion.config import Settings, variable_names

USAGE = "usage: bastion-run <command> [args...]   (e.g. bastion-run gunicorn app:app)"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        print("settings (environment variables): " + ", ".join(variable_names().values()))
        return 0 if args else 2
    _, errors = Settings.from_env()
    for error in errors:
        print(f"bastion-run: {error} (the default is used)", file=sys.stderr)
    executable = find_command(args[0])
    if executable is None:
        print(f"bastion-run: command not found: {args[0]}", file=sys.stderr)
        return 127
    # A folder holding only sitecustomize.py: nothing else of ours shadows the app's modules.
    bootstrap = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site")
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = bootstrap + (os.pathsep + path if path else "")
    os.execv(executable, args)
    return 0  # not reached


def find_command(name: str) -> str | None:
    """On PATH, or beside this Python (a virtualenv used without activating it)."""
    found = shutil.which(name)
    if found is None:
        found = shutil.which(name, path=os.path.dirname(sys.executable))
    return found


if __name__ == "__main__":
    raise SystemExit(main())
