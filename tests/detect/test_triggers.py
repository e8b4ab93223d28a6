"""Detector triggers never hide an attack: wherever a detector fires on a single-line ASCII
value, its trigger matches too (the engine skips the detector where the trigger does not)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.detect import html, shell, sql

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
DETECTORS: list[tuple[ModuleType, Callable[[str], str | None]]] = [
    (sql, sql.is_sqli), (html, html.is_xss), (shell, shell.is_shi),
]


def compiled_trigger(module: ModuleType) -> Any:
    options = re2.Options()
    options.case_sensitive = False
    return re2.compile(module.TRIGGER, options)


def corpus_values() -> Iterator[str]:
    for name in ("crs.jsonl", "libinjection.jsonl"):
        with (CORPUS / name).open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                for text in (record["query"], record["body"]):
                    yield text
                    for key, value in parse_qsl(text, keep_blank_values=True):
                        yield key
                        yield value
                yield from record["headers"].values()


def covered(trigger: Any, value: str) -> bool:
    return not value.isascii() or "\n" in value or trigger.search(value) is not None


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus is not beside the repo")
@pytest.mark.parametrize(
    ("module", "detector"), DETECTORS, ids=lambda x: getattr(x, "__name__", "")
)
def test_trigger_covers_every_corpus_detection(
    module: ModuleType, detector: Callable[[str], str | None]
) -> None:
    if not hasattr(module, "TRIGGER"):
        pytest.skip(f"{module.__name__} declares no trigger")
    trigger = compiled_trigger(module)
    missed = [v for v in set(corpus_values()) if detector(v) and not covered(trigger, v)]
    assert missed == []


alphabet = st.sampled_from(
    [*"'\"`;|&$(){}<>/\\*?[]=-#!^~ \t\r\nabcxyz019.,:%@+_",
     "or", "and", "union", "select", "sleep", "cat", "id", "script", "onerror", "alert",
       "javascript", "/etc/passwd", "whoami", "benchmark", "--", "/*", "*/", "<svg", "%0a"]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(alphabet, max_size=25).map("".join))
def test_trigger_covers_generated_values(value: str) -> None:
    for module, detector in DETECTORS:
        if hasattr(module, "TRIGGER") and detector(value):
            assert covered(compiled_trigger(module), value), (module.__name__, value)


def line_form(module: ModuleType) -> Any:
    """The trigger as the engine scans it (see bastion.waf.operators.Detector)."""
    options = re2.Options()
    options.case_sensitive = False
    line = getattr(module, "TRIGGER_LINE", None) or f"(?:{module.TRIGGER})[^\\n]*$"
    return re2.compile("(?m)" + line, options)


def single_line(value: str) -> bool:
    return value.isascii() and "\n" not in value


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus is not beside the repo")
@pytest.mark.parametrize("module", [sql, html, shell], ids=lambda m: m.__name__)
def test_line_form_of_the_trigger_agrees_on_corpus_values(module: ModuleType) -> None:
    trigger, line = compiled_trigger(module), line_form(module)
    values = [v for v in set(corpus_values()) if single_line(v)]
    assert [v for v in values if bool(trigger.search(v)) != bool(line.search(v))] == []


@settings(max_examples=2000, deadline=None)
@given(st.lists(alphabet, max_size=25).map("".join))
def test_line_form_of_the_trigger_agrees_on_generated_values(value: str) -> None:
    if single_line(value):
        for module in (sql, html, shell):
            assert bool(compiled_trigger(module).search(value)) == bool(
                line_form(module).search(value)), (module.__name__, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(alphabet, max_size=12).map("".join).filter(single_line),
                min_size=1, max_size=8))
def test_one_scan_of_joined_values_reports_every_value_its_trigger_matches(
    values: list[str],
) -> None:
    from bastion.waf.operators import build_operator
    from bastion.waf.patterns import LineScanner, Pattern

    modules = [sql, html, shell]
    detectors = [build_operator(name, {}, {}) for name in ("is_sqli", "is_xss", "is_shi")]
    scanner = LineScanner([d.trigger for d in detectors if isinstance(d.trigger, Pattern)])
    assert scanner.usable == {0, 1, 2}
    joined = "\n".join(values)
    ends = [len("\n".join(values[: i + 1])) for i in range(len(values))]
    reported = set(scanner.lines(joined.encode()))
    for number, module in enumerate(modules):
        trigger = compiled_trigger(module)
        for value, end in zip(values, ends, strict=True):
            if trigger.search(value):
                assert (number, end) in reported, (module.__name__, value)
