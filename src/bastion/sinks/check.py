"""The one step every sink hook takes: give the sink's address to the request's rules.

A hook wraps a library call (a SQL `execute`, `open`, an HTTP send, a process start). Outside a
request it costs one contextvar lookup and calls through. Inside one it turns the call's
arguments into the sink's address, runs the rules on it, and raises `BlockedRequest` before the
call when the request must stop. Anything else that goes wrong in Bastion is reported once and
the call runs unchanged (fail open).

A hooked call may reach another hooked call (`os.popen` starts a `subprocess.Popen`, `requests`
ends in `http.client`, the rules engine may read a file): a flag held for the duration of the
outer call makes the inner ones call straight through, so one call of the application is one
evaluation. The flag is a contextvar, so it holds across `await` for one task only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from bastion.blocking import BlockedRequest
from bastion.context import RequestContext, current_fast

Addresses = Mapping[str, object]
Args = tuple[Any, ...]
Kwargs = dict[str, Any]
# Turns a call's arguments into the sink's address; None when there is nothing to check.
Reader = Callable[[Args, Kwargs], Addresses | None]

ORIGINAL = "__bastion_original__"

Hook = TypeVar("Hook", bound=Callable[..., Any])

_busy: ContextVar[bool] = ContextVar("bastion_sink_busy", default=False)


def check(ctx: RequestContext, family: str, reader: Reader, args: Args, kwargs: Kwargs) -> None:
    """Run the rules on the sink's address. Raises BlockedRequest, and nothing else."""
    try:
        addresses = reader(args, kwargs)
        if addresses is None:
            return
        blocked = ctx.run(addresses)
    except Exception as exc:
        ctx.protection.report_error(f"exploit prevention ({family})", exc)
        return
    if blocked is not None:
        raise BlockedRequest()


def sync_hook(original: Callable[..., Any], family: str, reader: Reader) -> Callable[..., Any]:
    """`original`, checked first when called inside a request."""

    def hooked(*args: Any, **kwargs: Any) -> Any:
        ctx = current_fast()
        if ctx is None or _busy.get():
            return original(*args, **kwargs)
        token = _busy.set(True)
        try:
            check(ctx, family, reader, args, kwargs)
            return original(*args, **kwargs)
        finally:
            _busy.reset(token)

    return mark(hooked, original)


def async_hook(
    original: Callable[..., Awaitable[Any]], family: str, reader: Reader
) -> Callable[..., Awaitable[Any]]:
    """The coroutine function `original`, checked first when awaited inside a request."""

    async def hooked(*args: Any, **kwargs: Any) -> Any:
        ctx = current_fast()
        if ctx is None or _busy.get():
            return await original(*args, **kwargs)
        token = _busy.set(True)
        try:
            check(ctx, family, reader, args, kwargs)
            return await original(*args, **kwargs)
        finally:
            _busy.reset(token)

    return mark(hooked, original)


def mark(hooked: Hook, original: Any) -> Hook:
    """`hooked` looks like `original` (name, docs, signature) and remembers it."""
    functools.update_wrapper(hooked, original)
    setattr(hooked, ORIGINAL, original)
    return hooked


def argument(args: Args, kwargs: Kwargs, index: int, name: str) -> Any:
    """The argument passed at `index` or as `name`; KeyError when it was not passed."""
    return args[index] if len(args) > index else kwargs[name]


def text(value: object) -> str:
    """A path, command or statement as text: str as is, bytes decoded (never failing),
    os.PathLike through its path. Anything else is a TypeError (reported, call runs)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, os.PathLike):
        return text(os.fspath(value))
    raise TypeError(f"cannot read a {type(value).__name__} as text")
