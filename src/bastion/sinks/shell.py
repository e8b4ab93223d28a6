"""Process sinks: every command the application starts, before the process exists.

A command line a shell will read is `server.sys.shell.cmd` (a string): `os.system`,
`os.popen`, `subprocess.Popen(..., shell=True)`. A program run with an argument list is
`server.sys.exec.cmd` (a list of strings, the program first): `subprocess.Popen` without a
shell (and `run`, `call`, `check_output` above it), `os.exec*`, `os.spawn*`,
`os.posix_spawn*`. The program that actually runs comes first, so `executable=` or the path
given to `os.execv` replaces the display name in `argv[0]`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from bastion.sinks.check import Addresses, Args, Kwargs, Reader, argument, sync_hook, text
from bastion.sinks.patching import replace

FAMILY = "shell"


def shell_address(command: object) -> Addresses:
    return {"server.sys.shell.cmd": text(command)}


def exec_address(program: object, argv: Sequence[object]) -> Addresses:
    return {"server.sys.exec.cmd": [text(program), *(text(item) for item in list(argv)[1:])]}


def _is_single(command: object) -> bool:
    return isinstance(command, str | bytes | os.PathLike)


# ---------------------------------------------------------------- readers

def _shell_command(name: str) -> Reader:
    """os.system(command), os.popen(cmd, ...): the command passed first or as `name`."""
    return lambda args, kwargs: shell_address(argument(args, kwargs, 0, name))


# Popen.__init__(self, args, bufsize, executable, stdin, stdout, stderr, preexec_fn,
# close_fds, shell, ...): positions counted with self.
_POPEN_EXECUTABLE = 3
_POPEN_SHELL = 9


def _popen_command(args: Args, kwargs: Kwargs) -> Addresses | None:
    command = argument(args, kwargs, 1, "args")
    shell = args[_POPEN_SHELL] if len(args) > _POPEN_SHELL else kwargs.get("shell", False)
    if _is_single(command):
        argv: Sequence[object] = [command]
    elif isinstance(command, Sequence):
        argv = command
    else:
        return None  # an iterator: reading it would consume what Popen is about to read
    if not argv:
        return None
    if shell:  # the shell runs the first item; the others become $0, $1, ...
        return shell_address(argv[0])
    executable = (args[_POPEN_EXECUTABLE] if len(args) > _POPEN_EXECUTABLE
                  else kwargs.get("executable"))
    return exec_address(executable if executable is not None else argv[0], argv)


def _vector(args: Args, kwargs: Kwargs, first: int) -> Addresses:
    """execv(path, argv, ...), spawnv(mode, path, argv, ...), posix_spawn(path, argv, ...):
    `first` is the position of the path."""
    return exec_address(args[first], args[first + 1])


def _listed(first: int, env: bool) -> Reader:
    """execl(path, arg0, arg1, ...), execle(path, arg0, ..., env), spawnl(mode, path, ...)."""

    def read(args: Args, kwargs: Kwargs) -> Addresses:
        argv = args[first + 1:-1] if env else args[first + 1:]
        return exec_address(args[first], argv)

    return read


def _vector_at(first: int) -> Reader:
    return lambda args, kwargs: _vector(args, kwargs, first)


_OS_READERS: dict[str, Reader] = {
    "system": _shell_command("command"),
    "popen": _shell_command("cmd"),
    "posix_spawn": _vector_at(0),
    "posix_spawnp": _vector_at(0),
    **{name: _vector_at(0) for name in ("execv", "execve", "execvp", "execvpe")},
    **{name: _listed(0, name.endswith("e")) for name in ("execl", "execle", "execlp", "execlpe")},
    **{name: _vector_at(1) for name in ("spawnv", "spawnve", "spawnvp", "spawnvpe")},
    **{name: _listed(1, name.endswith("e"))
       for name in ("spawnl", "spawnle", "spawnlp", "spawnlpe")},
}


# ---------------------------------------------------------------- patches

def _hook(owner: Any, name: str, reader: Reader) -> None:
    if name in vars(owner):  # os.spawn*, os.posix_spawn do not exist everywhere
        replace(owner, name, lambda original: sync_hook(original, FAMILY, reader))


def patch_os(module: ModuleType) -> None:
    for name, reader in _OS_READERS.items():
        _hook(module, name, reader)


def patch_subprocess(module: ModuleType) -> None:
    _hook(module.Popen, "__init__", _popen_command)


PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "os": patch_os,
    "subprocess": patch_subprocess,
}
