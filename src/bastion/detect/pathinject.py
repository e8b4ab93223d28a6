"""Path injection: did a user's value make a file path leave the directory the app meant?

An application builds the path it opens from a fixed part and a user's value
(`/srv/uploads/` + name). The value is harmless while it only names something inside that
directory; it is an exploit when its `..` segments climb out of it, or when it is an absolute
path that replaces the application's part altogether. Judging the value where it sits in the
path actually opened, rather than the value alone, keeps `a/../b`, `v1..2.txt` and plain file
names from looking like traversals.

Windows separators are read as `/` on every platform: the check must hold wherever the app runs.
"""

from __future__ import annotations

from typing import Final

__all__ = ["climbs_out", "injected", "occurrences"]

_MAX_OCCURRENCES: Final = 16


def occurrences(text: str, needle: str) -> list[int]:
    """Start offsets of `needle` in `text` (bounded: a short value may repeat in a long path)."""
    found: list[int] = []
    start = text.find(needle)
    while start >= 0 and len(found) < _MAX_OCCURRENCES:
        found.append(start)
        start = text.find(needle, start + 1)
    return found


def _is_dotdot(segment: str, percent_dots: bool) -> bool:
    if segment == "..":
        return True
    return percent_dots and "%" in segment and segment.lower().replace("%2e", ".") == ".."


def _resolve(segments: list[str], absolute: bool, percent_dots: bool) -> tuple[list[str], int]:
    """(remaining segments, levels climbed above the start): how the OS walks a path."""
    stack: list[str] = []
    above = 0
    for segment in segments:
        if _is_dotdot(segment, percent_dots):
            if stack:
                stack.pop()
            elif not absolute:
                above += 1
        elif segment not in ("", "."):
            stack.append(segment)
    return stack, above


def climbs_out(path: str, start: int, end: int, *, percent_dots: bool = False) -> bool:
    """Whether a `..` segment overlapping path[start:end] leaves the directory that the text
    before `start` names, and the path ends up outside it (`/` separators only).

    `percent_dots` also reads `%2e%2e` as `..`, as web servers do with a URL path.
    """
    head_end = path.rfind("/", 0, start) + 1
    absolute = path.startswith("/")
    base, base_above = _resolve(path[:head_end].split("/"), absolute, percent_dots)
    stack, above = list(base), base_above
    climbed = False
    position = head_end
    for segment in path[head_end:].split("/"):
        segment_end = position + len(segment)
        if _is_dotdot(segment, percent_dots):
            if stack:
                stack.pop()
            elif not absolute:
                above += 1
            outside = above > base_above or len(stack) < len(base)
            if outside and position < end and segment_end > start:
                climbed = True
        elif segment not in ("", "."):
            stack.append(segment)
        position = segment_end + 1
    return climbed and (above > base_above or stack[: len(base)] != base)


def _absolute(value: str) -> bool:
    """`/x`, `//server/share`, `C:/x`: a path that ignores the directory it is joined to."""
    if len(value) < 2:
        return False
    if value[0] == "/":
        return True
    return value[0].isascii() and value[0].isalpha() and value[1] == ":"


def injected(path: str, param: str) -> bool:
    """True when `param`, found in the opened `path`, climbs out of the directory the
    application put before it, or is an absolute path at the start of `path`."""
    if not param:
        return False
    text, needle = path.replace("\\", "/"), param.replace("\\", "/")
    traversal = ".." in needle
    for start in occurrences(text, needle):
        if start == 0 and _absolute(needle):
            return True
        if traversal and climbs_out(text, start, start + len(needle)):
            return True
    return False
