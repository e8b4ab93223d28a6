"""Network sinks: every URL the application fetches (`server.io.net.url`), before any
connection is made.

- `urllib.request`: `OpenerDirector.open`, under `urlopen()` and every opener (all schemes).
- `http.client`: `HTTPConnection.putrequest`, the request line; `http.client` connects only
  when the request is sent, after it.
- urllib3 (and `requests` above it): `HTTPConnectionPool.urlopen`. urllib3 sends through
  `http.client`, but an HTTPS pool connects (TCP and TLS) before the request line, so it is
  checked one level up.
- httpx: `Client.send` and `AsyncClient.send`, which every request method ends in.

The check of the outermost of these holds for the calls it makes (see check.py): one fetch of
the application is one evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from bastion.sinks.check import (
    Addresses,
    Args,
    Kwargs,
    Reader,
    argument,
    async_hook,
    sync_hook,
    text,
)
from bastion.sinks.patching import replace

FAMILY = "network"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_address(url: str) -> Addresses:
    return {"server.io.net.url": url}


def join_url(scheme: str, host: str, port: int | None, target: str) -> str:
    """The absolute URL of a request target sent to `host:port`; an absolute target (a
    request through a proxy) is its own URL."""
    if _is_absolute(target):
        return target
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if target == "*":  # OPTIONS *
        target = ""
    elif target and not target.startswith("/"):
        target = "/" + target
    return f"{scheme}://{netloc}{target}"


def _is_absolute(target: str) -> bool:
    head = target[:8].lower()
    return head.startswith(("http://", "https://"))


# ---------------------------------------------------------------- readers

def _opener_url(args: Args, kwargs: Kwargs) -> Addresses:
    """OpenerDirector.open(self, fullurl, data=None, timeout=...): a URL or a Request."""
    url = argument(args, kwargs, 1, "fullurl")
    return url_address(url if isinstance(url, str) else text(url.full_url))


def _connection_url(args: Args, kwargs: Kwargs) -> Addresses:
    """HTTPConnection.putrequest(self, method, url, ...): the target on this connection, or
    on the tunnel's far end when it goes through a proxy."""
    connection: Any = args[0]
    target = text(argument(args, kwargs, 2, "url"))
    scheme = "https" if connection.default_port == 443 else "http"
    host, port = connection.host, connection.port
    tunnel_host = getattr(connection, "_tunnel_host", None)
    if tunnel_host:
        host, port = tunnel_host, getattr(connection, "_tunnel_port", None)
    return url_address(join_url(scheme, text(host).strip("[]"), port, target))


def _pool_url(args: Args, kwargs: Kwargs) -> Addresses:
    """urllib3 HTTPConnectionPool.urlopen(self, method, url, ...)."""
    pool: Any = args[0]
    target = text(argument(args, kwargs, 2, "url"))
    return url_address(join_url(str(pool.scheme), text(pool.host).strip("[]"), pool.port,
                                target))


def _httpx_url(args: Args, kwargs: Kwargs) -> Addresses:
    """httpx Client.send(self, request, ...)."""
    request: Any = argument(args, kwargs, 1, "request")
    return url_address(str(request.url))


# ---------------------------------------------------------------- patches

def _hook(owner: object, name: str, reader: Reader) -> None:
    replace(owner, name, lambda original: sync_hook(original, FAMILY, reader))


def patch_urllib_request(module: ModuleType) -> None:
    _hook(module.OpenerDirector, "open", _opener_url)


def patch_http_client(module: ModuleType) -> None:
    _hook(module.HTTPConnection, "putrequest", _connection_url)


def patch_urllib3(module: ModuleType) -> None:
    _hook(module.HTTPConnectionPool, "urlopen", _pool_url)


def patch_httpx(module: ModuleType) -> None:
    _hook(module.Client, "send", _httpx_url)
    replace(module.AsyncClient, "send",
            lambda original: async_hook(original, FAMILY, _httpx_url))


PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "urllib.request": patch_urllib_request,
    "http.client": patch_http_client,
    "urllib3.connectionpool": patch_urllib3,
    "httpx": patch_httpx,
}
