"""The `bastion` command: check a request against the rules, lint a rule file, run the demo.

Exit codes are part of the interface, so scripts and CI can rely on them:
`check` exits 1 when a rule fired, 0 when the request is clean, 2 on bad input or a broken
rule file; `rules lint` exits 1 when some rules failed to load and 2 when the file is unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from bastion import native
from bastion.addresses import request_addresses
from bastion.waf import Ruleset, RulesetError, WafResult, load_ruleset

EXIT_CLEAN, EXIT_ATTACK, EXIT_ERROR = 0, 1, 2


class UsageError(ValueError):
    """Bad command-line input; reported in one line with exit code 2."""


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
        raise UsageError(f"header {text!r} is not 'Name: value'")
    return name.strip(), value.strip()


def split_url(url: str) -> tuple[str, str | None]:
    """The request target (path?query) and the host of an absolute URL."""
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return target, parts.netloc or None
    if not url.startswith("/"):
        raise UsageError(f"URL {url!r} must be absolute (http://...) or start with '/'")
    return url, None


def prepare_request(
    method: str, url: str, headers: Sequence[str], data: str | None
) -> dict[str, object]:
    """The addresses of the request described on the command line; UsageError if malformed."""
    if not method.isalpha():
        raise UsageError(f"method {method!r} is not an HTTP method")
    target, host = split_url(url)
    header_pairs = [parse_header(h) for h in headers]
    if host and not any(name.lower() == "host" for name, _ in header_pairs):
        header_pairs.append(("Host", host))
    body = (data or "").encode("utf-8", "surrogateescape")
    if body and not any(name.lower() == "content-type" for name, _ in header_pairs):
        header_pairs.append(("Content-Type", "application/x-www-form-urlencoded"))
    return request_addresses(method, target, header_pairs, body, "127.0.0.1")


def _mark(value: str, highlight: str, color: bool) -> str:
    """The value with the part that matched set off, so a reader sees why the rule fired."""
    position = value.find(highlight) if highlight else -1
    if position < 0:
        return value
    start, end = ("\033[1;31m", "\033[0m") if color else ("[[", "]]")
    return value[:position] + start + highlight + end + value[position + len(highlight):]


def format_result(result: WafResult, color: bool) -> str:
    if not result.events:
        return "clean: no rule fired"
    lines = [f"ATTACK: {len(result.events)} rule(s) fired"]
    for event in result.events:
        rule = event["rule"]
        lines.append(f"- {rule['id']} {rule['name']} [{rule['tags'].get('type', '')}]")
        for match in event["rule_matches"]:
            for parameter in match["parameters"]:
                where = parameter["address"] + "".join(f"[{k!r}]" for k in parameter["key_path"])
                highlight = parameter["highlight"][0] if parameter["highlight"] else ""
                value = _mark(str(parameter["value"])[:300], highlight, color)
                lines.append(f"    {match['operator']} on {where}: {value}")
    if result.actions:
        lines.append(f"actions: {json.dumps(result.actions)}")
    return "\n".join(lines)


def load_rules(path: str | None) -> Ruleset:
    """Load rules, saying so on stderr when it takes long: the first load of a rule set
    compiles its patterns (seconds); later loads read them from the cache."""
    timer = threading.Timer(
        1.0, lambda: print("bastion: compiling rule patterns (cached for the next runs)...",
                           file=sys.stderr, flush=True),
    )
    timer.start()
    try:
        return load_ruleset(path)
    finally:
        timer.cancel()


def cmd_check(args: argparse.Namespace) -> int:
    addresses = prepare_request(args.method, args.url, args.header, args.data)
    result = load_rules(args.rules).context().run(addresses, timeout_us=100_000)
    if args.json:
        print(json.dumps({"attack": bool(result.events), "events": result.events,
                          "actions": result.actions, "timeout": result.timeout}, indent=2))
    else:
        print(format_result(result, sys.stdout.isatty()))
    return EXIT_ATTACK if result.events else EXIT_CLEAN


def cmd_lint(args: argparse.Namespace) -> int:
    ruleset = load_rules(args.file)
    diagnostics = ruleset.diagnostics
    print(f"{args.file or 'bundled rules'}: {len(diagnostics['loaded'])} rules loaded "
          f"({len(diagnostics['disabled'])} disabled), {len(diagnostics['failed'])} failed, "
          f"{len(diagnostics['skipped'])} skipped for this engine version")
    for rule_id, reason in diagnostics["failed"].items():
        print(f"  failed {rule_id}: {reason}")
    for warning in diagnostics["warnings"]:
        print(f"  warning: {warning}")
    print(native.summary())
    return EXIT_ATTACK if diagnostics["failed"] else EXIT_CLEAN


def load_samples() -> list[dict[str, Any]]:
    text = resources.files("bastion").joinpath("samples/requests.json").read_text("utf-8")
    samples: list[dict[str, Any]] = json.loads(text)
    return samples


def cmd_demo(args: argparse.Namespace) -> int:
    """The protected demo shop; with --samples, the bundled sample requests instead."""
    if not args.samples:
        from bastion.demo.run import serve

        return serve(args.port, args.mode, args.events, args.workers)
    ruleset = load_rules(args.rules)
    print(f"Bastion {len(ruleset.rules)} rules loaded; checking the bundled sample requests\n")
    for sample in load_samples():
        addresses = prepare_request(sample["method"], sample["url"],
                                    sample.get("headers", []), sample.get("data"))
        result = ruleset.context().run(addresses, timeout_us=100_000)
        print(f"== {sample['title']}: {sample['method']} {sample['url']}")
        if sample.get("data"):
            print(f"   body: {sample['data']}")
        print(format_result(result, sys.stdout.isatty()))
        print(f"   ({result.duration_us:.0f} us)\n")
    return EXIT_CLEAN


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bastion", description="Bastion App and API Protection")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="check one HTTP request against the rules")
    check.add_argument("--method", default="GET")
    check.add_argument("--url", required=True, help="http://host/path?query or /path?query")
    check.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    check.add_argument("--data", help="request body")
    check.add_argument("--rules", help="rule file (default: the bundled rules)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(handler=cmd_check)

    rules = commands.add_parser("rules", help="rule file tools")
    rule_commands = rules.add_subparsers(dest="rules_command", required=True)
    lint = rule_commands.add_parser(
        "lint", help="load a rule file (default: the bundled rules) and report every problem; "
        "this also fills the compiled-pattern cache"
    )
    lint.add_argument("file", nargs="?")
    lint.set_defaults(handler=cmd_lint)

    demo = commands.add_parser(
        "demo", help="run the deliberately vulnerable demo shop on 127.0.0.1, protected")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--mode", choices=("block", "monitor"), default="block")
    demo.add_argument("--events", default="stdout",
                      help="where security events go: stdout, stderr or a file")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--samples", action="store_true",
                      help="instead: check the bundled sample requests, no server")
    demo.add_argument("--rules", help="rule file for --samples (default: the bundled rules)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the one-line usage error
        return EXIT_ERROR if exc.code else EXIT_CLEAN
    try:
        code: int = args.handler(args)
    except (UsageError, RulesetError) as exc:
        print(f"bastion: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
