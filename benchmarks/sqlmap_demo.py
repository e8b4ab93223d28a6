"""sqlmap against the demo shop's injectable search, with Bastion off and on (block mode).

usage: python benchmarks/sqlmap_demo.py [--level 3] [--risk 1] [--endpoint search]
                                       [--exploit-prevention-only]

The demo shop (`bastion.demo.shop`) builds its search SQL by string formatting: with Bastion
off, sqlmap must find the injection; with Bastion on in block mode, it must find nothing.
`--exploit-prevention-only` runs Bastion with the exploit-prevention rules alone (module
"rasp": the SQL statement checked at the database call), no request rules at all.
Each run gets a fresh gunicorn on 127.0.0.1 and a fresh sqlmap session directory, so no result
is carried over from one run to the other. Needs `pip install sqlmap gunicorn flask`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.servers import BIN, Server  # noqa: E402

ENDPOINTS = {
    "search": "/search?q=shoes",
    "product": "/product/1",
    "api": "/api/products?q=shoes",
}


class DemoServer(Server):
    """The demo shop under gunicorn, with or without bastion-run."""

    def command(self) -> list[str]:
        argv = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{self.port}", "-w", "2",
                "--log-level", "warning", "bastion.demo.shop:create_app()"]
        return ([str(BIN / "bastion-run")] if self.protected else []) + argv


def sqlmap_command() -> list[str]:
    found = shutil.which("sqlmap") or shutil.which("sqlmap", path=str(BIN))
    if found is None:
        raise SystemExit("sqlmap is not installed: pip install sqlmap")
    return [found]


def run_sqlmap(url: str, level: int, risk: int, workdir: Path) -> tuple[bool, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [*sqlmap_command(), "-u", url, "--batch", f"--level={level}", f"--risk={risk}",
         "--output-dir", str(workdir), "--flush-session", "--disable-coloring",
         "--answers=follow=N", "--timeout=10", "--retries=0",
         # a browser User-Agent: what is blocked is the payloads, not the tool's name
         "--random-agent"],
        capture_output=True, text=True, check=False,
    )
    out = done.stdout + done.stderr
    vulnerable = ("is vulnerable" in out or "sqlmap identified the following injection" in out)
    summary = [line for line in out.splitlines()
               if "injectable" in line or "identified" in line or "all tested parameters" in line
               or "Type:" in line]
    return vulnerable, "\n".join(summary[-8:]), time.monotonic() - started


def exploit_prevention_rules(directory: Path) -> Path:
    """The bundled rules reduced to exploit prevention (tags.module == "rasp")."""
    from bastion.waf.ruleset import default_rules_document

    document = dict(default_rules_document())
    document["rules"] = [rule for rule in document["rules"]
                         if rule.get("tags", {}).get("module") == "rasp"]
    path = directory / "rasp-only.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--level", type=int, default=3)
    parser.add_argument("--risk", type=int, default=1)
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="search")
    parser.add_argument("--exploit-prevention-only", action="store_true",
                        help="Bastion with its exploit-prevention rules only")
    args = parser.parse_args()
    results = {}
    for protected in (False, True):
        label = "Bastion on (block mode)" if protected else "Bastion off"
        with tempfile.TemporaryDirectory() as workdir:
            env = {"BASTION_MODE": "block",
                   "BASTION_EVENT_LOG": str(Path(workdir) / "events.jsonl")}
            if args.exploit_prevention_only:
                env["BASTION_RULES"] = str(exploit_prevention_rules(Path(workdir)))
                label += ", exploit prevention only"
            server = DemoServer("flask", protected, env=env)
            server.start()
            try:
                url = f"http://127.0.0.1:{server.port}{ENDPOINTS[args.endpoint]}"
                vulnerable, summary, took = run_sqlmap(url, args.level, args.risk,
                                                       Path(workdir) / "sqlmap")
                events = Path(workdir) / "events.jsonl"
                blocked = events.read_text().count('"blocked":true') if events.exists() else 0
            finally:
                server.stop()
        results[protected] = vulnerable
        print(f"== {label}: sqlmap {'FOUND an injection' if vulnerable else 'found nothing'} "
              f"in {took:.0f} s" + (f"; Bastion blocked {blocked} requests" if protected else ""))
        if summary:
            print("   " + summary.replace("\n", "\n   "))
    ok = results[False] and not results[True]
    print(f"\nexpected: found with Bastion off, nothing with Bastion on -> {'OK' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
