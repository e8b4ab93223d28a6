"""Linear-time multi-pattern matching: Hyperscan first, RE2 where Hyperscan cannot.

Every rule pattern that targets the same transformed value is compiled into one Hyperscan
database, so one scan of a value serves all rules at once. A pattern Hyperscan can only
approximate is compiled in prefilter mode and confirmed with RE2 on a hit; a pattern Hyperscan
rejects runs on RE2 alone. Both engines are automata without backtracking, so no pattern can be
turned into a ReDoS, and Python's `re` never sees a rule pattern.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import tempfile
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hyperscan
import re2

_RE2_MAX_MEM = 8 << 20
_PREFILTER = hyperscan.HS_FLAG_PREFILTER


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


_UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED


@functools.lru_cache(maxsize=4096)
def compile_re2(pattern: Pattern) -> Re2Program:
    """An RE2 program for `pattern`; raises PatternError when RE2 rejects it."""
    try:
        return Re2Program(re2.compile(pattern.regex, _re2_options(pattern.case_sensitive)))
    except Exception as exc:  # re2 raises its own error type
        raise PatternError(f"RE2 rejects the pattern: {exc}") from exc


def _collect(index: int, start: int, end: int, flags: int, hits: set[int]) -> None:
    hits.add(index)


def _hs_flags(pattern: Pattern) -> int:
    # One event per pattern and scan at most: a hostile value full of matches costs no more
    # Python callbacks than a value with one.
    flags = (
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


def _compile_with_fallbacks(plain: Expressions) -> tuple[Any, set[int], set[int]]:
    """(database, prefiltered ids, rejected ids): what Hyperscan refuses is retried in
    prefilter mode (then confirmed with RE2), and what it still refuses is left to RE2."""
    if not plain:
        return None, set(), set()
    try:
        return _hs_compile(plain), set(), set()
    except hyperscan.error:
        rejected = _hs_rejected(plain)
    prefiltered = {
        e[0] for e in plain
        if e[0] in rejected and not _hs_rejected([(e[0], e[1], e[2] | _PREFILTER)])
    }
    expressions = [e for e in plain if e[0] not in rejected]
    expressions += [(e[0], e[1], e[2] | _PREFILTER) for e in plain if e[0] in prefiltered]
    return (_hs_compile(expressions) if expressions else None), prefiltered, rejected


def _database_for(plain: Expressions) -> tuple[Any, set[int], set[int]]:
    """Compiled databases are kept on disk: compiling a large rule set takes seconds, loading
    it takes milliseconds."""
    key = _cache_key(plain)
    cached = _cache_load(key)
    if cached is not None:
        return cached
    built = _compile_with_fallbacks(plain)
    _cache_store(key, *built)
    return built


# ---------------------------------------------------------------- compiled-database cache
# Entries are named by a digest of the expressions, their flags and the Hyperscan version, and
# carry a digest of their content, so a stale or damaged entry is recompiled, never used. The
# directory is private to the user (0700); set BASTION_PATTERN_CACHE=off to disable it, or to a
# directory to move it.

_MAGIC = b"BSTNHS1\n"


def cache_directory() -> Path | None:
    setting = os.environ.get("BASTION_PATTERN_CACHE", "")
    if setting.lower() in ("0", "off", "false", "no"):
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bastion" / "patterns"


def _cache_key(plain: Expressions) -> str:
    digest = hashlib.sha256()
    version = getattr(hyperscan, "__version__", "?")
    digest.update(f"{version}|{platform.machine()}|".encode())
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
    _re2_joined: list[tuple[int, Re2Program]] = field(init=False, repr=False)
    _local: threading.local = field(init=False, repr=False, default_factory=threading.local)

    def __post_init__(self) -> None:
        self._programs = [compile_re2(p) for p in self.patterns]
        plain = [(i, _hs_expression(p.regex), _hs_flags(p)) for i, p in enumerate(self.patterns)]
        self._database, prefiltered, rejected = _database_for(plain)
        # Hits that RE2 must confirm: approximations, and anchors, which the database reads in
        # multi-line mode so that one scan of joined values finds every value's anchors.
        anchored = {i for i, p in enumerate(self.patterns) if "^" in p.regex or "$" in p.regex}
        self._confirm = prefiltered | anchored
        self._re2_only = sorted(rejected - prefiltered)
        self._re2_ids = set(self._re2_only)
        self._hyperscan_ids = set(range(len(self.patterns))) - self._re2_ids
        # What Hyperscan refuses runs on RE2, over the joined values too: in multi-line mode,
        # like the database, so that a miss there clears every value.
        self._re2_joined = [
            (i, compile_re2(Pattern("(?m)" + self.patterns[i].regex,
                                    self.patterns[i].case_sensitive)))
            for i in self._re2_only
        ]

    def _scratch(self) -> Any:
        """Scratch space for scanning; one per thread, since Hyperscan's is not shareable."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        return scratch

    def _hyperscan_hits(self, text: str) -> set[int]:
        hits: set[int] = set()
        if self._database is not None:
            self._database.scan(
                text.encode(), match_event_handler=_collect, context=hits,
                scratch=self._scratch(),
            )
        return hits

    def scan(self, text: str) -> set[int]:
        """The patterns with a match somewhere in `text`, usually many values joined by
        newlines: an absent pattern matches none of them, a present one may, to be checked
        value by value with `matches`."""
        hits = self._hyperscan_hits(text)
        for index, program in self._re2_joined:
            if program.search(text) is not None:
                hits.add(index)
        return hits

    def matches(self, text: str, candidates: Collection[int] | None = None) -> list[int]:
        """Indexes of the patterns that match `text` alone, among `candidates` (all when
        None): a joined scan names the candidates, this confirms them one value at a time."""
        found: list[int] = []
        if self._database is not None and (
            candidates is None or not self._hyperscan_ids.isdisjoint(candidates)
        ):
            for index in self._hyperscan_hits(text):
                if index in self._confirm and self._programs[index].search(text) is None:
                    continue
                found.append(index)
        for index in self._re2_only:
            if (candidates is None or index in candidates) and self._programs[
                index
            ].search(text) is not None:
                found.append(index)
        return found

    def highlight(self, index: int, text: str) -> str:
        """The part of `text` that pattern `index` matched, for the event report."""
        found = self._programs[index].search(text)
        return found if found is not None else text
