"""Pages and answers: the page language, ``render`` (a template with the translator, the CSRF
token and the navigation), and the exception handlers that turn the web layer's refusals and
every ``UserError`` into a page or JSON in the user's language."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError

from callcenter.bus import bus_unavailable
from callcenter.database import database_unavailable
from callcenter.errors import UserError
from callcenter.i18n import DEFAULT_LANG, translate, translator
from dispatch.holidays import missing_years
from web_console.deps import (
    CsrfRejected,
    Forbidden,
    NotAuthenticated,
    NulInRequest,
    PasswordChangeRequired,
    RequestTooLarge,
)
from web_console.i18n import LOCALE_TAGS, normalize_lang
from web_console.protocol import client_constants
from web_console.sessions import csrf_token

log = logging.getLogger(__name__)


def is_api(path: str) -> bool:
    return path.startswith("/api/")


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
        protocol=client_constants(),
    )
    account = context.get("account")
    # Administrators see, on every page, the years the holiday calendar lacks (from 1 November:
    # next year too), until someone enters them.
    admin = account is not None and getattr(account, "role", "") == "admin"
    context["calendar_missing"] = missing_years(request.app.state.settings) if admin else []
    return request.app.state.templates.TemplateResponse(
        request, name, context, status_code=status_code, headers={"Cache-Control": "no-store"}
    )


def user_message(request: Request, exc: UserError) -> str:
    """What the person is told, in their language: the catalogue's ``errors.<domain>.<code>``
    (which may quote the English detail as ``{detail}``), else the detail itself."""
    lang = current_lang(request)
    text = translate(lang, exc.key, **{"detail": str(exc), **exc.params})
    return str(exc) if text == exc.key else text


def user_error_json(
    request: Request, exc: UserError, status_code: int | None = None, **extra: Any
) -> JSONResponse:
    """A JSON refusal: ``error`` (the English detail, as API clients always had it), ``code`` and
    ``message`` (for the person, translated)."""
    body = {"error": str(exc), "code": exc.code, "message": user_message(request, exc), **extra}
    return JSONResponse(body, status_code=status_code or exc.status)


# How a page shows a refusal: given the error and its translated message, the page again.
ErrorPage = Callable[[UserError, str], Response]


def show_errors_on(request: Request, page: ErrorPage) -> None:
    """A form page that answers a ``UserError`` by showing itself again with the message (rather
    than the error page): the one handler calls ``page`` for this request."""
    request.state.error_page = page


def forbidden_response(request: Request) -> Response:
    if is_api(request.url.path):
        return JSONResponse({"detail": "forbidden"}, status_code=403)
    return render(request, "error.html", status_code=403)


def unauthenticated_response(request: Request) -> Response:
    if is_api(request.url.path):
        return JSONResponse({"detail": "not authenticated"}, status_code=401)
    return RedirectResponse("/login", status_code=303)


def password_change_response(request: Request) -> Response:
    if is_api(request.url.path):
        return JSONResponse({"detail": "password change required"}, status_code=403)
    return RedirectResponse("/password", status_code=303)


def refusal_response(
    request: Request, exc: NotAuthenticated | Forbidden | PasswordChangeRequired
) -> Response:
    """The answer to a request the access check refused (the gate and the handlers alike)."""
    if isinstance(exc, NotAuthenticated):
        return unauthenticated_response(request)
    if isinstance(exc, PasswordChangeRequired):
        return password_change_response(request)
    return forbidden_response(request)


def too_large_response(request: Request, limit: int) -> Response:
    """413 with the limit, in the person's language: JSON except for pages, which show it."""
    mib = max(1, limit // (1024 * 1024))
    lang = current_lang(request)
    message = translate(lang, "errors.request.too_large", limit_mib=mib)
    # The rest of the body is not read: the connection cannot carry another request.
    headers = {"Connection": "close"}
    if request.method == "POST" and not _wants_json(request):
        page = render(request, "error.html", status_code=413, message=message)
        page.headers.update(headers)
        return page
    body = {"error": "request body too large", "code": "too_large", "message": message, "limit": limit}
    return JSONResponse(body, status_code=413, headers=headers)


def nul_response(request: Request) -> Response:
    """400 for text with a NUL character in it, in the person's language."""
    message = translate(current_lang(request), "errors.request.nul")
    if request.method == "POST" and not _wants_json(request):
        page = render(request, "error.html", status_code=400, message=message)
        page.headers["Connection"] = "close"
        return page
    body = {"error": "NUL character in the request", "code": "nul_character", "message": message}
    return JSONResponse(body, status_code=400, headers={"Connection": "close"})


_DB_LOG_EVERY_S = 10.0
_logged_at: dict[str, float] = {}  # part -> when its 503s were last said in the log


# What the person is told while a part cannot be reached
UNAVAILABLE_MESSAGES = {"database": "errors.database.unavailable", "bus": "errors.bus.unavailable"}


def unavailable_part(exc: BaseException) -> str | None:
    """Which part a request failed on because it cannot be reached ("database", "bus": Redis,
    which also keeps the workers' shared sessions), or None for any other error."""
    if database_unavailable(exc):
        return "database"
    if bus_unavailable(exc):
        return "bus"
    return None


def unavailable_response(request: Request, exc: Exception, part: str) -> Response:
    """503 while the database or Redis cannot be reached (restarting, say): the person is told to
    try again shortly, nothing was changed, and the log says so (at most every 10 s, not per
    request)."""
    now = time.monotonic()
    if now - _logged_at.get(part, -_DB_LOG_EVERY_S) >= _DB_LOG_EVERY_S:
        _logged_at[part] = now
        log.warning("%s unavailable: answering 503 (%s)", part, (str(exc) or repr(exc)).splitlines()[0][:200])
    message = translate(current_lang(request), UNAVAILABLE_MESSAGES[part])
    headers = {"Retry-After": "5", "Cache-Control": "no-store"}
    if request.method == "GET" and not _wants_json(request):
        page = render(request, "error.html", status_code=503, message=message)
        page.headers.update(headers)
        return page
    body = {"error": f"{part} unavailable", "code": f"{part}_unavailable", "message": message}
    return JSONResponse(body, status_code=503, headers=headers)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return is_api(request.url.path) or "text/html" not in accept


def install_exception_handlers(app: FastAPI) -> None:
    async def on_unauthenticated(request: Request, exc: Exception) -> Response:
        return unauthenticated_response(request)

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        return forbidden_response(request)

    async def on_password_change(request: Request, exc: Exception) -> Response:
        return password_change_response(request)

    async def on_too_large(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestTooLarge)
        return too_large_response(request, exc.limit)

    async def on_nul(request: Request, exc: Exception) -> Response:
        return nul_response(request)

    async def on_csrf(request: Request, exc: Exception) -> Response:
        if is_api(request.url.path):
            return JSONResponse({"error": "csrf"}, status_code=403)
        return render(request, "error.html", status_code=403)

    async def on_user_error(request: Request, exc: Exception) -> Response:
        """Whatever a route does not answer itself: JSON for the API, else the error page."""
        assert isinstance(exc, UserError)
        page: ErrorPage | None = getattr(request.state, "error_page", None)
        if page is not None:
            return page(exc, user_message(request, exc))
        if is_api(request.url.path):
            return user_error_json(request, exc)
        return render(request, "error.html", status_code=exc.status, message=user_message(request, exc))

    async def on_part_error(request: Request, exc: Exception) -> Response:
        part = unavailable_part(exc)
        if part is None:
            raise exc  # a refused statement is a bug: the server error it is
        return unavailable_response(request, exc, part)

    app.add_exception_handler(DBAPIError, on_part_error)
    app.add_exception_handler(RedisConnectionError, on_part_error)
    app.add_exception_handler(RedisTimeoutError, on_part_error)
    app.add_exception_handler(PasswordChangeRequired, on_password_change)
    app.add_exception_handler(NotAuthenticated, on_unauthenticated)
    app.add_exception_handler(Forbidden, on_forbidden)
    app.add_exception_handler(CsrfRejected, on_csrf)
    app.add_exception_handler(UserError, on_user_error)
    app.add_exception_handler(RequestTooLarge, on_too_large)
    app.add_exception_handler(NulInRequest, on_nul)
