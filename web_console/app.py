"""The web application: ``create_app(settings, bus)``.

The app does not start the event bus or the telephony engine; the runner does both and serves
this app with uvicorn. What the routes need is on ``app.state``: ``settings``, ``bus``,
``templates``, ``login_throttle``, ``revocations``, ``seat_calls`` (the residents popped on each
console, ``resident_access``) and ``ws_recheck_interval``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter.accounts.service import DbLoginThrottle, RedisLoginThrottle, ThrottleLimits
from callcenter.bus import EventBus
from callcenter.config import Settings
from callcenter.directory.imports import ImportJobs, RedisImportJobs
from dispatch.sms_replies import handle_reply
from sms.views import router as sms_router
from web_console import (
    admin,
    api_schema,
    basic_data,
    callcontrol,
    config_admin,
    ivr_admin,
    knowledge,
    messages,
    open311,
    orders_api,
    orders_pages,
    outlet_pages,
    pages,
    reports,
    resident_query,
    residents,
    sockets,
    softphone,
)
from web_console.access import nav_links
from web_console.limits import RequestGate
from web_console.render import install_exception_handlers
from web_console.resident_access import RedisSeatCalls, SeatCalls
from web_console.sessions import SESSION_MAX_AGE, RedisSessionRevocations, SessionRevocations

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

SESSION_COOKIE = "cc_session"

# Everything the pages load comes from this origin; no inline scripts, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds the browser hardening headers to every HTTP response."""

    def __init__(self, app: ASGIApp, production: bool) -> None:
        self.app = app
        self.production = production
        self.headers = [
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
        ]
        self.hsts = [(b"strict-transport-security", b"max-age=31536000")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # HSTS only over TLS: https here, or X-Forwarded-Proto https from a trusted proxy (uvicorn
        # rewrites the scheme for the addresses in settings.trusted_proxies).
        headers = (
            self.headers + self.hsts if self.production and scope.get("scheme") == "https" else self.headers
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in headers if k not in present]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _static_versions() -> dict[str, str]:
    versions = {}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            rel = path.relative_to(STATIC_DIR).as_posix()
            versions[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return versions


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
    )
    versions = _static_versions()

    def static_url(name: str) -> str:
        v = versions.get(name)
        return f"/static/{name}?v={v}" if v else f"/static/{name}"

    def static_sri(name: str) -> str:
        """The committed Subresource Integrity hash of a vendored file (``<name>.sri``)."""
        return (STATIC_DIR / f"{name}.sri").read_text().strip()

    env.globals["static_url"] = static_url
    env.globals["static_sri"] = static_sri
    env.globals["nav_links"] = nav_links
    return Jinja2Templates(env=env)


# Every router of the web console, in one place. Order matters only where two paths could match
# the same request; none do today.
ROUTERS = (
    pages.public,
    pages.router,
    sockets.router,
    softphone.router,
    softphone.relay,
    admin.router,
    api_schema.router,  # the JSON API's OpenAPI description (supervisors)
    basic_data.router,
    callcontrol.router,
    config_admin.router,
    ivr_admin.router,
    knowledge.router,
    messages.router,
    orders_api.router,
    orders_pages.router,
    outlet_pages.router,
    outlet_pages.public,
    resident_query.public,  # the resident's page: order number and query code, no login
    residents.router,
    reports.router,
    reports.api,  # a supervisor's session or the display platform's token
    open311.router,
    sms_router,  # SMS provider webhooks
)


def create_app(settings: Settings, bus: EventBus) -> FastAPI:
    if not settings.session_secret:
        settings.load_secrets()
    app = FastAPI(
        title="Anning community hotline console",
        # No public documentation: supervisors read the JSON API's description (api_schema.py).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.bus = bus
    app.state.templates = make_templates()
    if settings.redis_url:  # several web workers: one throttle, logout list and import list for all
        app.state.login_throttle = RedisLoginThrottle(settings.redis_url, ThrottleLimits.of(settings))
        app.state.revocations = RedisSessionRevocations(settings.redis_url)
        app.state.import_jobs = RedisImportJobs(settings.redis_url)
        app.state.seat_calls = RedisSeatCalls(settings.redis_url)
    else:
        app.state.login_throttle = DbLoginThrottle(settings)
        app.state.revocations = SessionRevocations()
        app.state.import_jobs = ImportJobs()
        app.state.seat_calls = SeatCalls()
    # A logged-out or disabled seat stops receiving pops within this time (one read for all the
    # open sockets each time).
    app.state.ws_recheck_interval = 5.0
    app.state.session_recheck = sockets.SessionRecheck(app.state)

    install_exception_handlers(app)
    # Outlets' SMS replies reach the order domain through the webhook (sms does not import dispatch).
    app.state.sms_reply_handler = handle_reply
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    # Inside the session middleware (it reads the session), outside everything that reads a body.
    app.add_middleware(RequestGate)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="strict",
        https_only=settings.production,
    )
    app.add_middleware(SecurityHeaders, production=settings.production)
    return app
