"""Datastore spans: one client span per SQL statement a DB-API driver runs, with its timing,
database, sanitized statement, row count, and on error the exception.

The exploit-prevention hooks (`bastion.sinks.sql`) already read every statement, so tracing
does not hook the drivers again: `enable()` puts a `DatastoreTracer` on their watch, and each
hook runs the statement between its `before` and `after`, inside a request (after the rules
let the statement through; a refused statement never runs and gets no span) or outside one
(a worker's job). The span is a child of the span current where the statement runs: the
request's server span, or the application's own.

Nothing of the statement's data leaves: `db.query.text` is the statement with every literal
replaced by `?` and its comments dropped (`bastion.detect.sqlsanitize`, in the driver's
dialect), never the raw text. A database's error message may quote the statement back
(PostgreSQL's `LINE 1:` context, MySQL's `near '...'`): the message keeps its first line, the
quoted part is sanitized and the statement's string literals are hidden, and the obfuscator
redacts what secrets remain, before the message reaches the span's `exception` event.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator, Sized
from types import FrameType
from typing import Any

import re2
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from bastion.config import Settings
from bastion.detect.sql import K_STRING, dialect_of, scan
from bastion.detect.sqlsanitize import sanitize
from bastion.report.obfuscation import DEFAULT_KEY_PATTERN, DEFAULT_VALUE_PATTERN, Obfuscator
from bastion.sinks import sql
from bastion.sinks.check import Addresses, Args, Kwargs
from bastion.tracing.server import ServerTracer

logger = logging.getLogger("bastion")

MAX_STATEMENT_CHARS = 16384
"""Longest statement text sanitized and shown; a longer one is cut there and ends in `…`."""

MAX_STACK_FRAMES = 64
"""Frames of an error's stack trace at most: the innermost are kept."""

AFFECTED_ROWS = "bastion.db.affected_rows"
"""Rows an INSERT, UPDATE or DELETE changed (the conventions only name returned rows)."""

# Statement verbs that name the operation (`db.operation.name`); any other first word does not.
OPERATIONS = frozenset((
    "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT", "CREATE", "ALTER",
    "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE", "BEGIN", "START", "COMMIT", "ROLLBACK",
    "SAVEPOINT", "RELEASE", "SET", "SHOW", "DESCRIBE", "EXPLAIN", "ANALYZE", "VACUUM", "CALL",
    "EXECUTE", "PREPARE", "DEALLOCATE", "COPY", "LOCK", "PRAGMA", "ATTACH", "DETACH", "USE",
    "LOAD", "DO", "LISTEN", "NOTIFY", "VALUES",
))

_PARAMS_SEQ = ("params_seq", "vars_list", "args", "parameters", "seq_of_parameters")
# MySQL and MariaDB quote the statement from where they stopped reading it.
_MYSQL_NEAR = re2.compile(r"near '(.*)' at line [0-9]+")


def enable(server: ServerTracer, settings: Settings) -> None:
    """Trace every statement of the hooked drivers from now on, into `server`'s pipeline."""
    sql.WATCH.set(DatastoreTracer(server, settings))


def disable() -> None:
    sql.WATCH.set(None)


class _Call:
    __slots__ = ("site", "span", "statement", "target")

    def __init__(self, span: trace.Span, site: sql.Site, target: object, statement: str) -> None:
        self.span = span
        self.site = site
        self.target = target
        self.statement = statement


class DatastoreTracer:
    """The SQL hooks' observer: a span from `before` to `after` (see `bastion.sinks.check`)."""

    def __init__(self, server: ServerTracer, settings: Settings) -> None:
        self._server = server
        self._obfuscator = Obfuscator(
            settings.obfuscation_key_regex or DEFAULT_KEY_PATTERN,
            settings.obfuscation_value_regex or DEFAULT_VALUE_PATTERN)
        self._texts = SanitizedStatements()
        self._failed = False

    def before(self, site: sql.Site, addresses: Addresses, args: Args,
               kwargs: Kwargs) -> _Call | None:
        try:
            return self._start(site, addresses, args, kwargs)
        except Exception as exc:
            self._report(exc)
            return None

    def after(self, handle: object, result: object, error: BaseException | None) -> None:
        if not isinstance(handle, _Call):
            return
        try:
            if error is None:
                self._count_rows(handle, result)
            else:
                self._record_error(handle, error)
        except Exception as exc:
            self._report(exc)
        finally:
            handle.span.end()

    # ------------------------------------------------------------ the span

    def _start(self, site: sql.Site, addresses: Addresses, args: Args,
               kwargs: Kwargs) -> _Call | None:
        statement = addresses.get("server.db.statement")
        pipeline = self._server.pipeline
        if pipeline is None or not isinstance(statement, str) or not args or (
                otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY)):
            return None
        text, operation = self._texts.get(statement, site.system)
        where = sql.endpoint(site, args[0])
        attributes: dict[str, AttributeValue] = {
            "db.system.name": where.product, "db.system": where.product, "db.query.text": text}
        if where.namespace:
            attributes["db.namespace"] = where.namespace
        if where.address:
            attributes["server.address"] = where.address
        if where.port is not None:
            attributes["server.port"] = where.port
        if operation:
            batch = _batch_size(args, kwargs) if site.method == "executemany" else None
            if batch is not None:
                operation = f"BATCH {operation}"
                attributes["db.operation.batch.size"] = batch
            attributes["db.operation.name"] = operation
        span = pipeline.tracer.start_span(_span_name(operation, where), kind=SpanKind.CLIENT,
                                          attributes=attributes)
        return _Call(span, site, args[0], statement)

    def _count_rows(self, call: _Call, result: object) -> None:
        cursor = result if hasattr(result, "rowcount") else call.target
        rows = getattr(cursor, "rowcount", -1)
        if not isinstance(rows, int) or not 0 <= rows < 2**62:  # -1, or unsigned -1: unknown
            return
        if getattr(cursor, "description", None) is not None:
            call.span.set_attribute("db.response.returned_rows", rows)
        elif call.site.method != "executescript":
            call.span.set_attribute(AFFECTED_ROWS, rows)

    def _record_error(self, call: _Call, error: BaseException) -> None:
        span = call.span
        kind = type(error)
        type_name = kind.__qualname__ if kind.__module__ == "builtins" else (
            f"{kind.__module__}.{kind.__qualname__}")
        message = error_message(error, call.statement, call.site.system, self._obfuscator)
        span.set_attribute("error.type", type_name)
        code = _error_code(error, call.site.system)
        if code:
            span.set_attribute("db.response.status_code", code)
        span.record_exception(error, attributes={
            "exception.message": message,
            "exception.stacktrace": stack_trace(error, type_name, message),
        }, escaped=True)
        span.set_status(Status(StatusCode.ERROR, message))

    def _report(self, exc: Exception) -> None:
        if not self._failed:
            self._failed = True
            logger.error("bastion: internal error in datastore tracing, the statement ran "
                         "without its span (fail open; logged once): %r", exc)


def _span_name(operation: str | None, where: sql.Endpoint) -> str:
    """`{operation} {database}` as the conventions say, with what is known of the two."""
    if operation and where.namespace:
        return f"{operation} {where.namespace}"
    return operation or where.namespace or where.product


def _batch_size(args: Args, kwargs: Kwargs) -> int | None:
    """How many parameter sets an `executemany` got; None when it is one (not a batch) or
    cannot be told without consuming them (a generator)."""
    params = args[2] if len(args) > 2 else next(
        (kwargs[name] for name in _PARAMS_SEQ if name in kwargs), None)
    if not isinstance(params, Sized):
        return None
    size = len(params)
    return None if size == 1 else size


def _error_code(error: BaseException, system: str) -> str | None:
    """The database's own code, as the conventions ask per system: PostgreSQL's SQLSTATE,
    MySQL's error number, SQLite's error name."""
    if system == sql.MYSQL:
        args = getattr(error, "args", ())
        number = args[0] if args else None
        return str(number) if isinstance(number, int) and not isinstance(number, bool) else None
    code = getattr(error, "sqlstate" if system == sql.POSTGRESQL else "sqlite_errorname", None)
    if code is None and system == sql.POSTGRESQL:
        code = getattr(error, "pgcode", None)  # psycopg2
    return code if isinstance(code, str) and code else None


class SanitizedStatements:
    """Statement -> (sanitized text, operation), remembered: applications run the same few
    statements over and over, and the sanitizer reads every character.

    The memory is keyed by the statement's hash, not its text: a statement may carry data,
    and none is kept. Python's string hash is 64 bits and keyed per process: two statements
    sharing an entry is as likely as guessing the key. Bounded; started over when full. No
    lock: each dict operation is atomic, and a race only costs a sanitization again."""

    MAX_ENTRIES = 2048

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], tuple[str, str | None]] = {}

    def get(self, statement: str, dialect: str) -> tuple[str, str | None]:
        key = (dialect, hash(statement))
        known = self._seen.get(key)
        if known is not None:
            return known
        cut = len(statement) > MAX_STATEMENT_CHARS
        text = sanitize(statement[:MAX_STATEMENT_CHARS] if cut else statement, dialect)
        if cut:
            text += " …"
        verb = text.partition(" ")[0].upper()
        made = (text, verb if verb in OPERATIONS else None)
        if len(self._seen) >= self.MAX_ENTRIES:
            self._seen.clear()
        self._seen[key] = made
        return made


# ---------------------------------------------------------------- errors

def error_message(error: BaseException, statement: str, dialect: str,
                  obfuscator: Obfuscator) -> str:
    """The first line of the error's message, without the statement's data (see above)."""
    try:
        text = str(error)
    except Exception:
        return ""
    text = text.strip().partition("\n")[0]
    near = _MYSQL_NEAR.search(text)
    if near is not None:
        start, end = near.span(1)
        text = text[:start] + sanitize(near.group(1), dialect) + text[end:]
    for literal in _string_literals(statement[:MAX_STATEMENT_CHARS], dialect):
        for quote in "'\"":
            text = text.replace(f"{quote}{literal}{quote}", f"{quote}?{quote}")
    return obfuscator.redact_text(text)


def _string_literals(statement: str, dialect: str) -> Iterator[str]:
    """The contents of the statement's quoted strings, longest first (a short one may be part
    of a longer one)."""
    contents: set[str] = set()
    for token in scan(statement, dialect_of(dialect)):
        if token.kind == K_STRING:
            body = token.text
            opening = next((i for i, c in enumerate(body) if c in "'\"$"), 0)
            inner = body[opening + 1:-1] if token.closed else body[opening + 1:]
            if inner:
                contents.add(inner)
    return iter(sorted(contents, key=len, reverse=True))


def stack_trace(error: BaseException, type_name: str, message: str) -> str:
    """A Python traceback from the application's outermost frame down to where the driver
    raised, without Bastion's frames (most recent call last), ending in the safe message.
    The exception's own traceback starts at the hook, so the callers are added to it."""
    frames = list(traceback.walk_stack(sys._getframe(1)))
    frames.reverse()
    frames.extend(traceback.walk_tb(error.__traceback__))
    kept = [(frame, line) for frame, line in frames if not _is_bastion(frame)]
    summary = traceback.StackSummary.extract(iter(kept[-MAX_STACK_FRAMES:]))
    return ("Traceback (most recent call last):\n" + "".join(summary.format())
            + f"{type_name}: {message}\n")


def _is_bastion(frame: FrameType) -> bool:
    """Bastion's own frames (the hook, this module); the demo application inside the package
    is an application."""
    module: Any = frame.f_globals.get("__name__")
    return isinstance(module, str) and (module == "bastion" or module.startswith(
        "bastion.")) and not module.startswith("bastion.demo.")
