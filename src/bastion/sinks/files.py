"""File sinks: every file the application opens by name (`server.io.fs.file`).

`builtins.open` and `io.open` are the same function; `pathlib.Path.open`, `read_text`,
`write_bytes`, ... call `io.open` at call time, so they are covered too. `os.open` is the
low-level door (`tempfile` and a few libraries use it). A file descriptor passed instead of a
name opens nothing new and is not checked.
"""

from __future__ import annotations

import builtins
import io
from collections.abc import Callable
from types import ModuleType

from bastion.sinks.check import Addresses, Args, Kwargs, Reader, argument, sync_hook, text
from bastion.sinks.patching import replace

FAMILY = "file"


def path_reader(name: str) -> Reader:
    """Reads the path passed first or as `name`; paths may be str, bytes or os.PathLike."""

    def read(args: Args, kwargs: Kwargs) -> Addresses | None:
        path = argument(args, kwargs, 0, name)
        if isinstance(path, int):
            return None
        return {"server.io.fs.file": text(path)}

    return read


def _hook(owner: object, name: str, parameter: str) -> None:
    replace(owner, name, lambda original: sync_hook(original, FAMILY, path_reader(parameter)))


def patch_open(_: ModuleType) -> None:
    """`open()` everywhere: the builtin, and `io.open` (what pathlib calls)."""
    _hook(builtins, "open", "file")
    if io.open is not builtins.open:  # one hook for both names, as one function they were
        replace(io, "open", lambda original: builtins.open)


def patch_os(os: ModuleType) -> None:
    _hook(os, "open", "path")


PATCHES: dict[str, Callable[[ModuleType], None]] = {"io": patch_open, "os": patch_os}
