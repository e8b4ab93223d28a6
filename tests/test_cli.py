"""`bastion check` and `bastion rules lint`: output and exit codes scripts rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.cli import main

RULES = {"version": "2.2", "rules": [{
    "id": "t-1", "name": "test traversal", "tags": {"type": "lfi", "category": "attack_attempt"},
    "conditions": [{"operator": "match_regex", "parameters": {
        "inputs": [{"address": "server.request.query"}, {"address": "server.request.body"}],
        "regex": r"\.\./"}}],
}]}


@pytest.fixture
def rules_file(tmp_path: Path) -> str:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES))
    return str(path)


def test_attack_exits_1_and_shows_rule_parameter_and_highlight(
    rules_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", "--url", "/f?name=../../etc/passwd", "--rules", rules_file])
    out = capsys.readouterr().out
    assert code == 1
    assert "t-1" in out and "server.request.query['name'][0]" in out
    assert "[[../]]" in out


def test_clean_request_exits_0(rules_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--method", "POST", "--url", "http://h/f", "--data", "a=b",
                 "-H", "User-Agent: test", "--rules", rules_file])
    assert code == 0
    assert "clean" in capsys.readouterr().out


def test_json_output(rules_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--url", "/f", "--data", "x=../a", "--rules", rules_file, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["attack"] is True
    assert report["events"][0]["rule"]["id"] == "t-1"


@pytest.mark.parametrize("argv", [
    ["check", "--url", "no-slash"],
    ["check", "--url", "/x", "-H", "no colon"],
    ["check", "--url", "/x", "--method", "GE T"],
    ["check", "--url", "/x", "--rules", "/nonexistent/rules.json"],
    ["check"],
    ["rules", "lint", "/nonexistent/rules.json"],
])
def test_bad_input_exits_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and "Traceback" not in err


def test_broken_rule_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert main(["check", "--url", "/x", "--rules", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 1 column" in err


def test_lint_names_failed_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(json.dumps(RULES))
    bad = json.loads(json.dumps(RULES["rules"][0]))
    bad["id"] = "t-bad"
    bad["conditions"][0]["parameters"]["regex"] = "(?<=x)y"
    document["rules"].append(bad)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    assert main(["rules", "lint", str(path)]) == 1
    out = capsys.readouterr().out
    assert "1 rules loaded" in out and "failed t-bad" in out


def test_console_script_runs_as_a_process(rules_file: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bastion.cli", "check", "--url", "/?a=../x", "--rules", rules_file],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 1 and "t-1" in done.stdout


def test_demo_runs_the_bundled_samples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--samples"]) == 0
    out = capsys.readouterr().out
    assert out.count("== ") == 3


def test_lint_without_a_file_checks_the_bundled_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "lint"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bundled rules:") and " 0 failed" in out
