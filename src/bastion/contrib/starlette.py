"""Starlette and FastAPI: the ASGI middleware, plus the route and path params after routing.

`patch()` makes every Starlette (so every FastAPI) app protected: the middleware goes around
the app's whole stack, a handler turns `BlockedRequest` into the block response, and route
matching feeds the path params to the request's context before the endpoint runs. A mounted
sub-application finds the request already protected and adds nothing.
"""

from __future__ import annotations

import functools

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.blocking import BlockedRequest, BlockResponse
from bastion.context import current
from bastion.contrib.asgi import BastionASGIMiddleware, Receive, Scope, Send
from bastion.protection import Protection

_MARK = "_bastion_protected"


def patch(protection: Protection) -> None:
    """Protect every Starlette/FastAPI application, whenever it was built."""
    original_call = Starlette.__call__
    if getattr(original_call, _MARK, False):
        return

    # __call__, not build_middleware_stack: FastAPI overrides the latter, not the former.
    @functools.wraps(original_call)
    async def __call__(self: Starlette, scope: Scope, receive: Receive, send: Send) -> None:
        middleware = self.__dict__.get("_bastion_asgi")
        if middleware is None:
            # Registered before the app's first call builds its middleware stack.
            self.exception_handlers.setdefault(BlockedRequest, _blocked)
            middleware = BastionASGIMiddleware(functools.partial(original_call, self),
                                               protection)
            self.__dict__["_bastion_asgi"] = middleware
        await middleware(scope, receive, send)

    setattr(__call__, _MARK, True)
    Starlette.__call__ = __call__  # type: ignore[method-assign]
    _patch_routes()


def _patch_routes() -> None:
    original_handle = Route.handle

    @functools.wraps(original_handle)
    async def handle(self: Route, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = current()
        if ctx is not None:
            blocked = ctx.routed(self.path, scope.get("path_params"))
            if blocked is not None:
                await _response(blocked)(scope, receive, send)
                return
        await original_handle(self, scope, receive, send)

    Route.handle = handle  # type: ignore[method-assign]


async def _blocked(request: Request, error: Exception) -> Response:
    ctx = current()
    if ctx is None or not isinstance(error, BlockedRequest):
        return Response("Forbidden", 403, media_type="text/plain")
    return _response(ctx.block_with(error))


def _response(blocked: BlockResponse) -> Response:
    headers = {k: v for k, v in blocked.headers if k.lower() != "content-length"}
    return Response(blocked.body, blocked.status, headers=headers)
