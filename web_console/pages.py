"""The core pages: health, login and logout, home, ``/api/me``, the seat's pause, the seat
console, the wallboard and the account's own password."""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from callcenter import ids
from callcenter.accounts.models import Account
from callcenter.accounts.service import authenticate, hash_password, verify_password
from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory.service import load_display_names
from callcenter.messages import SeatCommand
from dispatch import operations
from web_console.access import HOME_BY_ROLE
from web_console.deps import BusDep, CsrfChecked, CurrentAccount, SettingsDep, open_db, protected_router
from web_console.i18n import js_catalogue
from web_console.render import current_lang, render
from web_console.sessions import client_ip, csrf_ok, end_session, resolve_account, start_session

log = logging.getLogger(__name__)

public = APIRouter()
router = protected_router()

MIN_PASSWORD_LEN = 10


def render_login(
    request: Request, status_code: int = 200, error: tuple[str, dict] | None = None, username: str = ""
) -> Response:
    flash = request.session.pop("flash", None) if status_code == 200 else None
    return render(request, "login.html", status_code, message=flash, error=error, username=username)


# --- public routes -------------------------------------------------------------------------


@public.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    db_ok = True
    try:
        with open_db(request) as db:
            db.exec(text("SELECT 1"))  # type: ignore[call-overload]  # a raw probe, no model
    except Exception:
        log.exception("health check: database unavailable")
        db_ok = False
    body: dict = {"status": "ok" if db_ok else "degraded", "database": "ok" if db_ok else "error"}
    engine = getattr(request.app.state, "engine", None)
    if engine is not None:  # the engine runs in this process
        # Public: whether the engine is up, never what it is doing (no live call counts).
        body["engine"] = {"ami": engine.ami.logged_in.is_set()}
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
    # Not the CSRF dependency: a stale login page gets a fresh token and says so on the page.
    if not csrf_ok(request.session, csrf):
        request.session["csrf"] = secrets.token_urlsafe(32)
        return render_login(request, 403, error=("login.csrf", {}), username=username)
    if not username or not password:
        return render_login(request, 400, error=("login.missing", {}), username=username)
    ip = client_ip(request)
    throttle = request.app.state.login_throttle
    decision = throttle.check(username, ip)
    if not decision.allowed:
        log.warning("login throttled for %r from %s", username, ip)
        response = render_login(
            request,
            429,
            error=("login.throttled", {"minutes": decision.retry_after_minutes}),
            username=username,
        )
        response.headers["Retry-After"] = str(decision.retry_after)
        return response
    with open_db(request) as db:
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


@router.get("/")
def home(request: Request, account: CurrentAccount) -> Response:
    target = HOME_BY_ROLE.get(account.role)
    if target is None:
        return render(request, "error.html", status_code=403)
    return RedirectResponse(target, status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, account: CurrentAccount) -> Response:
    end_session(request)
    request.session["flash"] = "login.logged_out"
    log.info("logout: %s", account.username)
    return RedirectResponse("/login", status_code=303)


@router.get("/api/me")
def api_me(account: CurrentAccount) -> JSONResponse:
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


def _pause_reasons(settings: Settings) -> list[str]:
    """The administrators' list (``dispatch.operations``), as it stands now."""
    with session_scope(settings) as s:
        return list(operations.current(s, settings).pause_reasons)


@router.post("/api/seat/pause", dependencies=[CsrfChecked])
async def seat_pause(
    body: PauseRequest, account: CurrentAccount, settings: SettingsDep, bus: BusDep
) -> Response:
    """Pause or resume the seat's own phone in its queues; the engine asks Asterisk, and the new
    state comes back to every console and wallboard from Asterisk's own event."""
    ext = account.extension
    if not ext or not ids.EXTENSION.fullmatch(ext):
        return JSONResponse({"error": "no extension"}, status_code=409)
    reasons = await run_in_threadpool(_pause_reasons, settings)
    if body.paused and body.reason not in reasons:
        return JSONResponse({"error": "unknown pause reason", "reasons": reasons}, status_code=422)
    command = SeatCommand(action="pause" if body.paused else "unpause", ext=ext, reason=body.reason)
    await bus.publish(command.topic, command.to_json())
    log.info("seat %s: %s %s", ext, command.action, body.reason)
    return JSONResponse({"accepted": True}, status_code=202)


@router.get("/wallboard")
def wallboard(request: Request, account: CurrentAccount, settings: SettingsDep) -> Response:
    return render(
        request,
        "wallboard.html",
        account=account,
        js_strings=js_catalogue(current_lang(request)),
        names=load_display_names(settings).for_page(),
    )


@router.get("/console")
def console(request: Request, account: CurrentAccount, settings: SettingsDep) -> Response:
    lang = current_lang(request)
    ext = account.extension if account.extension and ids.EXTENSION.fullmatch(account.extension) else None
    return render(
        request,
        "console.html",
        account=account,
        extension=ext,
        browser_phone=bool(ext) and account.browser_endpoint is not None,
        pause_reasons=_pause_reasons(settings),
        js_strings=js_catalogue(lang),
        names=load_display_names(settings).for_page(),
    )


# --- own password ----------------------------------------------------------------------------


@router.get("/password")
def password_form(request: Request, account: CurrentAccount) -> Response:
    return render(request, "password.html", account=account, error=None)


@router.post("/password", dependencies=[CsrfChecked])
def password_change(
    request: Request,
    account: CurrentAccount,
    current: str = Form("", max_length=1024),
    new: str = Form("", max_length=1024),
    confirm: str = Form("", max_length=1024),
) -> Response:
    # The current password is checked against the login throttle too: a stolen session cookie
    # must not become an unthrottled way to guess the password.
    ip = client_ip(request)
    throttle = request.app.state.login_throttle
    decision = throttle.check(account.username, ip)
    if not decision.allowed:
        log.warning("password change throttled for %r from %s", account.username, ip)
        response = render(
            request,
            "password.html",
            status_code=429,
            account=account,
            error="password.throttled",
            error_args={"minutes": decision.retry_after_minutes},
        )
        response.headers["Retry-After"] = str(decision.retry_after)
        return response
    error = None
    if not verify_password(account.password_hash, current):
        throttle.record_failure(account.username, ip)
        error = "password.wrong_current"
    elif len(new) < MIN_PASSWORD_LEN:
        error = "password.too_short"
    elif new != confirm:
        error = "password.mismatch"
    elif new == current or new.lower() == account.username.lower():
        error = "password.too_easy"
    if error:
        return render(request, "password.html", status_code=422, account=account, error=error)
    throttle.record_success(account.username, ip)
    with open_db(request) as db:
        fresh = db.get(Account, account.id)
        assert fresh is not None  # the session was resolved to it a moment ago
        fresh.password_hash = hash_password(new)
        fresh.must_change_password = False
        db.add(fresh)
        audit(
            db,
            fresh.username,
            "account.password_change",
            target=fresh.username,
            role=fresh.role,
            ip=client_ip(request),
        )
        db.commit()
    start_session(request, fresh)  # other sessions of the old password end; this one goes on
    return RedirectResponse(HOME_BY_ROLE.get(fresh.role, "/api/me"), status_code=303)
