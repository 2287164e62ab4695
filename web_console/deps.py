"""What a route can ask for, as typed dependencies: the signed-in account (checked against the
access table), the CSRF check, the settings, the event bus and a database session.

Every protected router is made by ``protected_router()``: its routes pass ``authorize`` before
they run, which answers 401/403 (or sends a temporary password to /password) by raising the
exceptions below; ``render.install_exception_handlers`` turns them into pages or JSON. A route
that changes something adds ``CsrfChecked`` (a form field ``csrf`` or the ``X-CSRF-Token``
header must carry the session's token).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Annotated

import annotated_types
from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from starlette.exceptions import HTTPException

from callcenter.accounts.models import Account
from callcenter.bus import EventBus
from callcenter.config import Settings
from callcenter.database import session_scope
from web_console.access import PASSWORD_CHANGE_ROUTES, ROUTE_ROLES
from web_console.sessions import csrf_ok, resolve_account

log = logging.getLogger(__name__)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class NotAuthenticated(Exception):
    """No valid session: pages redirect to /login, APIs answer 401 JSON."""


class Forbidden(Exception):
    """A session whose role may not use this route."""


class PasswordChangeRequired(Exception):
    """A temporary password (issued by an administrator, or a demo account in production)."""


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token."""


class NulInRequest(HTTPException):
    """A NUL character in a request's text (``limits.RequestGate`` looks for it): no person types
    one, and PostgreSQL cannot keep it in text. An ``HTTPException`` for the same reason as
    ``RequestTooLarge``."""

    def __init__(self) -> None:
        super().__init__(status_code=400, detail="NUL character in the request")


class RequestTooLarge(HTTPException):
    """A body past its route's limit (``limits.RequestGate`` counts it). An ``HTTPException`` so
    FastAPI's body parsing passes it on (it turns other errors into 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail="request body too large")
        self.limit = limit


def current_account(request: Request) -> Account:
    account = resolve_account(request.app.state, request.session)
    if account is None:
        raise NotAuthenticated()
    return account


def authorize(request: Request) -> Account:
    """Router-level check of every protected route: a valid session whose role the table allows."""
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


async def check_csrf(request: Request) -> None:
    """The session's CSRF token, from the ``X-CSRF-Token`` header (the JS API) or the form field
    ``csrf`` (pages). The form is parsed once: Starlette keeps it for the route."""
    submitted = request.headers.get("x-csrf-token")
    if submitted is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get("csrf")
        submitted = value if isinstance(value, str) else None
    if not csrf_ok(request.session, submitted):
        raise CsrfRejected()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_bus(request: Request) -> EventBus:
    return request.app.state.bus


def open_db(request: Request) -> AbstractContextManager[Session]:
    """A database session for this request's work (``with open_db(request) as db:``)."""
    return session_scope(request.app.state.settings)


def db_session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.settings) as db:
        yield db


# A row id from a path, query or body: bounded, so a 30-digit number is a 422, not a database
# overflow (SQLite and PostgreSQL keep 64-bit integers).
RowId = Annotated[int, annotated_types.Ge(0), annotated_types.Le(2**62)]

CurrentAccount = Annotated[Account, Depends(authorize)]
CsrfChecked = Depends(check_csrf)
SettingsDep = Annotated[Settings, Depends(get_settings)]
BusDep = Annotated[EventBus, Depends(get_bus)]
DbSession = Annotated[Session, Depends(db_session)]


def protected_router() -> APIRouter:
    """A router whose every route needs a session that the access table lets through."""
    return APIRouter(dependencies=[Depends(authorize)])
