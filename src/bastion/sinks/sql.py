"""SQL sinks: every statement a DB-API driver is asked to run, with its dialect.

The address is the statement as the application wrote it (`server.db.statement`), before the
driver binds or interpolates parameters: bound values are data, and the question is whether
user input became SQL. `server.db.system` names the dialect the detector reads it in.

Python drivers (psycopg 3, PyMySQL, mysqlclient) are hooked on their cursor classes in place.
C cursor types cannot be changed (sqlite3, psycopg2), so their `connect()` passes a connection
factory, a subclass of the one the application asked for, whose cursors are subclasses that
check. SQLAlchemy and other layers end in these cursors.

The same hooks serve datastore tracing: `WATCH` is where `bastion.tracing` puts its observer,
which each hook then runs around the statement (inside a request or not) with the statement
it read for the rules, its `Site` (driver, dialect, method), and the cursor. `endpoint()`
tells the observer what the connection knows of its database without a round trip.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

from bastion.activity import ACTIVITY
from bastion.context import current_fast
from bastion.sinks.check import (
    CHECKING,
    Addresses,
    Args,
    Hook,
    Kwargs,
    Reader,
    Watch,
    argument,
    async_hook,
    mark,
    sync_hook,
    text,
)
from bastion.sinks.patching import is_hooked, replace

logger = logging.getLogger("bastion")

FAMILY = "sql"
SQLITE = "sqlite"
STATEMENT = "server.db.statement"
POSTGRESQL = "postgresql"
MYSQL = "mysql"

WATCH = Watch()
"""The observer of every SQL hook: datastore tracing sets it when tracing is on."""


@dataclass(frozen=True, slots=True)
class Site:
    """What a hook sits on, for the observer: the driver module, the dialect (`server.db.system`)
    and the method (`execute`, `executemany`, `executescript`, `copy_expert`)."""

    driver: str
    system: str
    method: str


class Endpoint(NamedTuple):
    """The database a cursor or connection talks to, as far as the client knows it: the
    product (`mariadb` where the server says so, else the dialect), database name, host, port."""

    product: str
    namespace: str | None = None
    address: str | None = None
    port: int | None = None


def statement(query: object, context: object) -> str:
    """The statement's text: str, bytes, or a psycopg/psycopg2 `sql.Composable` rendered for
    the cursor or connection `context` (no round trip to the server)."""
    if type(query) is str:
        return query
    as_string = getattr(query, "as_string", None)
    if as_string is not None and not isinstance(query, str | bytes):
        return text(as_string(context))
    return text(query)


def reader(system: str, name: str) -> Reader:
    """Reads the statement of `method(self, query, ...)`, the query passed as `name`."""

    def read(args: Args, kwargs: Kwargs) -> Addresses:
        query = argument(args, kwargs, 1, name)
        return {"server.db.statement": statement(query, args[0]), "server.db.system": system}

    return read


def _hook_methods(owner: Any, driver: str, system: str, names: dict[str, str], *,
                  coroutines: bool = False, watched: bool = True) -> None:
    """Hook `owner`'s methods in place: {method: name of its query parameter}. `watched`
    False: checked only (a call whose work happens later, out of the hook's sight)."""
    hook = async_hook if coroutines else sync_hook
    for method, parameter in names.items():
        if method in vars(owner):
            read = reader(system, parameter)
            replace(owner, method, functools.partial(
                hook, family=FAMILY, reader=read, watch=WATCH if watched else _UNSEEN,
                site=Site(driver, system, method)))


_UNSEEN = Watch()  # never given an observer


# ---------------------------------------------------------------- C cursors: subclasses

_subclasses: dict[tuple[type, str], type] = {}

# (name, original, checked) -> the method to install; for C methods with a fixed signature.
Specialize = Callable[[str, Any, Callable[..., Any]], Callable[..., Any]]


def hooked_subclass(base: type, driver: str, system: str, methods: dict[str, str],
                    extra: dict[str, Any] | None = None,
                    specialize: Specialize | None = None) -> type:
    """A subclass of `base` whose `methods` ({name: query parameter}) check their statement
    first; made once per base. `extra` adds other attributes (a connection's cursor factory)."""
    if getattr(base, "__bastion_hooked__", False):
        return base
    key = (base, system)
    made = _subclasses.get(key)
    if made is not None:
        return made
    namespace: dict[str, Any] = {}
    for name, parameter in methods.items():
        original = getattr(base, name)
        checked = sync_hook(original, FAMILY, reader(system, parameter), WATCH,
                            Site(driver, system, name))
        namespace[name] = specialize(name, original, checked) if specialize else checked
    namespace.update(extra or {})
    namespace.update(__module__=base.__module__, __qualname__=base.__qualname__,
                     __doc__=base.__doc__, __bastion_hooked__=True)
    made = type(base.__name__, (base,), namespace)
    kept = _subclasses.setdefault(key, made)
    if kept is made:
        _STANDBY.add(made, {name: method for name, method in namespace.items()
                            if getattr(method, _EXACT, False)})
    return kept


_EXACT = "__bastion_exact__"  # marks sqlite3's exact hooks, which stand aside when idle


class _Standby:
    """sqlite3's exact hooks (see `_sqlite_exact`) stand aside while nothing needs them.

    A query takes about a microsecond, and even the cheapest Python hook that only finds no
    request current adds a twentieth to it. So a hook that runs outside any request, while
    no request is being handled anywhere in the process and no observer (datastore tracing)
    watches, takes the hooked classes' methods away (`rest`): from then on their C methods
    run untouched. They are put back (`wake`) before a request's context becomes current
    (bastion.activity) or an observer is set, under the same lock, so no call of a request
    can miss its check. A server busy with requests keeps them in place; a worker or a
    script that never handles one runs without them after its first query."""

    def __init__(self) -> None:
        self._classes: list[tuple[type, dict[str, Any]]] = []
        self._armed = True  # until a hook finds it idle: a hooked class starts fully hooked

    def add(self, cls: type, methods: dict[str, Any]) -> None:
        if not methods:
            return
        with ACTIVITY.lock:
            self._classes.append((cls, methods))
            if not self._armed:
                self._put(cls, methods, armed=False)

    def wake(self) -> None:
        """Put the hooks back if a request or an observer needs them now."""
        if self._armed:
            return
        with ACTIVITY.lock:
            if not self._armed and (ACTIVITY.busy or WATCH.observer is not None):
                self._switch(armed=True)

    def rest(self) -> None:
        """Take the hooks away if nothing needs them now (a hook ran outside any request)."""
        with ACTIVITY.lock:
            if self._armed and not ACTIVITY.busy and WATCH.observer is None:
                self._switch(armed=False)

    def _switch(self, armed: bool) -> None:
        self._armed = armed
        for cls, methods in self._classes:
            self._put(cls, methods, armed)

    @staticmethod
    def _put(cls: type, methods: dict[str, Any], armed: bool) -> None:
        for name, method in methods.items():
            if armed:
                setattr(cls, name, method)
            elif name in vars(cls):
                delattr(cls, name)


_STANDBY = _Standby()
ACTIVITY.listen(_STANDBY.wake)
WATCH.listen(_STANDBY.wake)


def _wrap_connect(
    original: Callable[..., Any], factory_index: int, factory_name: str,
    default: type, hook: Callable[[Any], type],
) -> Callable[..., Any]:
    """`connect()` with the connection factory (given or default) replaced by `hook(factory)`.
    A factory that cannot be subclassed is kept, unhooked, and that is said once."""

    def connect(*args: Any, **kwargs: Any) -> Any:
        try:
            if len(args) > factory_index:
                factory = args[factory_index]
                args = (*args[:factory_index], hook(factory), *args[factory_index + 1:])
            else:
                kwargs[factory_name] = hook(kwargs.get(factory_name) or default)
        except Exception as exc:
            _warn_once(original, exc)
        return original(*args, **kwargs)

    return mark(connect, original)


_warned: set[str] = set()


def _warn_once(original: Callable[..., Any], exc: Exception) -> None:
    name = f"{getattr(original, '__module__', '')}.{getattr(original, '__qualname__', '')}"
    if name not in _warned:
        _warned.add(name)
        logger.warning("bastion: a connection from %s cannot be hooked (%r); its statements are "
                       "not checked", name, exc)


# ---------------------------------------------------------------- sqlite3

_SQLITE_METHODS = {"execute": "sql", "executemany": "sql", "executescript": "sql_script"}


def _sqlite_exact(own: tuple[object, ...]) -> Specialize:
    """sqlite3 runs a query in about a microsecond: its own C methods (`own`) get overrides
    with their exact positional signature (a generic *args wrapper costs a fifth more). They
    stand aside while the process handles no request (`_Standby`); in place, outside a
    request they cost a lookup and a test, and inside one they pass a statement that holds
    none of the user's input (most of them) after one look at it
    (RequestContext.quiet_sink). A method the application overrode keeps the generic hook,
    which accepts whatever its signature is."""
    return functools.partial(_specialize, own)


def _specialize(own: tuple[object, ...], name: str, original: Any,
                checked: Callable[..., Any]) -> Callable[..., Any]:
    lookup = current_fast
    watch = WATCH
    checking = CHECKING
    standby = _STANDBY
    activity = ACTIVITY

    def unchecked(sql: object) -> bool:
        """Whether the call may skip the hook: no observer, and no request or nothing in
        the statement for the rules. Outside any request with none handled anywhere, the
        hooks stand aside from now on (`_Standby`)."""
        if watch.observer is not None:
            return False
        ctx = lookup()
        if ctx is None:
            if not activity.busy:
                standby.rest()
            return True
        return not checking.on or (type(sql) is str and ctx.quiet_sink(STATEMENT, sql))

    if any(original is method for method in own):
        if name == "execute":
            def execute(self: Any, sql: Any, parameters: Any = (), /) -> Any:
                if unchecked(sql):
                    return original(self, sql, parameters)
                return checked(self, sql, parameters)

            return _exact(mark(execute, original))
        if name == "executemany":
            def executemany(self: Any, sql: Any, parameters: Any, /) -> Any:
                if unchecked(sql):
                    return original(self, sql, parameters)
                return checked(self, sql, parameters)

            return _exact(mark(executemany, original))
        if name == "executescript":
            def executescript(self: Any, script: Any, /) -> Any:
                if unchecked(script):
                    return original(self, script)
                return checked(self, script)

            return _exact(mark(executescript, original))
    return checked


def _exact(method: Hook) -> Hook:
    setattr(method, _EXACT, True)
    return method


def patch_sqlite3(sqlite3: ModuleType) -> None:
    """`sqlite3.connect` (and `sqlite3.dbapi2.connect`, what SQLAlchemy calls) make hooked
    connections; the application's own `factory=` is subclassed."""
    base_connection: Any = sqlite3.Connection
    base_cursor: Any = sqlite3.Cursor
    exact = _sqlite_exact(tuple(getattr(base, name) for base in (base_connection, base_cursor)
                                for name in _SQLITE_METHODS))

    def cursor_class(factory: Any) -> Any:
        if not (isinstance(factory, type) and issubclass(factory, base_cursor)):
            return factory  # a function returning a cursor: called as is, unhooked
        return hooked_subclass(factory, "sqlite3", SQLITE, _SQLITE_METHODS, specialize=exact)

    def connection_class(factory: Any) -> type:
        if not (isinstance(factory, type) and issubclass(factory, base_connection)):
            raise TypeError(f"factory {factory!r} is not a sqlite3.Connection subclass")
        chosen: Any = factory
        parent_cursor = chosen.cursor
        default_cursor = cursor_class(base_cursor)

        def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
            if args:
                args = (cursor_class(args[0]), *args[1:])
            elif "factory" in kwargs:
                kwargs["factory"] = cursor_class(kwargs["factory"])
            elif parent_cursor is base_connection.cursor:
                args = (default_cursor,)
            # else: the application's own cursor() picks its default factory itself
            return parent_cursor(self, *args, **kwargs)

        return hooked_subclass(factory, "sqlite3", SQLITE, _SQLITE_METHODS,
                               {"cursor": mark(cursor, parent_cursor)}, exact)

    for module in (sqlite3, getattr(sqlite3, "dbapi2", None)):
        if module is not None and not is_hooked(module.connect):
            replace(module, "connect", lambda original: _wrap_connect(
                original, 5, "factory", base_connection, connection_class))


# ---------------------------------------------------------------- psycopg2

_PSYCOPG2_METHODS = {"execute": "query", "executemany": "query", "copy_expert": "sql"}


def patch_psycopg2(psycopg2: ModuleType) -> None:
    """`psycopg2.connect` makes hooked connections; `connection_factory=` and every
    `cursor_factory` (DictCursor, RealDictCursor, ...) are subclassed."""
    extensions = psycopg2.extensions
    base_connection: Any = extensions.connection
    base_cursor: Any = extensions.cursor

    def cursor_class(factory: Any) -> Any:
        if not (isinstance(factory, type) and issubclass(factory, base_cursor)):
            return factory
        return hooked_subclass(factory, "psycopg2", POSTGRESQL, _PSYCOPG2_METHODS)

    def connection_class(factory: Any) -> type:
        if not (isinstance(factory, type) and issubclass(factory, base_connection)):
            raise TypeError(f"connection_factory {factory!r} is not a psycopg2 connection class")
        chosen: Any = factory
        parent_cursor = chosen.cursor

        def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
            # cursor(name=None, cursor_factory=None, scrollable=None, withhold=False)
            if len(args) > 1:
                wanted = args[1] or self.cursor_factory or base_cursor
                args = (args[0], cursor_class(wanted), *args[2:])
            else:
                wanted = kwargs.get("cursor_factory") or self.cursor_factory or base_cursor
                kwargs["cursor_factory"] = cursor_class(wanted)
            return parent_cursor(self, *args, **kwargs)

        return hooked_subclass(factory, "psycopg2", POSTGRESQL, {},
                               {"cursor": mark(cursor, parent_cursor)})

    replace(psycopg2, "connect", lambda original: _wrap_connect(
        original, 1, "connection_factory", base_connection, connection_class))


# ---------------------------------------------------------------- pure-Python drivers

def patch_psycopg(psycopg: ModuleType) -> None:
    """psycopg 3: the sync and async cursors, client- and server-side, hooked in place
    (`Connection.execute` goes through them)."""
    _hook_methods(psycopg.Cursor, "psycopg", POSTGRESQL,
                  {"execute": "query", "executemany": "query"})
    _hook_methods(psycopg.ServerCursor, "psycopg", POSTGRESQL, {"execute": "query"})
    # stream() returns a generator that runs the statement as it is iterated, after the hook
    # returned: the check runs when it is made, and no span would time the statement.
    _hook_methods(psycopg.Cursor, "psycopg", POSTGRESQL, {"stream": "query"}, watched=False)
    _hook_methods(psycopg.AsyncCursor, "psycopg", POSTGRESQL, {"stream": "query"},
                  watched=False)
    _hook_methods(psycopg.AsyncCursor, "psycopg", POSTGRESQL,
                  {"execute": "query", "executemany": "query"}, coroutines=True)
    _hook_methods(psycopg.AsyncServerCursor, "psycopg", POSTGRESQL, {"execute": "query"},
                  coroutines=True)


def patch_pymysql(cursors: ModuleType) -> None:
    """PyMySQL: `pymysql.cursors.Cursor`, base of every PyMySQL cursor."""
    _hook_methods(cursors.Cursor, "pymysql", MYSQL, {"execute": "query", "executemany": "query"})


def patch_mysqldb(cursors: ModuleType) -> None:
    """mysqlclient: `MySQLdb.cursors.BaseCursor`, base of every MySQLdb cursor."""
    _hook_methods(cursors.BaseCursor, "MySQLdb", MYSQL,
                  {"execute": "query", "executemany": "query"})


# ---------------------------------------------------------------- what a connection knows

def endpoint(site: Site, target: Any) -> Endpoint:
    """The database behind `target` (the hooked cursor, or a sqlite3 connection), read from
    the client's own state: no statement is sent. What cannot be read (a closed connection)
    stays None, and the statement still gets its span, and its error."""
    try:
        connection = getattr(target, "connection", target)
        if site.driver in ("psycopg", "psycopg2"):
            info = connection.info
            return Endpoint(POSTGRESQL, _name(info.dbname), _name(info.host), _port(info.port))
        if site.driver == "pymysql":
            version = str(getattr(connection, "server_version", "") or "")
            return Endpoint(_mysql_product(version), _name(connection.db),
                            _name(connection.host), _port(connection.port))
        if site.driver == "MySQLdb":
            return Endpoint(_mysql_product(connection.get_server_info()),
                            _name(connection.db), _name(connection.host),
                            _port(connection.port))
    except Exception:
        pass
    return Endpoint(site.system)


def _mysql_product(server_version: str) -> str:
    return "mariadb" if "mariadb" in server_version.lower() else MYSQL


def _name(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def _port(value: object) -> int | None:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 < value < 65536 else None


PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "sqlite3": patch_sqlite3,
    "psycopg2": patch_psycopg2,
    "psycopg": patch_psycopg,
    "pymysql.cursors": patch_pymysql,
    "MySQLdb.cursors": patch_mysqldb,
}
