"""Per-request overhead of protection on Flask, Django and FastAPI, peers side by side, one run.

Grown from ../shared/bench/overhead_flask.py. Each (framework, mode) runs in its own fresh
process; modes alternate round by round (A B C D A B C D ...) so that machine drift hits all
of them alike. The app is called in-process (WSGI with a prebuilt environ, ASGI with prebuilt
messages on one event loop), so the figure is the framework plus the protection layer, with no
socket noise. A local sink on 127.0.0.1 accepts whatever the peers' tracers export.

usage: python benchmarks/overhead.py [--frameworks flask,django,fastapi]
                                     [--modes plain,bastion,bastion-tracing,ddtrace,zen] [--rounds 5] [--n 3000]
                                     [--python INTERPRETER]
  plain    the framework alone
  bastion  import bastion; bastion.protect()  (block mode, bundled rules, events to a file)
  bastion-tracing  the same with BASTION_TRACING on, spans exported over OTLP/HTTP to the sink
  ddtrace  ddtrace.auto with DD_APPSEC_ENABLED=true (agent = the local sink)
  zen      aikido_zen.protect() with AIKIDO_BLOCK=true, no token
Peers are optional (install them in a separate virtualenv, never beside Bastion): a mode whose
package is not importable is reported as 'n/a'. Prints one JSON object per (round, framework,
mode), then per framework a table of medians with the time added over plain, the Bastion
targets (at most 1/2 of Zen's added time and 1/10 of ddtrace's), and the start-up time of
`import <peer>; protect()` (for Bastion also the time until its rules are loaded, which
happens in a background thread while the application imports).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

CHILD = r'''
import io, json, os, sys, time
framework, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = time.perf_counter()
if mode in ("bastion", "bastion-tracing"):  # the latter with BASTION_TRACING (child_env)
    import bastion; protection = bastion.protect()
elif mode == "ddtrace":
    import ddtrace.auto  # noqa: F401
elif mode == "zen":
    import aikido_zen; aikido_zen.protect()
startup_ms = (time.perf_counter() - started) * 1000
ready_ms = startup_ms
if mode in ("bastion", "bastion-tracing"):  # protect() returns; the rules load in a thread
    protection.wait_ready(); ready_ms = (time.perf_counter() - started) * 1000
import sqlite3
db = sqlite3.connect(":memory:", check_same_thread=False)
db.execute("create table users(name text)"); db.execute("insert into users values ('alice')")
def lookup(name):
    return db.execute("select name from users where name = '" + name + "'").fetchall()
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
HEADERS = [("user-agent", UA), ("accept", "text/html,application/json;q=0.9"), ("host", "localhost"),
           ("cookie", "session=3f2a9c1e; theme=dark"), ("accept-language", "en-US,en;q=0.9"),
           ("accept-encoding", "gzip, deflate, br"), ("referer", "https://shop.example.com/catalog?page=2")]
body = json.dumps({"items": [{"sku": "A-%d" % i, "qty": i, "note": "gift wrap please"} for i in range(20)]}).encode()
cases = {
  "hello": ("GET", "/hello", ""),
  "search_benign": ("GET", "/search", "q=red+running+shoes&page=2&sort=price_asc"),
  # The same browser searching: headers repeat, every query string is new (nothing of it can
  # have been seen before: see bastion.waf.verdicts).
  "search_fresh": [("GET", "/search", "q=red+running+shoes+%d&page=%d&sort=price_asc" % (i, i % 7))
                   for i in range(n + 200)],
  "json_post_benign": ("POST", "/api/items", "", body, "application/json"),
  "user_benign": ("GET", "/user", "name=alice"),
  "search_sqli": ("GET", "/search", "q=1%27%20OR%201%3D1--"),
  "user_sqli_sink": ("GET", "/user", "name=x%27%20UNION%20SELECT%20sqlite_version()--"),
}

def wsgi_environ(method, path, qs, body=b"", ctype=""):
    e = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": qs, "SERVER_NAME": "localhost",
         "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
         "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
         "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
         "REMOTE_ADDR": "203.0.113.7"}
    for name, value in HEADERS:
        e["HTTP_" + name.upper().replace("-", "_")] = value
    if body:
        e["CONTENT_LENGTH"] = str(len(body)); e["CONTENT_TYPE"] = ctype
    return e

def wsgi_caller(app):
    st = {}
    def sr(s, h, exc=None): st["s"] = s
    def call(args):
        it = app(wsgi_environ(*args), sr)
        b = b"".join(it)
        if hasattr(it, "close"): it.close()
        return st["s"][:3], b
    return call

if framework == "flask":
    from flask import Flask, request
    app = Flask(__name__)
    @app.route("/hello")
    def hello(): return "ok"
    @app.route("/search")
    def search(): return "q=" + request.args.get("q", "")
    @app.route("/user")
    def user(): return json.dumps(lookup(request.args.get("name", "")))
    @app.route("/api/items", methods=["POST"])
    def items(): return {"n": len(request.get_json(force=True).get("items", []))}
    call = wsgi_caller(app)
elif framework == "django":
    from django.conf import settings
    settings.configure(DEBUG=False, SECRET_KEY="bench", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                       MIDDLEWARE=["django.middleware.common.CommonMiddleware"], INSTALLED_APPS=[])
    import django
    django.setup()
    from django.http import HttpResponse, JsonResponse
    from django.urls import path
    def hello(r): return HttpResponse("ok")
    def search(r): return HttpResponse("q=" + r.GET.get("q", ""))
    def user(r): return HttpResponse(json.dumps(lookup(r.GET.get("name", ""))))
    def items(r): return JsonResponse({"n": len(json.loads(r.body).get("items", []))})
    urlpatterns = [path("hello", hello), path("search", search), path("user", user), path("api/items", items)]
    from django.core.handlers.wsgi import WSGIHandler
    call = wsgi_caller(WSGIHandler())
else:
    import asyncio
    from fastapi import FastAPI, Request
    from fastapi.responses import PlainTextResponse
    app = FastAPI()
    @app.get("/hello", response_class=PlainTextResponse)
    async def hello(): return "ok"
    @app.get("/search", response_class=PlainTextResponse)
    async def search(q: str = ""): return "q=" + q
    @app.get("/user", response_class=PlainTextResponse)
    async def user(name: str = ""): return json.dumps(lookup(name))
    @app.post("/api/items")
    async def items(request: Request): return {"n": len((await request.json()).get("items", []))}
    loop = asyncio.new_event_loop()
    def call(args):
        method, path, qs = args[0], args[1], args[2]
        body = args[3] if len(args) > 3 else b""
        headers = [(k.encode(), v.encode()) for k, v in HEADERS]
        if body:
            headers += [(b"content-type", args[4].encode()), (b"content-length", str(len(body)).encode())]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": qs.encode(),
                 "root_path": "", "headers": headers, "client": ("203.0.113.7", 50000),
                 "server": ("localhost", 80)}
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        out = {}
        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}
        async def send(message):
            if message["type"] == "http.response.start": out["s"] = str(message["status"])
            else: out["b"] = out.get("b", b"") + message.get("body", b"")
        loop.run_until_complete(app(scope, receive, send))
        return out["s"], out.get("b", b"")

def safe_call(args):
    # A peer may stop an attack by raising out of the app (Zen at a sink, under plain ASGI).
    try:
        return call(args)
    except Exception as error:
        return "raised " + type(error).__name__, b""
res = {"_startup_ms": startup_ms, "_ready_ms": ready_ms}
for name, args in cases.items():
    calls = args if isinstance(args, list) else [args]
    for i in range(200): safe_call(calls[i % len(calls)])
    t = time.perf_counter()
    for i in range(200, 200 + n): s, b = safe_call(calls[i % len(calls)])
    res[name] = {"us": (time.perf_counter() - t) / n * 1e6, "status": s}
print(json.dumps(res))
'''


class Sink(http.server.BaseHTTPRequestHandler):
    """Accepts whatever a tracer exports, so nothing leaves the machine.

    It speaks HTTP/1.1 with kept-alive connections, as collectors and agents do: answering
    in HTTP/1.0 made every exporter open a connection (and this server a thread) per batch,
    and that cost, on the same two cores as the application, was counted as the tracer's.
    Nagle's algorithm is off, as in collectors (Go sets TCP_NODELAY by default): with it on,
    the answer's second write waited for the exporter's delayed ACK, 40 ms a batch."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _ok(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                self.rfile.read(size + 2)  # the chunk and its CRLF
            self.rfile.readline()  # the end of an empty trailer
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_PUT = do_POST = do_GET = _ok

    def log_message(self, *args: object) -> None:
        pass


def child_env(port: int, events: Path, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "OTEL_"))}
    env.update(
        DD_TRACE_AGENT_URL=f"http://127.0.0.1:{port}", DD_APPSEC_ENABLED="true",
        DD_REMOTE_CONFIGURATION_ENABLED="false", DD_INSTRUMENTATION_TELEMETRY_ENABLED="false",
        DD_TRACE_STARTUP_LOGS="false", AIKIDO_BLOCK="true",
        BASTION_MODE="block", BASTION_EVENT_LOG=str(events),
    )
    if mode == "bastion-tracing":  # spans exported over OTLP/HTTP to the local sink
        env.update(BASTION_TRACING="true", BASTION_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")
    return env


def run_child(python: str, framework: str, mode: str, n: int, env: dict[str, str]
              ) -> dict[str, object] | str:
    done = subprocess.run([python, "-c", CHILD, framework, mode, str(n)], env=env,
                          capture_output=True, text=True, check=False)
    line = (done.stdout.strip().splitlines() or [""])[-1]
    try:
        result: dict[str, object] = json.loads(line)
    except ValueError:
        return (done.stderr or done.stdout)[-400:]
    return result


def report(framework: str, modes: list[str], table: dict[tuple[str, str], list[float]],
           startup: dict[str, list[float]]) -> None:
    cases = list(dict.fromkeys(case for (_, case) in table))
    print(f"\n{framework}: median us/request over rounds (added over plain)")
    print(f"{'case':18s}" + "".join(f"{m:>22s}" for m in modes))
    added: dict[tuple[str, str], float] = {}
    for case in cases:
        base = statistics.median(table.get(("plain", case), [float("nan")]))
        row = f"{case:18s}"
        for mode in modes:
            values = table.get((mode, case))
            if not values:
                row += f"{'n/a':>22s}"
                continue
            median = statistics.median(values)
            added[(mode, case)] = median - base
            row += f"{median:10.1f} (+{median - base:7.1f})"
        print(row)
    for key, label in (("_startup_ms", "protect() ms"), ("_ready_ms", "rules ready ms")):
        row = f"{label:18s}"
        for mode in modes:
            values = startup.get(f"{mode}{key}")
            row += f"{statistics.median(values):22.1f}" if values else f"{'n/a':>22s}"
        print(row)
    for case in ("search_benign", "search_fresh", "user_benign", "json_post_benign"):
        for ours_mode in ("bastion", "bastion-tracing"):
            _targets(added, ours_mode, case)


def _targets(added: dict[tuple[str, str], float], mode: str, case: str) -> None:
    """One line: what `mode` adds on `case`, beside the targets the peers set."""
    ours = added.get((mode, case))
    if ours is None:
        return
    notes = []
    for peer, share in (("zen", 2), ("ddtrace", 10)):
        theirs = added.get((peer, case))
        if theirs is not None and theirs > 0:
            target = theirs / share
            verdict = "met" if ours <= target else "NOT met"
            notes.append(f"{peer} adds {theirs:.0f} us, target <= {target:.0f} us: {verdict}")
    print(f"  {mode} adds {ours:.0f} us on {case}" + (f"; {'; '.join(notes)}" if notes else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frameworks", default="flask,django,fastapi")
    parser.add_argument("--modes", default="plain,bastion,bastion-tracing,ddtrace,zen")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter with the frameworks and the peers installed")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    frameworks, modes = args.frameworks.split(","), args.modes.split(",")
    tables: dict[str, dict[tuple[str, str], list[float]]] = {f: {} for f in frameworks}
    startups: dict[str, dict[str, list[float]]] = {f: {} for f in frameworks}
    with tempfile.TemporaryDirectory() as workdir:
        port, events = server.server_address[1], Path(workdir) / "events.jsonl"
        for round_number in range(args.rounds):
            for framework in frameworks:
                for mode in modes:
                    result = run_child(args.python, framework, mode, args.n,
                                       child_env(port, events, mode))
                    if isinstance(result, str):
                        print(json.dumps({"round": round_number, "framework": framework,
                                          "mode": mode, "error": result}), flush=True)
                        continue
                    print(json.dumps({"round": round_number, "framework": framework,
                                      "mode": mode, **result}), flush=True)
                    for key in ("_startup_ms", "_ready_ms"):
                        figure = result.pop(key)
                        assert isinstance(figure, float)
                        startups[framework].setdefault(f"{mode}{key}", []).append(figure)
                    for case, figures in result.items():
                        assert isinstance(figures, dict)
                        tables[framework].setdefault((mode, case), []).append(figures["us"])
    for framework in frameworks:
        report(framework, modes, tables[framework], startups[framework])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
