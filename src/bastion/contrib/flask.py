"""Flask: the WSGI middleware, plus what only Flask knows (route, path params, user errors).

`patch()` makes every Flask app created afterwards protected; `protect_app(app)` protects one
app explicitly.
"""

from __future__ import annotations

import functools
from typing import Any

import flask

from bastion.blocking import BlockedRequest, BlockResponse
from bastion.context import current
from bastion.contrib.wsgi import BastionMiddleware
from bastion.protection import Protection

_MARK = "_bastion_protected"


def protect_app(app: flask.Flask, protection: Protection | None = None) -> flask.Flask:
    """Wrap `app.wsgi_app` and hook routing. Idempotent."""
    if getattr(app, _MARK, False):
        return app
    setattr(app, _MARK, True)
    app.wsgi_app = BastionMiddleware(app.wsgi_app, protection)  # type: ignore[method-assign]
    # First of the app's before_request functions: nothing of the app runs before the check.
    app.before_request_funcs.setdefault(None, []).insert(0, _after_routing)
    app.register_error_handler(BlockedRequest, _blocked)
    return app


def patch(protection: Protection) -> None:
    """Protect every Flask app constructed from now on."""
    original = flask.Flask.__init__
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def __init__(self: flask.Flask, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        protect_app(self, protection)

    setattr(__init__, _MARK, True)
    flask.Flask.__init__ = __init__  # type: ignore[method-assign]


def _after_routing() -> flask.Response | None:
    """Runs once Flask has matched the route: the route and path params join the request."""
    ctx = current()
    if ctx is None:
        return None
    request = flask.request._get_current_object()  # type: ignore[attr-defined]  # once
    rule = request.url_rule
    blocked = ctx.routed(rule.rule if rule is not None else None, request.view_args)
    return _response(blocked) if blocked is not None else None


def _blocked(error: BlockedRequest) -> flask.Response:
    ctx = current()
    if ctx is None:  # raised outside a protected request: a plain 403
        return flask.Response("Forbidden", 403, mimetype="text/plain")
    return _response(ctx.block_with(error))


def _response(blocked: BlockResponse) -> flask.Response:
    return flask.Response(blocked.body, blocked.status, headers=blocked.headers)
