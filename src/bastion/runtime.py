"""`protect()` and the app-facing calls: one Protection per process, installed once.

Kept apart from `bastion/__init__.py` so that `import bastion` stays cheap: nothing heavy is
imported until `protect()` (or a middleware) asks for it.
"""

from __future__ import annotations

import logging
import os
import threading

from bastion.blocking import BlockedRequest
from bastion.config import Settings
from bastion.context import current
from bastion.contrib.importhook import when_imported
from bastion.protection import Protection

logger = logging.getLogger("bastion")

_installed: Protection | None = None
_installed_pid = 0
_lock = threading.Lock()


def install(settings: Settings | None = None) -> Protection:
    """The process's Protection, created from the environment on first call."""
    global _installed, _installed_pid
    with _lock:
        if _installed is not None and _installed_pid == os.getpid():
            return _installed
        if settings is None:
            settings, errors = Settings.from_env()
            for error in errors:
                logger.error("bastion: %s; the default is used", error)
        _installed = Protection(settings, background=True)
        _installed_pid = os.getpid()
        if settings.config_file:
            from bastion.remote.configfile import ConfigFileWatcher

            ConfigFileWatcher(_installed, settings.config_file).start()
        if settings.enabled and settings.tracing_on:
            from bastion import tracing

            tracing.configure(settings)
        return _installed


def installed() -> Protection | None:
    return _installed


def installed_or_new() -> Protection:
    return install()


def protect() -> Protection:
    """Protect every Flask, Django and Starlette/FastAPI app of this process.

    Call it before the application is created (`bastion-run` does it for you). Frameworks are
    patched when the application imports them, so protect() itself stays fast; so are the
    sinks of exploit prevention (database drivers, files, HTTP clients, processes).
    """
    protection = install()
    if not protection.settings.enabled:
        logger.warning("bastion: BASTION_ENABLED is false; nothing is protected")
        return protection
    when_imported("flask", lambda _: _patch_flask(protection))
    when_imported("django.core.handlers.base", lambda _: _patch_django("base", protection))
    when_imported("django.core.handlers.wsgi", lambda _: _patch_django("wsgi", protection))
    when_imported("django.core.handlers.asgi", lambda _: _patch_django("asgi", protection))
    when_imported("starlette.applications", lambda _: _patch_starlette(protection))
    settings = protection.settings
    # The SQL hooks also feed datastore tracing: with exploit prevention off they stay, idle
    # but for the spans.
    if settings.exploit_prevention or settings.tracing_on:
        from bastion import sinks

        sinks.install(checks=settings.exploit_prevention)
    return protection


def _patch_flask(protection: Protection) -> None:
    from bastion.contrib.flask import patch

    patch(protection)


def _patch_django(part: str, protection: Protection) -> None:
    from bastion.contrib import django as adapter

    {"base": adapter.patch_base, "wsgi": adapter.patch_wsgi, "asgi": adapter.patch_asgi}[part](
        protection)


def _patch_starlette(protection: Protection) -> None:
    from bastion.contrib.starlette import patch

    patch(protection)


def set_user(user_id: str) -> None:
    """Tell Bastion who the authenticated user of the current request is.

    Raises BlockedRequest (which the adapters turn into the block response) when the user is
    on the deny list and Bastion is in block mode. Outside a protected request it does nothing.
    """
    ctx = current()
    if ctx is not None:
        ctx.set_user(str(user_id))


def block_request() -> None:
    """Stop the current request with the block response, whatever the mode: the application
    itself decided. Raises BlockedRequest."""
    raise BlockedRequest()
