"""Real servers on loopback for the end-to-end tests: gunicorn and uvicorn, with or without
`bastion-run`, and a plain HTTP client (http.client, so that nothing rewrites what we send)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# name -> (server, application)
APPS = {
    "flask": ("gunicorn", "tests.e2e.apps.flask_app:app"),
    "django": ("gunicorn", "tests.e2e.apps.django_app:application"),
    "django-asgi": ("uvicorn", "tests.e2e.apps.django_app:asgi_application"),
    "fastapi": ("uvicorn", "tests.e2e.apps.fastapi_app:app"),
}


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server process; `protected` runs it under bastion-run."""

    def __init__(self, app: str, protected: bool, env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        self.app = app
        self.protected = protected
        self.port = free_port()
        self.extra_env = env or {}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        # A name of APPS, or "<gunicorn|uvicorn> <module:app>" for an app of a test's own.
        server, target = APPS[self.app] if self.app in APPS else self.app.split(" ", 1)
        if server == "gunicorn":
            argv = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{self.port}", "-w", "1",
                    "--threads", "4", "--log-level", "warning", target]
        else:
            argv = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(self.port),
                    "--log-level", "warning", target]
        return ([str(BIN / "bastion-run")] if self.protected else []) + argv

    def start(self, timeout: float = 90.0) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        # The checkout under test first, whatever bastion the environment has installed.
        env["PYTHONPATH"] = f"{REPO}{os.pathsep}{REPO / 'src'}"
        env.update(self.extra_env)
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(self.command(), cwd=REPO, env=env, stdout=output,
                                        stderr=output, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command()} exited with {self.process.returncode}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                if self.get("/health").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.command()} did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            all_headers = {"Host": f"127.0.0.1:{self.port}"} | (headers or {})
            if body is not None:
                all_headers.setdefault("Content-Length", str(len(body)))
            for name, value in all_headers.items():
                connection.putheader(name, value)
            connection.endheaders(body)
            response = connection.getresponse()
            return Reply(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def get(self, target: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", target, headers)


def have(executable: str) -> bool:
    return (BIN / executable).exists() or shutil.which(executable) is not None
