"""`bastion demo`: the deliberately vulnerable shop under gunicorn, protected by Bastion.

It runs exactly what a user would run for their own app, `bastion-run gunicorn ...`, in block
mode, on 127.0.0.1 only, and prints attacks to try and where the events go.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from urllib.parse import quote

from bastion.bootstrap.run import main as bastion_run

APP = "bastion.demo.shop:create_app()"

TRIES = (
    ("benign search", "/search?q=shoes"),
    ("SQL injection dumping the users", "/search?q=" + quote(
        "' UNION SELECT id, username, password FROM users--")),
    ("SQL injection in a path parameter", "/product/" + quote(
        "0 UNION SELECT 1, flag, 'x', 0 FROM secrets")),
    ("reflected XSS", "/search?q=" + quote("<script>alert(document.domain)</script>")),
    ("path traversal to a secret file", "/download?name=" + quote("../secret.txt")),
    ("server-side request forgery to the cloud metadata address",
     "/preview?url=" + quote("http://169.254.169.254/latest/meta-data/")),
    ("shell injection through the ping tool", "/ping?host=" + quote("127.0.0.1; id")),
)


def serve(port: int, mode: str, events: str, workers: int) -> int:
    missing = [name for name in ("flask", "gunicorn") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"bastion demo: {' and '.join(missing)} not installed; install the demo with "
              "pip install 'bastion[demo]'", file=sys.stderr)
        return 2
    _compile_rules()
    base = f"http://127.0.0.1:{port}"
    print(f"Bastion demo shop on {base}  ({mode} mode; Ctrl-C stops it)\n")
    print("The shop is deliberately vulnerable (string-built SQL, unescaped output, a file")
    print("download, a URL fetch and a shell command built from user input); Bastion")
    print("stands in front of it. Try, in another terminal:\n")
    for label, path in TRIES:
        print(f"  # {label}")
        print(f"  curl -i '{base}{path}'")
    print(f"""  # login bypass
  curl -i -X POST '{base}/login' --data-urlencode "username=admin'--" --data 'password=x'
""")
    where = "this terminal (stdout)" if events == "stdout" else events
    print(f"Security events (JSON lines, secrets obfuscated) go to {where}.")
    print("Run `bastion demo --mode monitor` to see the attacks succeed and be reported.\n",
          flush=True)
    os.environ["BASTION_MODE"] = mode
    os.environ["BASTION_EVENT_LOG"] = events
    return bastion_run(["gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                        "--log-level", "warning", APP])


def _compile_rules() -> None:
    """Fill the compiled-pattern cache now, with a word, so the server starts at once."""
    from bastion.waf import load_ruleset

    started = time.monotonic()
    print("Loading the rules (the first run compiles them: up to a minute)...", end=" ",
          flush=True)
    load_ruleset()
    print(f"done in {time.monotonic() - started:.1f} s\n", flush=True)
