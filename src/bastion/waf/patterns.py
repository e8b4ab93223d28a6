"""Linear-time multi-pattern matching: Hyperscan first, RE2 where Hyperscan cannot.

The rule patterns of a scan group (addresses that read nearly the same patterns, see plan.py)
are compiled into one Hyperscan database, so one scan of many values serves all rules at once.
A pattern Hyperscan can only approximate is compiled in prefilter mode and confirmed with RE2
on a hit; a pattern Hyperscan rejects runs on RE2 alone. Both engines are automata without
backtracking, so no pattern can be turned into a ReDoS, and Python's `re` never sees a rule
pattern. Detector triggers run in a `LineScanner`, which reports lines rather than patterns.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import tempfile
import threading
from bisect import bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import hyperscan
import re2

_RE2_MAX_MEM: Final = 8 << 20
_PREFILTER: Final = hyperscan.HS_FLAG_PREFILTER


class PatternError(ValueError):
    """Neither Hyperscan nor RE2 accepts a pattern."""


@dataclass(frozen=True)
class Pattern:
    """One regular expression with the options the rule format allows."""

    regex: str
    case_sensitive: bool = False


def _re2_options(case_sensitive: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False
    return options


class Re2Program:
    """An RE2 program searched through RE2's own match call.

    The `re2` module's `search()` builds a match object and maps offsets in Python, about ten
    times the cost of the match itself; the engine only needs "where, if anywhere".
    """

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._regexp = getattr(compiled, "_regexp", None)

    def search(self, text: str) -> str | None:
        """The first match in `text` (clean Unicode, see limits.clean_text), or None."""
        if self._regexp is None:  # a re2 module without the low-level call
            match = self._compiled.search(text)
            return None if match is None else str(match.group(0))
        data = text.encode()
        start, end = self._regexp.Match(_UNANCHORED, data, 0, len(data))[0]
        if start < 0:
            return None
        return data[start:end].decode("utf-8", "replace")

    def start_in(self, data: bytes, position: int) -> int | None:
        """Where the leftmost match in `data` from `position` on starts, or None; what comes
        before `position` counts as context (for anchors and word boundaries)."""
        if self._regexp is None:
            found = self._compiled.search(data[position:].decode("utf-8", "replace"))
            return None if found is None else position  # no offsets: the earliest possible
        start, _ = self._regexp.Match(_UNANCHORED, data, position, len(data))[0]
        return None if start < 0 else int(start)


_UNANCHORED: Final = re2._re2.RE2.Anchor.UNANCHORED


@functools.lru_cache(maxsize=4096)
def compile_re2(pattern: Pattern) -> Re2Program:
    """An RE2 program for `pattern`; raises PatternError when RE2 rejects it."""
    try:
        return Re2Program(re2.compile(pattern.regex, _re2_options(pattern.case_sensitive)))
    except Exception as exc:  # re2 raises its own error type
        raise PatternError(f"RE2 rejects the pattern: {exc}") from exc


def _collect(index: int, start: int, end: int, flags: int, hits: set[int]) -> None:
    hits.add(index)


def _collect_first(index: int, start: int, end: int, flags: int, hits: dict[int, int]) -> None:
    hits.setdefault(index, end)


def _collect_ends(
    index: int, start: int, end: int, flags: int, found: list[tuple[int, int]]
) -> None:
    found.append((index, end))


def _hs_flags(pattern: Pattern) -> int:
    # One event per pattern and scan at most: a hostile value full of matches costs no more
    # Python callbacks than a value with one.
    flags: int = (
        hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY | hyperscan.HS_FLAG_MULTILINE
    )
    if not pattern.case_sensitive:
        flags |= hyperscan.HS_FLAG_CASELESS
    if not pattern.regex.isascii():
        flags |= hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP
    return flags


def _hs_expression(regex: str) -> bytes:
    r"""The pattern as Hyperscan takes it: non-ASCII characters written as \x{...} escapes,
    which the bindings pass through intact (raw UTF-8 in an expression is refused)."""
    # A backslash never precedes a non-ASCII character here: RE2, which must accept every
    # pattern first, rejects such escapes.
    if regex.isascii():
        return regex.encode()
    return "".join(ch if ord(ch) < 0x80 else f"\\x{{{ord(ch):x}}}" for ch in regex).encode()


def _hs_compile(expressions: Sequence[tuple[int, bytes, int]]) -> Any:
    database = hyperscan.Database()
    database.compile(
        expressions=[e[1] for e in expressions],
        ids=[e[0] for e in expressions],
        elements=len(expressions),
        flags=[e[2] for e in expressions],
    )
    return database


def _hs_rejected(expressions: Sequence[tuple[int, bytes, int]]) -> set[int]:
    """Ids of the expressions Hyperscan refuses, found by bisection: compiling is costly."""
    try:
        _hs_compile(expressions)
    except hyperscan.error:
        if len(expressions) == 1:
            return {expressions[0][0]}
        middle = len(expressions) // 2
        return _hs_rejected(expressions[:middle]) | _hs_rejected(expressions[middle:])
    return set()


Expressions = Sequence[tuple[int, bytes, int]]


def _compile_with_fallbacks(
    plain: Expressions, prefilter: bool = True
) -> tuple[Any, set[int], set[int]]:
    """(database, prefiltered ids, rejected ids): what Hyperscan refuses is retried in
    prefilter mode (then confirmed with RE2) when `prefilter` allows, and what it still
    refuses is left to RE2."""
    if not plain:
        return None, set(), set()
    try:
        return _hs_compile(plain), set(), set()
    except hyperscan.error:
        rejected = _hs_rejected(plain)
    prefiltered = {
        e[0] for e in plain
        if prefilter and e[0] in rejected
        and not _hs_rejected([(e[0], e[1], e[2] | _PREFILTER)])
    }
    expressions = [e for e in plain if e[0] not in rejected]
    expressions += [(e[0], e[1], e[2] | _PREFILTER) for e in plain if e[0] in prefiltered]
    return (_hs_compile(expressions) if expressions else None), prefiltered, rejected


def _database_for(plain: Expressions, prefilter: bool = True) -> tuple[Any, set[int], set[int]]:
    """Compiled databases are kept on disk: compiling a large rule set takes seconds, loading
    it takes milliseconds."""
    key = _cache_key(plain, "" if prefilter else "exact|")
    cached = _cache_load(key)
    if cached is not None:
        return cached
    built = _compile_with_fallbacks(plain, prefilter)
    _cache_store(key, *built)
    return built


# ---------------------------------------------------------------- compiled-database cache
# Entries are named by a digest of the expressions, their flags and the Hyperscan version, and
# carry a digest of their content, so a stale or damaged entry is recompiled, never used. The
# directory is private to the user (0700); set BASTION_PATTERN_CACHE=off to disable it, or to a
# directory to move it.

_MAGIC: Final = b"BSTNHS1\n"


def cache_directory() -> Path | None:
    setting = os.environ.get("BASTION_PATTERN_CACHE", "")
    if setting.lower() in ("0", "off", "false", "no"):
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bastion" / "patterns"


def _cache_key(plain: Expressions, kind: str = "") -> str:
    digest = hashlib.sha256()
    version = getattr(hyperscan, "__version__", "?")
    digest.update(f"{version}|{platform.machine()}|{kind}".encode())
    for index, regex, flags in plain:
        digest.update(f"{index}:{flags}:{len(regex)}:".encode() + regex)
    return digest.hexdigest()


def _cache_load(key: str) -> tuple[Any, set[int], set[int]] | None:
    directory = cache_directory()
    if directory is None:
        return None
    try:
        data = (directory / key).read_bytes()
        if not data.startswith(_MAGIC):
            return None
        body = data[len(_MAGIC) + 32 :]
        if hashlib.sha256(body).digest() != data[len(_MAGIC) : len(_MAGIC) + 32]:
            return None
        header_size = int.from_bytes(body[:4], "big")
        header = json.loads(body[4 : 4 + header_size])
        raw = body[4 + header_size :]
        database = hyperscan.loadb(raw, hyperscan.HS_MODE_BLOCK) if raw else None
        return database, set(header["prefiltered"]), set(header["rejected"])
    except (OSError, ValueError, KeyError, hyperscan.error):
        return None


def _cache_store(key: str, database: Any, prefiltered: set[int], rejected: set[int]) -> None:
    directory = cache_directory()
    if directory is None:
        return
    header = json.dumps({"prefiltered": sorted(prefiltered), "rejected": sorted(rejected)})
    body = len(header).to_bytes(4, "big") + header.encode()
    if database is not None:
        body += hyperscan.dumpb(database)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, delete=False) as handle:
            handle.write(_MAGIC + hashlib.sha256(body).digest() + body)
        os.replace(handle.name, directory / key)
    except OSError:
        return  # the cache is an optimisation: a read-only home must not stop anything


def check_pattern(pattern: Pattern) -> str | None:
    """Why `pattern` cannot be used, or None. RE2 must accept it: it confirms Hyperscan's
    prefilter hits, finds highlights, and runs what Hyperscan cannot."""
    try:
        compile_re2(pattern)
    except PatternError as exc:
        return str(exc)
    return None


@dataclass
class PatternSet:
    """Patterns matched together: `matches(text)` returns the indexes that match `text`."""

    patterns: Sequence[Pattern]
    _programs: list[Re2Program] = field(init=False, repr=False)
    _database: Any = field(init=False, repr=False, default=None)
    _confirm: set[int] = field(init=False, repr=False)
    _re2_only: list[int] = field(init=False, repr=False)
    _re2_ids: set[int] = field(init=False, repr=False)
    _hyperscan_ids: set[int] = field(init=False, repr=False)
    _multiline: list[Re2Program] = field(init=False, repr=False)
    _local: threading.local = field(init=False, repr=False, default_factory=threading.local)
    _prototype: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._programs = [compile_re2(p) for p in self.patterns]
        plain = [(i, _hs_expression(p.regex), _hs_flags(p)) for i, p in enumerate(self.patterns)]
        self._database, prefiltered, rejected = _database_for(plain)
        if self._database is not None:
            self._prototype = hyperscan.Scratch(self._database)
        # Hits that RE2 must confirm: approximations, and anchors, which the database reads in
        # multi-line mode so that one scan of joined values finds every value's anchors.
        anchored = {i for i, p in enumerate(self.patterns) if "^" in p.regex or "$" in p.regex}
        self._confirm = prefiltered | anchored
        self._re2_only = sorted(rejected - prefiltered)
        self._re2_ids = set(self._re2_only)
        self._hyperscan_ids = set(range(len(self.patterns))) - self._re2_ids
        # Every pattern also as RE2 reads joined values: multi-line, as the database, so that
        # a miss there clears every value. What Hyperscan refuses runs there on every scan,
        # and the others narrow a hit down (`locate`). Compiled now, at load: compiled on
        # first use instead, a request's first hit on a pattern paid for it (up to 2.6 ms a
        # pattern, 30 ms for the bundled rules; 0.3 MB), counted against the rules' deadline:
        # the first attack a worker saw took 2.5-3.3 ms of its 5, 0.2-0.3 later.
        self._multiline = [compile_re2(Pattern("(?m)" + p.regex, p.case_sensitive))
                           for p in self.patterns]

    def _scratch(self) -> Any:
        """Scratch space for scanning; one per thread, since Hyperscan's is not shareable."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = _clone_scratch(self, self._database)
        return scratch

    def _hyperscan_hits(self, data: bytes) -> set[int]:
        hits: set[int] = set()
        if self._database is not None:
            self._database.scan(
                data, match_event_handler=_collect, context=hits, scratch=self._scratch()
            )
        return hits

    def scan(self, text: str) -> set[int]:
        """The patterns with a match somewhere in `text`, usually many values joined by
        newlines: an absent pattern matches none of them, a present one may, to be checked
        value by value with `matches`."""
        hits = self._hyperscan_hits(text.encode())
        for index in self._re2_only:
            if self._multiline[index].search(text) is not None:
                hits.add(index)
        return hits

    def locate(self, data: bytes, start: int = 0) -> dict[int, int]:
        """For each pattern with a match in `data` (many values joined by newlines, encoded)
        from offset `start` on, an offset no match that lies within one value ends before:
        where its first reported match ends (Hyperscan; see the engine for an end-of-line
        anchor, reported one byte late) or one past where its leftmost match starts (RE2).
        Values wholly before that offset need no look for that pattern."""
        hits: dict[int, int] = {}
        if self._database is not None:
            self._database.scan(
                data[start:] if start else data, match_event_handler=_collect_first,
                context=hits, scratch=self._scratch(),
            )
            if start:
                hits = {index: end + start for index, end in hits.items()}
        self._re2_locate(data, start, self._re2_only, hits)
        return hits

    def _re2_locate(
        self, data: bytes, start: int, indexes: Iterable[int], hits: dict[int, int]
    ) -> None:
        """`locate` for the patterns of `indexes`, with RE2 in multi-line mode: one past
        where each one's leftmost match from `start` on starts, into `hits`."""
        for index in indexes:
            found = self._multiline[index].start_in(data, start)
            if found is not None:
                hits[index] = found + 1

    def lines_to_check(self, data: bytes, hits: dict[int, int]) -> dict[int, set[int]]:
        """The lines of `data` (values joined by newlines, encoded) that each pattern of
        `hits` (from `locate(data)`) may match alone, by line number. No line before where a
        pattern's earliest match lies can hold one; the lines after are scanned again from
        past the lowest line found, a few rounds, then all taken. When few lines follow
        those found first, they are all taken at once: checking a value costs less than a
        scan."""
        starts = line_starts(data)
        last = len(starts) - 1
        pending = _lines_of(starts, hits)
        if sum(last - line for line in pending.values()) <= _DIRECT_LINES:
            taken: dict[int, set[int]] = {}
            for pattern, first in pending.items():
                for line in range(first, last + 1):
                    taken.setdefault(line, set()).add(pattern)
            return taken
        lines: dict[int, set[int]] = {}
        frontier: dict[int, int] = {}
        for _ in range(_NARROWING_ROUNDS):
            for pattern, line in pending.items():
                if line > frontier.get(pattern, -1):
                    frontier[pattern] = line
                    lines.setdefault(line, set()).add(pattern)
            following = min(frontier[pattern] for pattern in pending) + 1
            if following >= len(starts):
                return lines
            found = self._relocate(data, starts[following], pending)
            pending = _lines_of(
                starts, {pattern: end for pattern, end in found.items() if pattern in frontier})
            if not pending:
                return lines
        for pattern in pending:
            for line in range(frontier[pattern] + 1, len(starts)):
                lines.setdefault(line, set()).add(pattern)
        return lines

    def _relocate(self, data: bytes, start: int, pending: dict[int, int]) -> dict[int, int]:
        """`locate(data, start)` for the `pending` patterns (at least), the others may be
        left out. For a few patterns, RE2 searches each in multi-line mode, exactly: on a
        short rest of the data, a few RE2 searches cost less than a scan of the database.
        A long rest goes to the database, whose speed does not depend on the patterns."""
        if len(pending) > _RE2_RESCAN or len(data) - start > _RE2_RESCAN_BYTES:
            return self.locate(data, start)
        hits: dict[int, int] = {}
        self._re2_locate(data, start, pending, hits)
        return hits

    def candidates(self, text: str) -> set[int]:
        """Hyperscan's answer for `text` alone, before confirmation: a superset of the
        patterns `matches` reports, except those only RE2 runs (see `find`)."""
        return self._hyperscan_hits(text.encode())

    def find(self, index: int, text: str, candidates: Collection[int] | None = None) -> str | None:
        """What pattern `index` matches in `text` alone, or None. `candidates(text)`, when
        given, rules out at once the patterns Hyperscan did not report."""
        if candidates is not None and index not in candidates and index not in self._re2_ids:
            return None
        return self._programs[index].search(text)

    def matches(self, text: str, candidates: Collection[int] | None = None) -> list[int]:
        """Indexes of the patterns that match `text` alone, among `candidates` (all when
        None): a joined scan names the candidates, this confirms them one value at a time."""
        found: list[int] = []
        if self._database is not None and (
            candidates is None or not self._hyperscan_ids.isdisjoint(candidates)
        ):
            for index in self._hyperscan_hits(text.encode()):
                if index in self._confirm and self._programs[index].search(text) is None:
                    continue
                found.append(index)
        for index in self._re2_only:
            if (candidates is None or index in candidates) and self._programs[
                index
            ].search(text) is not None:
                found.append(index)
        return found


# Rounds of looking again past the lines found so far before `lines_to_check` settles for
# "every later line": each round costs a scan, each line a scan of its value alone.
_NARROWING_ROUNDS: Final = 4
# Lines past the first found, over all patterns, that `lines_to_check` takes without a scan.
_DIRECT_LINES: Final = 2
# Patterns still pending that `lines_to_check` looks for again with RE2, one by one, in at
# most this many bytes; above, one scan of the whole database is cheaper.
_RE2_RESCAN: Final = 3
_RE2_RESCAN_BYTES: Final = 4096


def _lines_of(starts: list[int], offsets: dict[int, int]) -> dict[int, int]:
    """For each pattern, the line its `locate` offset falls in. An end-of-line anchor is seen
    with the newline after it: a match that ends there may be reported one byte late."""
    return {
        pattern: bisect_right(starts, max(offset - 1, 0)) - 1
        for pattern, offset in offsets.items()
    }


def line_starts(data: bytes) -> list[int]:
    """Offsets where the lines of `data` start."""
    starts = [0]
    position = 0
    for line in data.split(b"\n"):  # one call, then native arithmetic (compiled)
        position += len(line) + 1
        starts.append(position)
    starts.pop()
    return starts


class LineScanner:
    """Patterns that report lines: scanned over newline-joined values, each pattern reports
    every line it matched once, at the line's end. Detector triggers take this form, so one
    scan tells which values each detector needs to see.

    Each pattern must end at the end of a line (`$`, multi-line) and is compiled as it is:
    nothing is approximated, and a pattern Hyperscan refuses is left out (`usable`).
    """

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self.patterns = tuple(patterns)
        plain = [
            (i, _hs_expression(p.regex), _hs_flags(p) & ~hyperscan.HS_FLAG_SINGLEMATCH
             & ~hyperscan.HS_FLAG_ALLOWEMPTY)
            for i, p in enumerate(self.patterns)
        ]
        self._database, _, rejected = _database_for(plain, prefilter=False)
        self.usable = frozenset(range(len(self.patterns))) - rejected
        self._local = threading.local()
        self._prototype: Any = None
        if self._database is not None:
            self._prototype = hyperscan.Scratch(self._database)

    def lines(self, data: bytes) -> list[tuple[int, int]]:
        """(pattern index, end offset of the line) for each line of `data` a pattern matched."""
        found: list[tuple[int, int]] = []
        if self._database is None:
            return found
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = _clone_scratch(self, self._database)
        self._database.scan(data, match_event_handler=_collect_ends, context=found,
                            scratch=scratch)
        return found


def _clone_scratch(owner: PatternSet | LineScanner, database: Any) -> Any:
    """A new thread's scratch space, cloned from the one made with the database: making
    scratch for a large database takes about a millisecond, cloning it some microseconds,
    and this runs on the first request each thread serves."""
    if owner._prototype is None:
        owner._prototype = hyperscan.Scratch(database)
    return owner._prototype.clone()
