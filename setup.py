"""Build: Bastion's hot modules are compiled to C with mypyc when the build can.

The detection engine, its tokenizers and the request path's adapters are plain, fully typed
Python (`mypy --strict`), so mypyc compiles them to C extension modules as they are: the engine
runs about twice as fast (see README, "Where it stands"). Compiling needs a C compiler and
Python's headers; without them, or with BASTION_PURE_PYTHON=1, the package installs as pure
Python and works the same, slower. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _engine_modules() -> list[str]:
    """The source files of `bastion.native.COMPILED_MODULES`, the one list of what is compiled
    (read, not imported: the package's dependencies are not installed yet)."""
    tree = ast.parse((HERE / "src/bastion/native.py").read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "COMPILED_MODULES"
                for target in node.targets):
            modules: tuple[str, ...] = ast.literal_eval(node.value)
            return ["src/" + module.replace(".", "/") + ".py" for module in modules]
    raise SystemExit("setup.py: COMPILED_MODULES not found in src/bastion/native.py")


def _extensions() -> list[object]:
    if os.environ.get("BASTION_PURE_PYTHON", "").lower() in ("1", "true", "yes"):
        print("bastion: BASTION_PURE_PYTHON is set: installing pure Python", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("bastion: mypyc is not available: installing pure Python", file=sys.stderr)
        return []
    try:
        # The build environment lacks the package's dependencies (hyperscan, OpenTelemetry):
        # modules outside the compiled set are read for their types only, and an unknown
        # import is Any there (`make lint` checks everything, with the dependencies).
        options = ["--ignore-missing-imports", "--follow-imports=silent"]
        return list(mypycify(options + _engine_modules(), opt_level="3", debug_level="0"))
    except (Exception, SystemExit) as exc:  # mypyc refused: the sources still work as they are
        print(f"bastion: mypyc could not compile ({exc}): installing pure Python",
              file=sys.stderr)
        return []


class OptionalBuildExt(build_ext):  # type: ignore[misc]
    """Builds the compiled modules, or leaves them out when the C compiler fails: the pure
    Python modules are installed either way."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            print(f"bastion: compiling failed ({exc}): installing pure Python", file=sys.stderr)
            self.extensions = []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
