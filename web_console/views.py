"""Routes of the seat console: login, logout, the console page and its WebSocket.

Access control lives in one table, ``ROUTE_ROLES`` (route path → roles allowed). Every route of
``protected`` is checked against it by a router-level dependency, and a protected route missing
from the table is refused (fail closed). ``PUBLIC_ROUTES`` lists the only routes without a
session. Later pages extend both by adding their routes to ``protected`` and a line to the table.

Sessions are Starlette's signed cookie (see app.py). What the cookie holds is readable by its
holder, so it carries only ids and tokens: ``uid`` (account id), ``sid`` (random id of this login,
revoked on logout), ``iat`` (login time; a session lives one shift at most), ``pwfp`` (an HMAC of
the password hash: changing the password ends every session), ``csrf`` and ``lang``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from callcenter import ids
from callcenter.accounts.models import Account, Role
from callcenter.accounts.service import authenticate, hash_password, verify_password
from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.seats.service import COMMAND_TOPIC
from web_console.i18n import DEFAULT_LANG, LOCALE_TAGS, js_catalogue, normalize_lang, translator

log = logging.getLogger(__name__)

SESSION_MAX_AGE = 12 * 3600  # one shift

ALL_ROLES: frozenset[str] = frozenset(r.value for r in Role)
STAFF: frozenset[str] = frozenset({Role.ADMIN.value, Role.SUPERVISOR.value, Role.SEAT.value})
SUPERVISORS: frozenset[str] = frozenset({Role.ADMIN.value, Role.SUPERVISOR.value})
ADMINS: frozenset[str] = frozenset({Role.ADMIN.value})

# The access table: route path (as declared) → roles that may use it.
ROUTE_ROLES: dict[str, frozenset[str]] = {
    "/": STAFF,  # a role with a home page (the outlet page comes with dispatch)
    "/logout": ALL_ROLES,
    "/api/me": ALL_ROLES,
    "/console": STAFF,
    "/ws/console": STAFF,
    "/api/seat/pause": STAFF,
    "/wallboard": SUPERVISORS,
    "/ws/wallboard": SUPERVISORS,
    "/admin/accounts": ADMINS,
    "/admin/accounts/{account_id}/active": ADMINS,
    "/admin/accounts/{account_id}/password": ADMINS,
    "/admin/accounts/{account_id}/queues": ADMINS,
    "/admin/audit": ADMINS,
    "/password": ALL_ROLES,
    "/api/residents": STAFF,
    "/api/residents/{resident_id}/phones": STAFF,
    "/api/communities": STAFF,
    "/api/my/calls": STAFF,
    "/api/residents/{resident_id}/identity": STAFF,
    "/reports": SUPERVISORS,
    "/reports/export": SUPERVISORS,
    "/reports/daily": SUPERVISORS,
    "/reports/scorecard": SUPERVISORS,
    "/reports/orders": SUPERVISORS,
    "/api/stats/report": SUPERVISORS,  # or the display platform's token (stats_api_token)
    "/api/stats/today": SUPERVISORS,
    "/api/stats/orders": SUPERVISORS,
    "/api/stats/scorecard": SUPERVISORS,
    # Voice menu and hours (admins); out-of-hours items (seats)
    "/admin/ivr": ADMINS,
    "/admin/ivr/options": ADMINS,
    "/admin/ivr/options/{option_id}/delete": ADMINS,
    "/admin/ivr/options/{option_id}/upload": ADMINS,
    "/admin/ivr/hours": ADMINS,
    "/api/caller-requests": STAFF,
    "/api/caller-requests/{request_id}/done": STAFF,
    "/api/caller-requests/{request_id}/recording": STAFF,
    # Call control, queue login, listen-in, recordings, callbacks
    "/api/call/hangup": STAFF,
    "/api/call/transfer": STAFF,
    "/api/call/dial": STAFF,
    "/api/seat/queues": STAFF,
    "/api/spy": SUPERVISORS,
    "/api/recordings/{linkedid}": STAFF,
    "/api/callbacks": STAFF,
    "/api/followups": SUPERVISORS,
}
# What an account with a temporary password may still do.
PASSWORD_CHANGE_ROUTES: frozenset[str] = frozenset({"/password", "/logout", "/api/me"})
# Routes anyone may use (static files are a mount of their own and need no session either).
PUBLIC_ROUTES: frozenset[str] = frozenset({"/login", "/healthz"})

# Provider webhooks (authenticated by their signature), Open311 (api_key for
# POST, as GeoReport v2 says), basic-data administration ---
PUBLIC_ROUTES |= frozenset(
    {
        "/sms/twilio/inbound",
        "/sms/twilio/status",
        "/sms/aliyun/inbound",
        "/open311/v2/discovery.{fmt}",
        "/open311/v2/services.{fmt}",
        "/open311/v2/services/{service_code}.{fmt}",
        "/open311/v2/requests.{fmt}",
        "/open311/v2/requests/{request_id}.{fmt}",
        "/open311/v2/tokens/{token}.{fmt}",
    }
)
ROUTE_ROLES.update(
    {
        "/admin/basic": ADMINS,
        "/admin/basic/{kind}": ADMINS,
        "/admin/basic/{kind}/save": ADMINS,
        "/admin/basic/{kind}/export": ADMINS,
        "/admin/basic/{kind}/{item_id}/delete": ADMINS,
        "/admin/import": ADMINS,
        "/admin/import/{job_id}": ADMINS,
        "/api/basic/{kind}": SUPERVISORS,
        "/api/import/{job_id}": ADMINS,
        "/admin/messages": SUPERVISORS,
    }
)

# Where "/" and a successful login lead, by role. A role without a page gets the 403 page.
HOME_BY_ROLE: dict[str, str] = {
    Role.SEAT.value: "/console",
    Role.SUPERVISOR.value: "/wallboard",
    Role.ADMIN.value: "/wallboard",
}

# Work orders, attachments and the outlet's page; signed outlet links are public
# (the token names one order and one outlet) ---
OUTLET_ONLY: frozenset[str] = frozenset({Role.OUTLET.value})
ROUTE_ROLES.update(
    {
        "/": ALL_ROLES,  # outlet users have a home page: their orders
        "/orders": STAFF,
        "/orders/{order_id}": STAFF,
        "/orders/{order_id}/action": STAFF,
        "/orders/{order_id}/attachments": ALL_ROLES,  # outlets: their own orders only
        "/orders/{order_id}/attachments/{attachment_id}": ALL_ROLES,
        "/api/orders": STAFF,
        "/api/orders/{order_id}/calls": STAFF,
        "/residents/{resident_id}": STAFF,
        "/residents/{resident_id}/household": STAFF,
        "/residents/{resident_id}/elderly": STAFF,
        "/api/orders/suggest": STAFF,
        "/api/dispatch/options": STAFF,
        "/outlet": OUTLET_ONLY,
        "/outlet/orders/{order_id}": OUTLET_ONLY,
    }
)
PUBLIC_ROUTES |= frozenset({"/o/{token}"})
HOME_BY_ROLE[Role.OUTLET.value] = "/outlet"

# WebSocket close codes (4000-4999 are the application's).
WS_UNAUTHENTICATED = 4401
WS_FORBIDDEN = 4403
WS_NO_EXTENSION = 4404
WS_EXTENSION_CHANGED = 4409  # the page reloads to pick up the account's new extension

# An extension becomes part of a bus topic: no wildcards or dots.


class NotAuthenticated(Exception):
    """No valid session: pages redirect to /login, APIs answer 401 JSON."""


class Forbidden(Exception):
    """A session whose role may not use this route."""


class PasswordChangeRequired(Exception):
    """A temporary password (issued by an administrator, or a demo account in production)."""


class SessionRevocations:
    """Session ids ended by logout, kept until they would have expired anyway (per process)."""

    def __init__(self) -> None:
        self._ids: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, sid: str, until: float) -> None:
        now = time.time()
        with self._lock:
            for k in [k for k, exp in self._ids.items() if exp < now]:
                del self._ids[k]
            self._ids[sid] = until

    def __contains__(self, sid: str) -> bool:
        with self._lock:
            exp = self._ids.get(sid)
        return exp is not None and exp >= time.time()


class RedisSessionRevocations:
    """Logouts shared by every web worker: a key per ended session, expiring with it."""

    PREFIX = "cc:revoked:"

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2)

    def revoke(self, sid: str, until: float) -> None:
        ttl = math.ceil(until - time.time())
        if ttl > 0:
            self.redis.set(self.PREFIX + sid, b"1", ex=ttl)

    def __contains__(self, sid: str) -> bool:
        return bool(self.redis.exists(self.PREFIX + sid))


# --- sessions and accounts ---------------------------------------------------------------


def _now() -> float:
    """The wall clock, for session ages (a seam for tests)."""
    return time.time()


def password_fingerprint(settings: Settings, password_hash: str) -> str:
    key = hashlib.sha256(("pwfp:" + settings.session_secret).encode()).digest()
    return hmac.new(key, password_hash.encode(), hashlib.sha256).hexdigest()[:24]


def csrf_token(session: dict[str, Any]) -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: dict[str, Any], submitted: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and submitted) and hmac.compare_digest(str(expected), str(submitted))


def resolve_account(state: Any, session: dict[str, Any]) -> Account | None:
    """The account a session belongs to, if the session is still valid. Blocking (database)."""
    uid, sid, iat = session.get("uid"), session.get("sid"), session.get("iat")
    if not isinstance(uid, int) or not isinstance(sid, str) or not isinstance(iat, int | float):
        return None
    now = _now()
    if now - iat > SESSION_MAX_AGE or iat > now + 60:
        return None
    if sid in state.revocations:
        return None
    settings: Settings = state.settings
    with session_scope(settings) as db:
        account = db.get(Account, uid)
    if account is None or not account.active:
        return None
    expected = password_fingerprint(settings, account.password_hash)
    if not hmac.compare_digest(str(session.get("pwfp", "")), expected):
        return None
    return account


def start_session(request: Request, account: Account) -> None:
    """A fresh session for a login (nothing from before it survives except the language)."""
    session = request.session
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session.update(
        uid=account.id,
        sid=secrets.token_urlsafe(16),
        iat=int(_now()),
        pwfp=password_fingerprint(request.app.state.settings, account.password_hash),
        csrf=secrets.token_urlsafe(32),
    )


def end_session(request: Request) -> None:
    session = request.session
    sid, iat = session.get("sid"), session.get("iat")
    if isinstance(sid, str) and isinstance(iat, int | float):
        request.app.state.revocations.revoke(sid, iat + SESSION_MAX_AGE)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def current_account(request: Request) -> Account:
    account = resolve_account(request.app.state, request.session)
    if account is None:
        raise NotAuthenticated()
    return account


def authorize(request: Request) -> Account:
    """Router-level check of ``protected``: a valid session whose role the table allows."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    account = current_account(request)
    allowed = ROUTE_ROLES.get(path) if path else None
    if allowed is None:
        log.error("route %s is not in ROUTE_ROLES; refusing", path)
        raise Forbidden()
    if account.role not in allowed:
        raise Forbidden()
    if account.must_change_password and path not in PASSWORD_CHANGE_ROUTES:
        raise PasswordChangeRequired()
    request.state.account = account
    return account


def is_api(path: str) -> bool:
    return path.startswith("/api/")


# --- rendering -----------------------------------------------------------------------------


def current_lang(request: Request) -> str:
    """The page language: ``?lang=`` (remembered in the session), the session, else zh."""
    asked = normalize_lang(request.query_params.get("lang"))
    if asked:
        if request.session.get("lang") != asked:
            request.session["lang"] = asked
        return asked
    return normalize_lang(request.session.get("lang")) or DEFAULT_LANG


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    lang = current_lang(request)
    context.update(
        t=translator(lang),
        lang=lang,
        locale=LOCALE_TAGS[lang],
        csrf=csrf_token(request.session),
    )
    return request.app.state.templates.TemplateResponse(
        request, name, context, status_code=status_code, headers={"Cache-Control": "no-store"}
    )


def forbidden_response(request: Request) -> Response:
    if is_api(request.url.path):
        return JSONResponse({"detail": "forbidden"}, status_code=403)
    return render(request, "error.html", status_code=403)


def unauthenticated_response(request: Request) -> Response:
    if is_api(request.url.path):
        return JSONResponse({"detail": "not authenticated"}, status_code=401)
    return RedirectResponse("/login", status_code=303)


def install_exception_handlers(app) -> None:
    async def on_unauthenticated(request: Request, exc: NotAuthenticated) -> Response:
        return unauthenticated_response(request)

    async def on_forbidden(request: Request, exc: Forbidden) -> Response:
        return forbidden_response(request)

    async def on_password_change(request: Request, exc: PasswordChangeRequired) -> Response:
        if is_api(request.url.path):
            return JSONResponse({"detail": "password change required"}, status_code=403)
        return RedirectResponse("/password", status_code=303)

    app.add_exception_handler(PasswordChangeRequired, on_password_change)
    app.add_exception_handler(NotAuthenticated, on_unauthenticated)
    app.add_exception_handler(Forbidden, on_forbidden)


def render_login(
    request: Request, status_code: int = 200, error: tuple[str, dict] | None = None, username: str = ""
) -> Response:
    flash = request.session.pop("flash", None) if status_code == 200 else None
    return render(request, "login.html", status_code, message=flash, error=error, username=username)


# --- public routes -------------------------------------------------------------------------

public = APIRouter()


@public.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    db_ok = True
    try:
        with session_scope(request.app.state.settings) as db:
            db.exec(text("SELECT 1"))
    except Exception:
        log.exception("health check: database unavailable")
        db_ok = False
    body: dict = {"status": "ok" if db_ok else "degraded", "database": "ok" if db_ok else "error"}
    engine = getattr(request.app.state, "engine", None)
    if engine is not None:  # the engine runs in this process
        body["engine"] = {"ami": engine.ami.logged_in.is_set(), "calls": len(engine.calls.model.calls)}
    return JSONResponse(
        body,
        status_code=200 if db_ok else 503,
        headers={"Cache-Control": "no-store"},
    )


@public.get("/login")
def login_form(request: Request) -> Response:
    account = resolve_account(request.app.state, request.session)
    if account is not None and account.role in HOME_BY_ROLE:
        return RedirectResponse(HOME_BY_ROLE[account.role], status_code=303)
    return render_login(request)


@public.post("/login")
def login_submit(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    username = username.strip()[:64]
    if not csrf_ok(request.session, csrf):
        request.session["csrf"] = secrets.token_urlsafe(32)
        return render_login(request, 403, error=("login.csrf", {}), username=username)
    if not username or not password:
        return render_login(request, 400, error=("login.missing", {}), username=username)
    ip = request.client.host if request.client else ""
    throttle = request.app.state.login_throttle
    decision = throttle.check(username, ip)
    if not decision.allowed:
        log.warning("login throttled for %r from %s", username, ip)
        return render_login(
            request,
            429,
            error=("login.throttled", {"minutes": decision.retry_after_minutes}),
            username=username,
        )
    with session_scope(request.app.state.settings) as db:
        account = authenticate(db, username, password)
        if account is not None:
            audit(db, account.username, "login", role=account.role, ip=ip)
            db.commit()
    if account is None:
        throttle.record_failure(username, ip)
        log.info("login failed for %r from %s", username, ip)
        return render_login(request, 401, error=("login.failed", {}), username=username)
    throttle.record_success(username, ip)
    start_session(request, account)
    log.info("login: %s (%s) from %s", account.username, account.role, ip)
    if account.must_change_password:
        return RedirectResponse("/password", status_code=303)
    return RedirectResponse(HOME_BY_ROLE.get(account.role, "/"), status_code=303)


# --- protected routes ----------------------------------------------------------------------

protected = APIRouter(dependencies=[Depends(authorize)])


@protected.get("/")
def home(request: Request, account: Account = Depends(authorize)) -> Response:
    target = HOME_BY_ROLE.get(account.role)
    if target is None:
        return render(request, "error.html", status_code=403)
    return RedirectResponse(target, status_code=303)


@protected.post("/logout")
def logout(request: Request, csrf: str = Form(""), account: Account = Depends(authorize)) -> Response:
    if not csrf_ok(request.session, csrf):
        return forbidden_response(request)
    end_session(request)
    request.session["flash"] = "login.logged_out"
    log.info("logout: %s", account.username)
    return RedirectResponse("/login", status_code=303)


@protected.get("/api/me")
def api_me(account: Account = Depends(authorize)) -> JSONResponse:
    return JSONResponse(
        {
            "username": account.username,
            "display_name": account.display_name,
            "role": account.role,
            "extension": account.extension,
        },
        headers={"Cache-Control": "no-store"},
    )


class PauseRequest(BaseModel):
    paused: bool
    reason: str = Field(default="", max_length=32)


@protected.post("/api/seat/pause")
async def seat_pause(request: Request, body: PauseRequest, account: Account = Depends(authorize)) -> Response:
    """Pause or resume the seat's own phone in its queues; the engine asks Asterisk, and the new
    state comes back to every console and wallboard from Asterisk's own event."""
    if not csrf_ok(request.session, request.headers.get("x-csrf-token")):
        return JSONResponse({"error": "csrf"}, status_code=403)
    ext = account.extension
    if not ext or not ids.EXTENSION.match(ext):
        return JSONResponse({"error": "no extension"}, status_code=409)
    reasons = request.app.state.settings.pause_reasons
    if body.paused and body.reason not in reasons:
        return JSONResponse({"error": "unknown pause reason", "reasons": reasons}, status_code=422)
    command = {"action": "pause" if body.paused else "unpause", "ext": ext, "reason": body.reason}
    await request.app.state.bus.publish(COMMAND_TOPIC, command)
    log.info("seat %s: %s %s", ext, command["action"], body.reason)
    return JSONResponse({"accepted": True}, status_code=202)


@protected.get("/wallboard")
def wallboard(request: Request, account: Account = Depends(authorize)) -> Response:
    return render(request, "wallboard.html", account=account, js_strings=js_catalogue(current_lang(request)))


# --- own password ----------------------------------------------------------------------------

MIN_PASSWORD_LEN = 10


@protected.get("/password")
def password_form(request: Request, account: Account = Depends(authorize)) -> Response:
    return render(request, "password.html", account=account, error=None)


@protected.post("/password")
def password_change(
    request: Request,
    account: Account = Depends(authorize),
    csrf: str = Form(""),
    current: str = Form("", max_length=1024),
    new: str = Form("", max_length=1024),
    confirm: str = Form("", max_length=1024),
) -> Response:
    if not csrf_ok(request.session, csrf):
        return forbidden_response(request)
    error = None
    if not verify_password(account.password_hash, current):
        error = "password.wrong_current"
    elif len(new) < MIN_PASSWORD_LEN:
        error = "password.too_short"
    elif new != confirm:
        error = "password.mismatch"
    elif new == current or new.lower() == account.username.lower():
        error = "password.too_easy"
    if error:
        return render(request, "password.html", status_code=422, account=account, error=error)
    with session_scope(request.app.state.settings) as db:
        fresh = db.get(Account, account.id)
        fresh.password_hash = hash_password(new)
        fresh.must_change_password = False
        db.add(fresh)
        ip = request.client.host if request.client else ""
        audit(db, fresh.username, "account.password_change", target=fresh.username, role=fresh.role, ip=ip)
        db.commit()
    start_session(request, fresh)  # other sessions of the old password end; this one goes on
    return RedirectResponse(HOME_BY_ROLE.get(fresh.role, "/api/me"), status_code=303)


@protected.get("/console")
def console(request: Request, account: Account = Depends(authorize)) -> Response:
    lang = current_lang(request)
    ext = account.extension if account.extension and ids.EXTENSION.match(account.extension) else None
    return render(
        request,
        "console.html",
        account=account,
        extension=ext,
        pause_reasons=request.app.state.settings.pause_reasons,
        js_strings=js_catalogue(lang),
    )


# --- the console WebSocket -----------------------------------------------------------------

sockets = APIRouter()


def _origin_ok(websocket: WebSocket) -> bool:
    """Refuse cross-site WebSockets: a browser's Origin must name this host."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser; the session cookie is still required
    host = websocket.headers.get("host", "")
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.lower()


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason)


def _console_topic(account: Account) -> tuple[str, str, dict[str, Any]] | None:
    """A seat's console: its own extension's topic, from the account record only."""
    ext = account.extension
    if not ext or not ids.EXTENSION.match(ext):
        return None
    return f"seat.{ext}", "console", {"ext": ext}


def _wallboard_topic(account: Account) -> tuple[str, str, dict[str, Any]]:
    return "wallboard", "wallboard", {}


@sockets.websocket("/ws/console")
async def console_ws(websocket: WebSocket) -> None:
    """Pops for the logged-in account's own extension, and nothing else (see ``serve_topic``)."""
    await serve_topic(websocket, "/ws/console", _console_topic)


@sockets.websocket("/ws/wallboard")
async def wallboard_ws(websocket: WebSocket) -> None:
    """The live wallboard: queue and seat snapshots, for supervisors and administrators."""
    await serve_topic(websocket, "/ws/wallboard", _wallboard_topic)


async def serve_topic(websocket: WebSocket, route: str, topic_for) -> None:
    """Forward one bus topic, chosen from the account record, to an authorised socket.

    Accepts first so that a refusal can carry an application close code: 4401 without a valid
    session, 4403 for a role the table does not allow (or a foreign Origin), 4404 when the
    account has no topic (a console without an extension). An open socket is re-checked every
    ``ws_recheck_interval`` seconds: logout, a disabled account or a changed password close it
    4401, a lost role 4403, a changed topic 4409 (the page reloads). Whatever the client sends
    is ignored apart from the keepalive ``ping`` (answered ``{"topic": "<kind>.pong"}``). Once
    subscribed, the socket says ``{"topic": "<kind>.ready", ...}`` and the engine is asked
    (``<kind>.hello``) to send the current state; after that it carries only the topic's
    messages, as ``{"topic": ..., **payload}``.
    """
    await websocket.accept()
    state = websocket.app.state
    if not _origin_ok(websocket):
        await _close(websocket, WS_FORBIDDEN, "cross-origin request refused")
        return
    session = dict(websocket.scope.get("session") or {})
    account = await run_in_threadpool(resolve_account, state, session)
    if account is None:
        await _close(websocket, WS_UNAUTHENTICATED, "not logged in")
        return
    if account.role not in ROUTE_ROLES[route]:
        await _close(websocket, WS_FORBIDDEN, f"role may not use the {route.rsplit('/', 1)[-1]}")
        return
    if account.must_change_password:
        await _close(websocket, WS_FORBIDDEN, "password change required")
        return
    chosen = topic_for(account)
    if chosen is None:
        await _close(websocket, WS_NO_EXTENSION, "account has no extension")
        return
    topic, kind, hello = chosen

    bus = state.bus
    send_lock = asyncio.Lock()

    async def send(message: dict[str, Any]) -> None:
        data = json.dumps(message, ensure_ascii=False, default=str)
        async with send_lock:
            await websocket.send_text(data)

    async def forward() -> None:
        async for msg_topic, payload in sub:
            body = {k: v for k, v in payload.items() if k != "topic"}
            await send({"topic": msg_topic, **body})

    async def listen() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "ping":
                await send({"topic": f"{kind}.pong"})

    async def recheck() -> int | None:
        """Ends the socket when the session stops being valid (logout, disabled, role change)."""
        while True:
            await asyncio.sleep(state.ws_recheck_interval)
            current = await run_in_threadpool(resolve_account, state, session)
            if current is None:
                return WS_UNAUTHENTICATED
            if current.role not in ROUTE_ROLES[route]:
                return WS_FORBIDDEN
            if (topic_for(current) or ("",))[0] != topic:
                return WS_EXTENSION_CHANGED

    sub = bus.subscribe(topic)
    tasks: list[asyncio.Task] = []
    try:
        await asyncio.wait_for(sub.ready.wait(), timeout=10)
        await bus.publish(f"{kind}.hello", hello)
        # Not a bus message: tells the page its subscription is live (the indicator turns green).
        await send({"topic": f"{kind}.ready", **hello})
        log.info("%s socket of %s connected", kind, account.username)
        tasks = [
            asyncio.create_task(forward(), name=f"ws-forward-{topic}"),
            asyncio.create_task(listen(), name=f"ws-listen-{topic}"),
            asyncio.create_task(recheck(), name=f"ws-recheck-{topic}"),
        ]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finished = done.pop()
        if finished.cancelled():
            pass
        elif (exc := finished.exception()) is not None:
            if not isinstance(exc, WebSocketDisconnect | OSError | RuntimeError):
                log.error("%s socket failed", topic, exc_info=exc)
                await _close(websocket, 1011, "server error")
        elif finished.get_name().startswith("ws-recheck") and finished.result():
            await _close(websocket, finished.result(), "session ended")
    except Exception as exc:  # the bus (e.g. Redis) failed before the socket was live
        log.warning("%s socket: bus unavailable (%r)", topic, exc)
        await _close(websocket, 1011, "event bus unavailable")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await sub.close()
        if websocket.application_state == WebSocketState.CONNECTED:
            await _close(websocket, 1000, "bye")
        log.info("%s socket of %s disconnected", kind, account.username)
