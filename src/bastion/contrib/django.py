"""Django: the WSGI/ASGI middlewares around Django's handlers, and a Django middleware for
what only Django knows (the route and path params after URL resolution, BlockedRequest).

`patch_wsgi()` and `patch_asgi()` wrap `WSGIHandler` and `ASGIHandler`, `patch_base()` puts
`BastionDjangoMiddleware` first in `settings.MIDDLEWARE`, so an application needs no change.
Each is called when its module is imported (not before: importing one module from another's
import hook would find it half-initialised). Sync and async views are both served.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponse

from bastion.blocking import BlockedRequest, BlockResponse
from bastion.context import current
from bastion.protection import Protection

MIDDLEWARE_PATH = "bastion.contrib.django.BastionDjangoMiddleware"
_MARK = "_bastion_protected"


class BastionDjangoMiddleware:
    """Feeds the resolved route and path params to the request's context; turns
    BlockedRequest raised by a view into the block response."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.get_response(request)  # a coroutine: Django awaits it
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        ctx = current()
        if ctx is None:
            return None
        match = request.resolver_match
        route = (str(match.route) or None) if match is not None else None
        blocked = ctx.routed(route, {**kwargs, **dict(enumerate(args))})
        return _response(blocked) if blocked is not None else None

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not isinstance(exception, BlockedRequest):
            return None
        ctx = current()
        if ctx is None:
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
        return _response(ctx.block_with(exception))


def _response(blocked: BlockResponse) -> HttpResponse:
    response = HttpResponse(blocked.body, status=blocked.status)
    for name, value in blocked.headers:
        response[name] = value
    return response


def patch_base(protection: Protection) -> None:
    """Put BastionDjangoMiddleware first in every handler's middleware chain."""
    original_load = BaseHandler.load_middleware
    if getattr(original_load, _MARK, False):
        return

    @functools.wraps(original_load)
    def load_middleware(self: BaseHandler, is_async: bool = False) -> None:
        middleware = list(getattr(django_settings, "MIDDLEWARE", None) or [])
        if MIDDLEWARE_PATH not in middleware:
            django_settings.MIDDLEWARE = [MIDDLEWARE_PATH, *middleware]
        original_load(self, is_async)

    setattr(load_middleware, _MARK, True)
    BaseHandler.load_middleware = load_middleware


def patch_wsgi(protection: Protection) -> None:
    """Every WSGIHandler goes through the WSGI middleware (called once its module exists)."""
    from django.core.handlers.wsgi import WSGIHandler

    from bastion.contrib.wsgi import BastionMiddleware

    original_call = WSGIHandler.__call__
    if getattr(original_call, _MARK, False):
        return

    @functools.wraps(original_call)
    def __call__(self: WSGIHandler, environ: Any, start_response: Any) -> Any:
        middleware = self.__dict__.get("_bastion_wsgi")
        if middleware is None:
            middleware = BastionMiddleware(functools.partial(original_call, self), protection)
            self.__dict__["_bastion_wsgi"] = middleware
        return middleware(environ, start_response)

    setattr(__call__, _MARK, True)
    WSGIHandler.__call__ = __call__


def patch_asgi(protection: Protection) -> None:
    """Every ASGIHandler goes through the ASGI middleware (called once its module exists)."""
    from django.core.handlers.asgi import ASGIHandler

    from bastion.contrib.asgi import BastionASGIMiddleware

    original_call = ASGIHandler.__call__
    if getattr(original_call, _MARK, False):
        return

    @functools.wraps(original_call)
    async def __call__(self: ASGIHandler, scope: Any, receive: Any, send: Any) -> None:
        middleware = self.__dict__.get("_bastion_asgi")
        if middleware is None:
            middleware = BastionASGIMiddleware(functools.partial(original_call, self),
                                               protection)
            self.__dict__["_bastion_asgi"] = middleware
        await middleware(scope, receive, send)

    setattr(__call__, _MARK, True)
    ASGIHandler.__call__ = __call__
