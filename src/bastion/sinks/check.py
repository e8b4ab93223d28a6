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

A family may also be *watched*: an `Observer` (datastore tracing) set on its `Watch` runs
around every call, in a request or not, and is handed the address the rules read, so a
statement is read once for both and a library is hooked once. With no observer set, a hook
outside a request costs one contextvar lookup and one attribute test.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from bastion.blocking import BlockedRequest
from bastion.context import RequestContext, current_fast

Addresses = Mapping[str, object]
Args = tuple[Any, ...]
Kwargs = dict[str, Any]
# Turns a call's arguments into the sink's address; None when there is nothing to check.
Reader = Callable[[Args, Kwargs], Addresses | None]

ORIGINAL = "__bastion_original__"

Hook = TypeVar("Hook", bound=Callable[..., Any])

logger = logging.getLogger("bastion")

_busy: ContextVar[bool] = ContextVar("bastion_sink_busy", default=False)


class Observer(Protocol):
    """Runs around the watched calls that pass the rules (a blocked call never runs).

    `before` gets the hook's `site` (what it is hooked on), the sink's address and the call's
    arguments, and returns a handle (None: nothing to do after); `after` gets the handle and
    the call's result or exception, which the hook then returns or raises unchanged. Neither
    should raise: a failure is logged once and the call goes on."""

    def before(self, site: Any, addresses: Addresses, args: Args, kwargs: Kwargs) -> object: ...

    def after(self, handle: object, result: object, error: BaseException | None) -> None: ...


class Watch:
    """The observer of a family's hooks, set by whoever observes (tracing) and cleared by it.
    Hooks read it on every call, so a change takes effect at once, on old cursors too."""

    __slots__ = ("_listeners", "observer")

    def __init__(self) -> None:
        self.observer: Observer | None = None
        self._listeners: list[Callable[[], None]] = []

    def set(self, observer: Observer | None) -> None:
        """Observe the family's calls from now on (None: stop); hooks that stand aside
        while nothing needs them (sql.py's for sqlite3) are told."""
        self.observer = observer
        for listener in self._listeners:
            listener()

    def listen(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each `set`."""
        self._listeners.append(listener)


UNWATCHED = Watch()
"""The watch of families nobody observes: it stays empty."""


class Checking:
    """Whether hooks inside a request run the exploit rules. Off when the hooks are there
    only for an observer (tracing with BASTION_EXPLOIT_PREVENTION=false)."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


CHECKING = Checking()


def check(ctx: RequestContext, family: str, reader: Reader, args: Args,
          kwargs: Kwargs) -> Addresses | None:
    """Run the rules on the sink's address, and return the address (None when there is none
    or it cannot be read). Raises BlockedRequest, and nothing else."""
    try:
        addresses = reader(args, kwargs)
        if addresses is None or ctx.quiet_call(addresses):
            return addresses
        blocked = ctx.run(addresses)
    except Exception as exc:
        ctx.protection.report_error(f"exploit prevention ({family})", exc)
        return None
    if blocked is not None:
        raise BlockedRequest()
    return addresses


def read(reader: Reader, args: Args, kwargs: Kwargs) -> Addresses | None:
    """The sink's address outside a request, for the observer alone; None when it cannot be
    read (the observer has nothing to say then, and the call runs)."""
    try:
        return reader(args, kwargs)
    except Exception:
        return None


def sync_hook(original: Callable[..., Any], family: str, reader: Reader,
              watch: Watch = UNWATCHED, site: object = None) -> Callable[..., Any]:
    """`original`, checked first when called inside a request, and observed when `watch`
    has an observer (`site` is what the observer is told the hook sits on)."""

    def hooked(*args: Any, **kwargs: Any) -> Any:
        ctx = current_fast()
        if ctx is None and watch.observer is None:
            return original(*args, **kwargs)
        if not CHECKING.on:
            if watch.observer is None:
                return original(*args, **kwargs)
            ctx = None  # observed only: the rules are not asked
        if _busy.get():
            return original(*args, **kwargs)
        token = _busy.set(True)
        try:
            observer = watch.observer
            addresses = (read(reader, args, kwargs) if ctx is None
                         else check(ctx, family, reader, args, kwargs))
            if observer is None or addresses is None:
                return original(*args, **kwargs)
            handle = _before(observer, site, addresses, args, kwargs)
            if handle is None:
                return original(*args, **kwargs)
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                _after(observer, handle, None, exc)
                raise
            _after(observer, handle, result, None)
            return result
        finally:
            _busy.reset(token)

    return mark(hooked, original)


def async_hook(
    original: Callable[..., Awaitable[Any]], family: str, reader: Reader,
    watch: Watch = UNWATCHED, site: object = None,
) -> Callable[..., Awaitable[Any]]:
    """The coroutine function `original`, checked first when awaited inside a request, and
    observed (until its result is there) when `watch` has an observer."""

    async def hooked(*args: Any, **kwargs: Any) -> Any:
        ctx = current_fast()
        if ctx is None and watch.observer is None:
            return await original(*args, **kwargs)
        if not CHECKING.on:
            if watch.observer is None:
                return await original(*args, **kwargs)
            ctx = None  # observed only: the rules are not asked
        if _busy.get():
            return await original(*args, **kwargs)
        token = _busy.set(True)
        try:
            observer = watch.observer
            addresses = (read(reader, args, kwargs) if ctx is None
                         else check(ctx, family, reader, args, kwargs))
            if observer is None or addresses is None:
                return await original(*args, **kwargs)
            handle = _before(observer, site, addresses, args, kwargs)
            if handle is None:
                return await original(*args, **kwargs)
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                _after(observer, handle, None, exc)
                raise
            _after(observer, handle, result, None)
            return result
        finally:
            _busy.reset(token)

    return mark(hooked, original)


def _before(observer: Observer, site: object, addresses: Addresses, args: Args,
            kwargs: Kwargs) -> object:
    try:
        return observer.before(site, addresses, args, kwargs)
    except Exception as exc:
        _observer_failed(observer, exc)
        return None


def _after(observer: Observer, handle: object, result: object,
           error: BaseException | None) -> None:
    try:
        observer.after(handle, result, error)
    except Exception as exc:
        _observer_failed(observer, exc)


_failed: set[str] = set()


def _observer_failed(observer: Observer, exc: Exception) -> None:
    """Observers guard themselves; this is the last resort, said once per observer class."""
    name = type(observer).__qualname__
    if name not in _failed:
        _failed.add(name)
        logger.error("bastion: internal error in %s, the call went on without it (fail open; "
                     "logged once): %r", name, exc)


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
