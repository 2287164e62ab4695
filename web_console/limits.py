"""The gate in front of every HTTP route: who may ask, and how much they may send.

``RequestGate`` is an ASGI middleware that runs before FastAPI reads anything of a request:

1. It finds the route the request is for and runs the route's own access checks (``ACCESS_CHECKS``
   among its dependencies: the session and role check ``authorize``, or the statistics API's
   token-or-session check) here, so a stranger's body is never read at all (FastAPI parses
   bodies before it solves dependencies). The route runs them again; they are cheap.
2. It counts the body's bytes as the route reads them, whether the client declared a
   ``Content-Length`` or streams a chunked body, and stops at the route's limit with 413. A
   declared length above the limit is refused before the route runs.
3. It refuses text with a NUL character (400): in the path, the query string, or a form or JSON
   body (as ``%00`` or ``\u0000``), looked for as the body streams in. No person types one, and
   PostgreSQL cannot keep it. The SMS webhooks are the providers' text: cleaned where stored.

A refusal sent while the client is still sending its body lingers before it ends, as nginx's
lingering close does: what the client sends meanwhile is read and dropped until it pauses
(``LINGER_IDLE_S``, at most ``LINGER_S``). Closed with unread bytes, the connection would be reset
and the client (a browser uploading a file too large) could lose the clear answer.

Every route gets ``DEFAULT_BODY_LIMIT``; ``BODY_LIMITS`` names the routes that take more (imports
and uploads) or less (the SMS webhooks), in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter.directory import imports
from callcenter.text import digits_int
from dispatch import attachments
from sms import views as sms_views
from web_console.deps import (
    Forbidden,
    NotAuthenticated,
    NulInRequest,
    PasswordChangeRequired,
    RequestTooLarge,
    authorize,
)
from web_console.render import (
    nul_response,
    refusal_response,
    too_large_response,
    unavailable_part,
    unavailable_response,
)
from web_console.reports import api_client

MIB = 1024 * 1024

# The dependencies that decide who may use a route (they raise the refusals below).
ACCESS_CHECKS: frozenset[Callable[[Request], object]] = frozenset({authorize, api_client})

# What a form, a JSON document or an attachment of up to 5 MiB needs, with room for multipart.
DEFAULT_BODY_LIMIT = 6 * MIB

# Routes whose limit differs from the default: route path (as declared) → bytes.
BODY_LIMITS: dict[str, int] = {
    # Uploads
    "/admin/import": imports.MAX_BYTES + 5 * MIB,  # a spreadsheet of up to 50 MiB
    "/admin/ivr/options/{option_id}/upload": 12 * MIB,  # a WAV prompt (settings.prompt_upload_max_bytes)
    "/orders/{order_id}/attachments": attachments.MAX_BYTES + MIB,
    "/outlet/orders/{order_id}": attachments.MAX_BYTES + MIB,  # the outlet's photo
    "/o/{token}": attachments.MAX_BYTES + MIB,
    # Provider webhooks: Twilio posts a small form; Aliyun a JSON list of up to 100 replies
    sms_views.INBOUND: 16 * 1024,
    sms_views.STATUS: 16 * 1024,
    sms_views.ALIYUN_INBOUND: sms_views.MAX_PUSH_BYTES,
}


# How a NUL character looks in a text body, by content type (other bodies are files).
NUL_IN_BODY: dict[bytes, bytes] = {
    b"application/x-www-form-urlencoded": b"%00",
    b"application/json": b"\\u0000",
}
# Routes whose text is a provider's (SMS replies and receipts): cleaned where stored, never refused
PROVIDER_TEXT = frozenset({sms_views.INBOUND, sms_views.STATUS, sms_views.ALIYUN_INBOUND})


def body_limit(path: str | None) -> int:
    return BODY_LIMITS.get(path or "", DEFAULT_BODY_LIMIT)


def declared_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every declared route, through included routers (FastAPI keeps them as wrappers; the web
    console includes its routers without a prefix, so each route matches the full path)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from declared_routes(inner.routes)
        else:
            yield route


def _route_of(scope: Scope, routes: list[BaseRoute]) -> tuple[BaseRoute | None, str | None]:
    """The route a request is for (a full match, else a path-only match) and its declared path."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route, getattr(route, "path", None)
        if match is Match.PARTIAL and partial is None:
            partial = route
    return None, getattr(partial, "path", None)


class RequestGate:
    """The access check and the body limit, before the route reads the body (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: list[BaseRoute] | None = None
        self.checks: dict[int, list[Callable[[Request], object]]] = {}

    def checks_of(self, route: BaseRoute | None) -> list[Callable[[Request], object]]:
        """The access checks among the route's dependencies (remembered per route)."""
        if route is None:
            return []
        key = id(route)
        if key not in self.checks:
            dependant = getattr(route, "dependant", None)
            calls = [d.call for d in getattr(dependant, "dependencies", [])]
            self.checks[key] = list(dict.fromkeys(c for c in calls if c in ACCESS_CHECKS))
        return self.checks[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.routes is None:  # the app's routes are complete by its first request
            self.routes = list(declared_routes(scope["app"].router.routes))
        route, path = _route_of(scope, self.routes)
        limit = body_limit(path)
        body = _BodyState(receive, _has_body(scope))
        send = body.lingering(send)
        request = Request(scope, receive)
        checks = self.checks_of(route)
        if checks:
            try:
                for check in checks:
                    await run_in_threadpool(check, Request({**scope, "route": route}))
            except Exception as exc:
                if isinstance(exc, NotAuthenticated | Forbidden | PasswordChangeRequired):
                    refusal = refusal_response(request, exc)
                else:  # the session's account or its revocation could not be read
                    part = unavailable_part(exc)
                    if part is None:
                        raise
                    refusal = unavailable_response(request, exc, part)
                if _has_body(scope):  # left unread: the connection cannot carry another request
                    refusal.headers["Connection"] = "close"
                await refusal(scope, receive, send)
                return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await nul_response(request)(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await too_large_response(request, limit)(scope, receive, send)
            return

        received = 0
        started = False
        marker = None if path in PROVIDER_TEXT else NUL_IN_BODY.get(_content_type(scope))
        tail = b""  # the end of the previous chunk: a marker may span two

        async def counting_receive() -> Message:
            nonlocal received, tail
            message = await body.receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise RequestTooLarge(limit)
                if marker is not None:
                    text = tail + chunk
                    if marker in text or b"\x00" in text:
                        raise NulInRequest()
                    tail = text[-(len(marker) - 1) :]
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except RequestTooLarge:
            # Read outside FastAPI's handlers (a streaming route): answer here if still possible.
            if started:
                raise
            await too_large_response(request, limit)(scope, receive, send)
        except NulInRequest:
            if started:
                raise
            await nul_response(request)(scope, receive, send)


LINGER_S = 2.0  # the longest a refusal waits for the client to stop sending
LINGER_IDLE_S = 0.3  # a pause this long means the client has stopped


class _BodyState:
    """Whether the request's body has been read to its end, and a ``send`` that lingers (see the
    module) when the response ends before it has."""

    def __init__(self, receive: Receive, has_body: bool) -> None:
        self._receive = receive
        self.done = not has_body

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message

    def lingering(self, send: Send) -> Send:
        async def lingering_send(message: Message) -> None:
            if self.done or message["type"] != "http.response.body" or message.get("more_body", False):
                await send(message)
                return
            await send({**message, "more_body": True})  # the answer is on the wire now
            await self.drain()
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        return lingering_send

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + LINGER_S
        while not self.done and (left := end - loop.time()) > 0:
            try:
                await asyncio.wait_for(self.receive(), min(left, LINGER_IDLE_S))
            except TimeoutError:
                return


def _content_type(scope: Scope) -> bytes:
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            return value.split(b";", 1)[0].strip().lower()
    return b""


def _has_body(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key == b"transfer-encoding" or (key == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return digits_int(text)
    return None
