"""One request's protection: its addresses, its WAF context, its events and its decision.

Middlewares create a `RequestContext` per request and put it in a contextvar, so that code
deep inside the request (a framework hook after routing, `bastion.set_user`, exploit-prevention
hooks at the sinks) finds it without it being passed around. Every address, early or late, goes
through `RequestContext.run`. Nothing here knows a framework.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from datetime import datetime, timezone
from typing import Any

from bastion import tracing
from bastion.activity import ACTIVITY
from bastion.addresses import MAX_DIGESTED_BODY, addresses_of, body_digest, header_map
from bastion.blocking import BlockedRequest, BlockResponse, render
from bastion.bodies import parse_body
from bastion.clientip import resolve_client_ip
from bastion.protection import Protection
from bastion.waf.verdicts import DIGEST_ADDRESSES

_current: ContextVar[RequestContext | None] = ContextVar("bastion_request", default=None)

# Request headers copied into an event: enough to understand the attack, nothing secret
# (the obfuscator still sees them before anything is written).
EVENT_HEADERS = (
    "host", "referer", "origin", "content-type", "content-length", "accept", "x-forwarded-for",
    "forwarded", "x-real-ip", "true-client-ip", "via",
)


FIRST_RUN_TIMEOUT_US = 100_000
_thread_state = threading.local()

_RESPONSE_ADDRESSES = ("server.response.status", "server.response.headers.no_cookies")
_BODY = "server.request.body"
_BODY_DIGEST = DIGEST_ADDRESSES[_BODY]


def current() -> RequestContext | None:
    """The context of the request being handled in this thread or task, if any."""
    return _current.get()


# `current()` without the Python call around it, for hooks that run on every SQL statement or
# file open of the process (bastion.sinks): outside a request they cost only this lookup.
current_fast = _current.get


def resumed(request: RequestContext) -> Token[RequestContext | None]:
    """Make `request` current again while the response body is produced after the
    application returned (a streamed WSGI body): its sinks are still the request's. Undo
    with `suspended(token)`. The caller keeps the request counted as being handled
    (`RequestContext.hold`) for as long as it may resume it."""
    return _current.set(request)


def suspended(token: Token[RequestContext | None]) -> None:
    _current.reset(token)

MAX_STACK_FRAMES = 32


def stack_frames(limit: int = MAX_STACK_FRAMES) -> dict[str, Any]:
    """The caller's stack for an event: most recent call last, without Bastion's own frames
    (the hook, the rules), the outermost dropped past `limit`. Source lines are not read."""
    frames: list[dict[str, Any]] = []
    dropped = 0
    for frame, line in traceback.walk_stack(sys._getframe()):
        module = frame.f_globals.get("__name__")
        if isinstance(module, str) and _is_bastion(module):
            continue
        if len(frames) == limit:
            dropped += 1
            continue
        code = frame.f_code
        frames.append({"file": code.co_filename, "line": line,
                       "function": getattr(code, "co_qualname", code.co_name)})
    frames.reverse()
    return {"frames": frames, "dropped_frames": dropped}


def _is_bastion(module: str) -> bool:
    """Bastion's own code; the demo application inside the package is an application."""
    return (module == "bastion" or module.startswith("bastion.")) and not module.startswith(
        "bastion.demo.")


class RequestContext:
    """Per-request state. Created by a middleware, closed by `finish()`."""

    def __init__(
        self, protection: Protection, method: str, target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]], peer: str | None,
        scheme: str = "http",
    ) -> None:
        self.protection = protection
        self.settings = protection.settings
        self.started = time.time()
        self.method = method.upper()
        self.target = target
        self.scheme = scheme
        # A mapping is taken as already merged with lower-case names (WSGI environs are).
        if type(headers) is dict:
            self.headers: dict[str, str] = headers  # the adapter's own fresh dict
        elif isinstance(headers, Mapping):
            self.headers = dict(headers)
        else:
            self.headers = header_map(headers)
        self.client_ip = resolve_client_ip(peer, self.headers, self.settings.trusted_proxies,
                                           self.settings.client_ip_header)
        self.route: str | None = None
        self.status: int | None = None
        self.user_id: str | None = None
        self.events: list[dict[str, Any]] = []
        self.blocked: BlockResponse | None = None
        ruleset = protection.ruleset
        self._ruleset = ruleset
        self._waf = ruleset.context() if ruleset is not None else None
        # A body the rules found clean before, byte for byte: (its bytes, their digest), not
        # parsed until a sink check needs its values (see `start`).
        self._deferred_body: tuple[bytes, bytes] | None = None
        # When no rule reads the response, responses are not evaluated at all.
        self._inspects_responses = ruleset is not None and not ruleset.addresses.isdisjoint(
            _RESPONSE_ADDRESSES)
        self._timeout_us = self.settings.waf_timeout_us
        self._token: Token[RequestContext | None] | None = None
        self._counted = False  # in ACTIVITY's count (see hold/release)
        self._held = False
        self._span: tracing.ServerSpan | None = None
        self._finished = False
        self.id = ""  # given when the first event is recorded

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> RequestContext:
        if not self._counted:  # hooks that stand aside between requests come back first
            ACTIVITY.enter()
            self._counted = True
        self._token = _current.set(self)
        self._span = tracing.enter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
            if not self._held:
                self.release()
        if self._span is not None:
            self._span.exit()

    def hold(self) -> None:
        """Keep the request counted as being handled (bastion.activity) after its context is
        left, until `release()`: its response body is still to be produced."""
        self._held = True

    def release(self) -> None:
        """The request is no longer being handled: nothing of it runs any more."""
        self._held = False
        if self._counted:
            self._counted = False
            ACTIVITY.leave()

    def start(self, body: bytes = b"") -> BlockResponse | None:
        """Inspect the request as it arrived: line, headers, cookies, query, body.

        A body whose bytes the rules already found clean (waf/verdicts.py: the digest of
        its bytes and content type) is not even parsed: nothing would be looked at. It joins
        the request's addresses only if a sink hook checks a call against the user's
        parameters (`_bring_body`). When a rule or exclusion reads the body whole (`exists`),
        it is parsed as any other."""
        digest = None
        ruleset = self._ruleset
        if body and ruleset is not None and len(body) <= MAX_DIGESTED_BODY:
            digest = body_digest(body, self.headers.get("content-type", ""))
            if ruleset.clean_parts.knows_digest(_BODY, digest) and (
                    _BODY not in ruleset.read_whole):
                self._deferred_body = (body, digest)
                body = b""
        try:
            addresses = addresses_of(self.method, self.target, self.headers, body,
                                     self.client_ip, digest)
        except Exception as exc:  # a parser bug must not break the request
            self.protection.report_error("request parsing", exc)
            try:  # the rest of the request is still worth inspecting
                addresses = addresses_of(self.method, self.target, self.headers, b"",
                                         self.client_ip)
            except Exception:
                return None
        return self.run(addresses)

    def run(self, addresses: Mapping[str, object]) -> BlockResponse | None:
        """Evaluate new addresses; the block response when this request must stop now."""
        if self.blocked is not None:
            return self.blocked
        if self._waf is None:
            return None
        if self._deferred_body is not None and self._ruleset is not None and (
                not self._ruleset.sink_addresses.isdisjoint(addresses)):
            self._bring_body()
        timeout_us = self._timeout_us
        if not getattr(_thread_state, "warm", False):
            # A thread's first evaluation allocates the matchers' scratch space (a few ms):
            # give it room once, so that a new server thread does not skip rules.
            _thread_state.warm = True
            timeout_us = max(timeout_us, FIRST_RUN_TIMEOUT_US)
        try:
            result = self._waf.run(addresses, timeout_us=timeout_us)
        except Exception as exc:
            self.protection.report_error("waf", exc)
            return None
        if result.timeout:
            self.protection.report_error("waf deadline", TimeoutError(
                f"rules evaluation exceeded {timeout_us} us; the rest was skipped"))
        if not result.events:
            return None
        if "generate_stack" in result.actions:
            stack = stack_frames()
            for event in result.events:
                event["stack"] = stack
        self.events.extend(result.events)
        if not self.id:
            self.id = str(uuid.uuid4())
        if self._span is not None:
            self._span.attacked(self)
        if result.blocking and self.settings.blocking:
            return self._block(result.actions)
        return None

    def quiet_sink(self, address: str, text: str) -> bool:
        """Whether a sink call bringing `text` at `address` may go on unchecked: the rules
        could not fire on it (WafContext.quiet_sink) and the request is not blocked. The
        hooks of the cheapest sinks ask this before building the call's addresses."""
        if self.blocked is not None:
            return False
        if self._deferred_body is not None:
            self._bring_body()
        waf = self._waf
        return waf is None or waf.quiet_sink(address, text)

    def quiet_call(self, addresses: Mapping[str, object]) -> bool:
        """`quiet_sink` for a hook's addresses (WafContext.quiet_call)."""
        if self.blocked is not None:
            return False
        if self._deferred_body is not None:
            self._bring_body()
        waf = self._waf
        return waf is None or waf.quiet_call(addresses)

    def _bring_body(self) -> None:
        """The body left unparsed (see `start`) joins the addresses now: a sink check looks
        for the user's parameters in the call, and the body's values are among them. The
        engine knows its digest clean, so it stores the body without looking at it again."""
        deferred, self._deferred_body = self._deferred_body, None
        if deferred is None:
            return
        body, digest = deferred
        try:
            value = parse_body(body, self.headers.get("content-type", "")).value
        except Exception as exc:  # a parser bug must not break the request
            self.protection.report_error("request parsing", exc)
            return
        self.run({_BODY: value, _BODY_DIGEST: digest})

    def block_with(self, error: BlockedRequest) -> BlockResponse:
        """The response for a `BlockedRequest` raised by the application or a sink hook."""
        if self.blocked is not None:
            return self.blocked
        if not self.id:
            self.id = str(uuid.uuid4())
        return self._block(error.action)

    def _block(self, actions: Mapping[str, Mapping[str, Any]]) -> BlockResponse:
        self.blocked = render(actions, self.headers.get("accept", ""),
                              self.protection.templates, self.id)
        if self._span is not None:
            self._span.attacked(self)
        return self.blocked

    def routed(self, route: str | None, params: Mapping[Any, Any] | None) -> BlockResponse | None:
        """After routing: the route, and the path params as text, join the request."""
        self.route = route
        if not params:
            return None
        try:
            texts = {str(key): str(value) for key, value in params.items()}
        except Exception as exc:  # a converter's odd value must not break the request
            self.protection.report_error("path params", exc)
            return None
        return self.run({"server.request.path_params": texts})

    def response(self, status: int, headers: Iterable[tuple[str, str]]) -> BlockResponse | None:
        """Inspect the response status and headers before they are sent."""
        self.status = status
        if not self._inspects_responses:
            return self.blocked
        response_headers = header_map(headers)
        response_headers.pop("set-cookie", None)
        return self.run({"server.response.status": str(status),
                         "server.response.headers.no_cookies": response_headers})

    def set_user(self, user_id: str) -> None:
        """Record the authenticated user; raises BlockedRequest when the user is denied."""
        self.user_id = user_id
        blocked = self.run({"usr.id": user_id})
        if blocked is not None:
            raise BlockedRequest()

    def finish(self) -> None:
        """Report the request's event, if it has one. Idempotent; never raises."""
        if self._finished:
            return
        self._finished = True
        if self._span is not None:
            self._span.finish(self)
        if not self.events and self.blocked is None:
            return
        try:
            self.protection.event_log.submit(self.event())
        except Exception as exc:
            self.protection.report_error("event reporting", exc)

    # ------------------------------------------------------------ the event

    def url(self) -> str:
        host = self.headers.get("host", "")
        return f"{self.scheme}://{host}{self.target}" if host else self.target

    def event(self) -> dict[str, Any]:
        """The security event of this request, not yet obfuscated (the reporter does it)."""
        event: dict[str, Any] = {
            "id": self.id or str(uuid.uuid4()),
            "timestamp": datetime.fromtimestamp(self.started, timezone.utc)
            .isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "type": "bastion.security.event",
            "mode": self.settings.mode,
            "blocked": self.blocked is not None,
            "http": {
                "method": self.method,
                "url": self.url(),
                "route": self.route,
                "status": self.blocked.status if self.blocked is not None else self.status,
                "client_ip": self.client_ip,
                "user_agent": self.headers.get("user-agent"),
                "headers": {k: self.headers[k] for k in EVENT_HEADERS if k in self.headers},
            },
            "triggers": self.events,
        }
        if self.user_id is not None:
            event["user"] = {"id": self.user_id}
        return event
