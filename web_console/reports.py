"""Statistics pages, exports and the JSON API for the display platform.

Pages (supervisors, administrators): /reports (any range, grouped by queue, seat, service number,
hour, day, week or month; table and chart), /reports/daily (printable; the same body is mailed
each morning), /reports/scorecard (绩效). Exports (CSV, Excel) are audit-logged. The JSON API
(/api/stats/*) takes a supervisor's session or the display platform's bearer token
(``stats_api_token``). Access rules: ``access.ROUTE_ROLES``.
"""

from __future__ import annotations

import hmac
import tempfile
from collections.abc import AsyncIterator
from datetime import date
from typing import IO, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from callcenter.audit.service import record as audit
from callcenter.callcontrol.callbacks import missed_callback_report
from callcenter.config import Settings
from callcenter.database import get_engine, session_scope
from callcenter.directory.models import CallQueue
from callcenter.errors import UserError
from callcenter.ids import DIAGNOSTICS_QUEUE
from callcenter.statistics import exports, orders, service
from callcenter.statistics.charts import bar_chart
from callcenter.statistics.daily import daily_context, fmt, yesterday
from web_console.access import ROUTE_ROLES
from web_console.deps import CurrentAccount, Forbidden, NotAuthenticated, open_db, protected_router
from web_console.i18n import translator
from web_console.render import current_lang, render
from web_console.sessions import client_ip, resolve_account

router = protected_router()

MAX_DAYS = 3660  # ten years: anything longer is a typo
MAX_EXPORT_DAYS = 93  # an export lists every call of its range: a quarter at most


class BadRange(UserError, domain="reports"):
    pass


def _range(start: str | None, end: str | None) -> tuple[str, str]:
    try:
        e = service.parse_day(end, service.today())
        s = service.parse_day(start, e)
    except ValueError as exc:
        raise BadRange("dates are YYYY-MM-DD") from exc
    if s > e or (date.fromisoformat(e) - date.fromisoformat(s)).days > MAX_DAYS:
        raise BadRange("bad date range")
    return s, e


def _range_or_last(start: str | None, end: str | None, days: int) -> tuple[str, str]:
    """A page's range: the one asked for, else (none or a bad one) the last ``days`` days."""
    if start is None and end is None:
        return service.days_back(days)
    try:
        return _range(start, end)
    except BadRange:
        return service.days_back(days)


def _by(by: str | None) -> str:
    by = by or "queue"
    if by not in service.GROUPS:
        raise BadRange("unknown grouping")
    return by


def _queue(q: str | None) -> str:
    q = (q or "").strip()
    if q and not (q.replace("-", "").replace("_", "").isalnum() and len(q) <= 32):
        raise BadRange("bad queue")
    return q


def _queues(settings: Settings) -> list[tuple[str, str]]:
    """The queues to choose from: (id, the name a person reads); the doctor's is not service."""
    with session_scope(settings) as db:
        rows = db.exec(select(CallQueue.name, CallQueue.title).order_by(CallQueue.name))
        return [(name, title or name) for name, title in rows if name != DIAGNOSTICS_QUEUE]


def _chart(rep: dict[str, Any], t) -> Any:
    rows = rep["rows"]
    if not rows:
        return None
    labels = [str(r.get("name") or r["key"]) for r in rows]
    if rep["by"] == "seat":
        series = [(t("stats.handled"), [r["handled"] for r in rows])]
    else:
        series = [
            (t("stats.offered"), [r["offered"] for r in rows]),
            (t("stats.answered"), [r["answered"] for r in rows]),
            (t("stats.abandoned"), [r["abandoned"] for r in rows]),
        ]
    return bar_chart(labels, series, title=t(f"stats.by.{rep['by']}"))


@router.get("/reports")
async def reports_page(
    request: Request,
    account: CurrentAccount,
    start: str | None = Query(None, max_length=10),
    end: str | None = Query(None, max_length=10),
    by: str | None = Query(None, max_length=8),
    queue: str | None = Query(None, max_length=32),
) -> Response:
    settings = request.app.state.settings
    t = translator(current_lang(request))
    try:
        s, e = _range(start, end)
        b, q = _by(by), _queue(queue)
    except BadRange:
        s, e = service.days_back(7)
        b, q = "day", ""
    rep = await run_in_threadpool(service.report, settings, s, e, b, q)
    missed = await run_in_threadpool(missed_callback_report, settings, rep["start"], rep["end"])
    return render(
        request,
        "reports.html",
        account=account,
        report=rep,
        missed=missed,
        chart=_chart(rep, t),
        columns=exports.columns(b),
        groups=service.GROUPS,
        queues=await run_in_threadpool(_queues, settings),
        fmt=fmt,
    )


@router.get("/reports/export")
async def reports_export(
    request: Request,
    account: CurrentAccount,
    start: str | None = Query(None, max_length=10),
    end: str | None = Query(None, max_length=10),
    by: str | None = Query(None, max_length=8),
    queue: str | None = Query(None, max_length=32),
    format: str = Query("xlsx", pattern="^(csv|xlsx)$"),
) -> Response:
    settings = request.app.state.settings
    try:
        s, e = _range(start, end)
        b, q = _by(by), _queue(queue)
        if (date.fromisoformat(e) - date.fromisoformat(s)).days + 1 > MAX_EXPORT_DAYS:
            raise BadRange(f"an export covers at most {MAX_EXPORT_DAYS} days")
    except BadRange as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    t = translator(current_lang(request))

    def build() -> tuple[IO[bytes], int]:
        """The export in a temporary file (every call of the range: not held in memory)."""
        out = tempfile.TemporaryFile()
        try:
            with get_engine(settings).connect() as conn:
                rep = service.report(settings, s, e, b, q, conn=conn)
                if format == "csv":
                    out.write(exports.to_csv(rep, t))  # the report's table only: small
                else:
                    exports.write_xlsx(out, rep, t, conn)
            size = out.tell()
            out.seek(0)
            return out, size
        except BaseException:
            out.close()
            raise

    out, size = await run_in_threadpool(build)

    def log_it() -> None:
        # Exports carry callers' numbers: who took which range is kept in the audit log.
        with open_db(request) as db:
            audit(
                db,
                account.username,
                "stats.export",
                target=f"{s}..{e}",
                role=account.role,
                ip=client_ip(request),
                by=b,
                queue=q,
                format=format,
                size=size,
            )
            db.commit()

    try:
        await run_in_threadpool(log_it)
    except BaseException:
        out.close()
        raise

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await run_in_threadpool(out.read, 256 * 1024):
                yield chunk
        finally:
            out.close()

    name = f"report-{b}-{s}-{e}.{format}"
    mime = "text/csv; charset=utf-8" if format == "csv" else XLSX_MIME
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(size),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(chunks(), media_type=mime, headers=headers)


XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/reports/daily")
async def reports_daily(
    request: Request, account: CurrentAccount, day: str | None = Query(None, max_length=10)
) -> Response:
    settings = request.app.state.settings
    t = translator(current_lang(request))
    try:
        d = service.parse_day(day, yesterday())
    except ValueError:
        d = yesterday()
    ctx = await run_in_threadpool(daily_context, settings, d, t, missed_callback_report)
    return render(request, "report_daily.html", account=account, fmt=fmt, **ctx)


@router.get("/reports/scorecard")
async def reports_scorecard(
    request: Request,
    account: CurrentAccount,
    start: str | None = Query(None, max_length=10),
    end: str | None = Query(None, max_length=10),
) -> Response:
    settings = request.app.state.settings
    s, e = _range_or_last(start, end, 30)
    cards = await run_in_threadpool(service.scorecard, settings, s, e)
    return render(
        request,
        "report_scorecard.html",
        account=account,
        cards=cards,
        start=s,
        end=e,
        weights=settings.stats_score_weights,
        fmt=fmt,
    )


# --- the JSON API: a session or the display platform's token ------------------------------------
api = APIRouter()


def api_client(request: Request) -> str:
    """Who asks: the display platform (bearer token) or a supervisor's session."""
    settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and settings.stats_api_token:
        if hmac.compare_digest(header[7:].strip().encode(), settings.stats_api_token.encode()):
            return "token"
        raise NotAuthenticated()
    account = resolve_account(request.app.state, request.session)
    if account is None:
        raise NotAuthenticated()
    path = getattr(request.scope.get("route"), "path", None)
    if account.role not in ROUTE_ROLES.get(path or "", frozenset()) or account.must_change_password:
        raise Forbidden()
    return account.username


def _api_range(start, end, by=None, queue=None):
    s, e = _range(start, end)
    return s, e, (_by(by) if by is not None else None), _queue(queue)


@api.get("/api/stats/report")
async def api_report(
    request: Request,
    client: str = Depends(api_client),
    start: str | None = Query(None, max_length=10),
    end: str | None = Query(None, max_length=10),
    by: str = Query("queue", max_length=8),
    queue: str | None = Query(None, max_length=32),
) -> Response:
    try:
        s, e, b, q = _api_range(start, end, by, queue)
    except BadRange as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    rep = await run_in_threadpool(service.report, request.app.state.settings, s, e, b, q)
    return JSONResponse(rep)


@api.get("/api/stats/today")
async def api_today(request: Request, client: str = Depends(api_client)) -> Response:
    settings = request.app.state.settings
    d = service.today()
    rep = await run_in_threadpool(service.report, settings, d, d, "queue")
    return JSONResponse(rep)


@api.get("/api/stats/orders")
async def api_orders(
    request: Request,
    client: str = Depends(api_client),
    start: str | None = Query(None, max_length=10),
    end: str | None = Query(None, max_length=10),
    by: str = Query("type", max_length=10),
) -> Response:
    try:
        s, e, _, _ = _api_range(start, end)
    except BadRange as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    if by not in orders.GROUPS:
        return JSONResponse({"detail": "unknown grouping"}, status_code=422)

    def run() -> dict[str, Any]:
        with get_engine(request.app.state.settings).connect() as conn:
            return orders.order_report(conn, s, e, by=by)

    return JSONResponse(await run_in_threadpool(run), headers={"Cache-Control": "no-store"})


@api.get("/api/stats/scorecard")
async def api_scorecard(
    request: Request,
    client: str = Depends(api_client),
    start: str | None = Query(None, max_length=10),
    end: str | None = Query(None, max_length=10),
) -> Response:
    try:
        s, e, _, _ = _api_range(start, end)
    except BadRange as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    return JSONResponse(await run_in_threadpool(service.scorecard, request.app.state.settings, s, e))


@router.get("/reports/orders")
async def reports_orders(
    request: Request,
    account: CurrentAccount,
    start: str | None = Query(None, max_length=10),
    end: str | None = Query(None, max_length=10),
    by: str | None = Query(None, max_length=10),
) -> Response:
    """Work orders by type, category, community, outlet or seat, with the order rates."""
    settings = request.app.state.settings
    s, e = _range_or_last(start, end, 30)
    b = by if by in orders.GROUPS else "type"

    def run() -> dict[str, Any]:
        with get_engine(settings).connect() as conn:
            return orders.order_report(conn, s, e, by=b)

    rep = await run_in_threadpool(run)
    return render(
        request,
        "report_orders.html",
        account=account,
        report=rep,
        start=s,
        end=e,
        by=b,
        groups=orders.GROUPS,
        keys=ORDER_KEYS,
        fmt=fmt,
    )


ORDER_KEYS = (
    "orders",
    "on_time_acceptance",
    "on_time_resolution",
    "return_rate",
    "rehandle_rate",
    "satisfaction",
    "answered_directly",
)
