"""The administrators' service configuration: the category tree (事项分类) and the routing rules
(派单规则), as pages and as a JSON API, with Excel import and export, the routing preview and the
coverage report. Access rules: ``access.ROUTE_ROLES`` (administrators only). Every change is
validated (``ConfigError``, catalogue keys ``errors.config.*``), audited old → new in its own
transaction, moves the routing stamp (the very next order anywhere uses it) and is announced on
the bus (``ConfigChanged``)."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import File, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from openpyxl import Workbook
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from callcenter.accounts.models import Account
from callcenter.audit.service import record as audit
from callcenter.bus import EventBus
from callcenter.clock import china_now
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory import imports
from callcenter.directory.models import Community, Grid, Outlet, ServiceArea
from callcenter.messages import ConfigChanged
from callcenter.statistics.exports import safe_cell
from dispatch import categories, config_file, holidays, message_templates, policies, routing, rules, stamps
from dispatch.errors import ConfigError
from dispatch.service import find_by_number
from sms import text as sms_text
from web_console.deps import BusDep, CsrfChecked, CurrentAccount, protected_router
from web_console.render import render, show_errors_on, user_message
from web_console.sessions import client_ip

router = protected_router()

# A row id in a path: a positive 32-bit integer (larger ones would overflow PostgreSQL's integer).
RowId = Annotated[int, Path(ge=1, le=2_147_483_647)]

MAX_TABLE = 5 * 1024 * 1024  # an Excel file of categories or rules
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _editor(request: Request, account: Account) -> categories.Editor:
    return categories.Editor(account.username, account.role, client_ip(request))


# Which stamp each part of the configuration moves (categories move the routing one).
STAMPS = {"calendar": holidays.STAMP, "deadlines": policies.STAMP, "templates": message_templates.STAMP}


async def _changed(bus: EventBus, settings: Settings, part: str) -> None:
    stamp = {
        "calendar": holidays.STAMP,
        "deadlines": policies.STAMP,
        "templates": message_templates.STAMP,
    }.get(part, routing.STAMP)

    def version() -> int:
        with session_scope(settings) as s:
            return stamps.current(s, stamp)

    msg = ConfigChanged(part=part, version=await run_in_threadpool(version))
    await bus.publish(msg.topic, msg.to_json())


async def _write(settings: Settings, work: Callable[[Session], Any]) -> Any:
    """Run a change in one transaction on a worker thread; a ``ConfigError`` rolls it back."""

    def run() -> Any:
        with session_scope(settings) as s:
            out = work(s)
            s.commit()
            return out

    return await run_in_threadpool(run)


def _xlsx(columns: tuple[tuple[str, str], ...], rows: list[dict[str, Any]], title: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append([heading for _, heading in columns])
    for r in rows:
        values = []
        for field, _ in columns:
            v = r.get(field, "")
            values.append(
                safe_cell(("是" if v else "否") if isinstance(v, bool) else ("" if v is None else v))
            )
        ws.append(values)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def _read_upload(file: UploadFile | None, columns: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    """The rows of an uploaded table, keyed by field name (Chinese or English headings)."""
    if file is None or not file.filename:
        raise ConfigError("choose a file", "file")
    data = await file.read(MAX_TABLE + 1)
    if len(data) > MAX_TABLE:
        raise ConfigError("file too large", "file")
    if file.filename.lower().endswith(".xlsx"):
        await run_in_threadpool(imports.check_xlsx, data)
    raw = await run_in_threadpool(imports.read_table, file.filename, data)
    names = {heading: field for field, heading in columns} | {field: field for field, _ in columns}
    return [{names[k]: v for k, v in row.items() if k in names} for row in raw if row]


def _export(request: Request, account: Account, name: str, body: bytes, rows: int) -> Response:
    with session_scope(request.app.state.settings) as s:
        audit(
            s,
            account.username,
            f"{name}.export",
            target=name,
            role=account.role,
            ip=client_ip(request),
            rows=rows,
        )
        s.commit()
    return Response(
        body,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"', "Cache-Control": "no-store"},
    )


# --- the category tree ------------------------------------------------------------------------


def _category_page(
    request: Request, account: Account, status_code: int = 200, error: str = "", done: str = ""
) -> Response:
    with session_scope(request.app.state.settings) as s:
        nodes = categories.tree(s)
    return render(
        request,
        "admin_categories.html",
        status_code=status_code,
        account=account,
        nodes=nodes,
        error=error,
        done=done,
    )


def _category_errors(request: Request, account: Account) -> None:
    show_errors_on(request, lambda exc, message: _category_page(request, account, exc.status, error=message))


def _form_flag(form: dict[str, str], name: str) -> bool:
    return form.get(name, "") in {"1", "on", "true", "yes"}


@router.get("/admin/categories")
def categories_page(request: Request, account: CurrentAccount) -> Response:
    return _category_page(request, account, done=request.query_params.get("done", "")[:16])


@router.post("/admin/categories/save", dependencies=[CsrfChecked])
async def categories_save(request: Request, account: CurrentAccount, bus: BusDep) -> Response:
    _category_errors(request, account)
    form = {k: str(v)[:300] for k, v in (await request.form()).items() if isinstance(v, str)}
    editor = _editor(request, account)
    item = form.get("id", "")
    parent = form.get("parent_id", "")
    if parent and not (parent.isascii() and parent.isdigit()):
        raise ConfigError("no such parent", "category_parent")

    def work(s: Session) -> None:
        if item.isascii() and item.isdigit():
            categories.update(
                s,
                editor,
                int(item),
                {
                    "name": form.get("name", ""),
                    "parent_id": int(parent) if parent else None,
                    "national_code": form.get("national_code", ""),
                    "approval_matter": _form_flag(form, "approval_matter"),
                    "active": _form_flag(form, "active"),
                },
            )
        else:
            categories.create(
                s,
                editor,
                name=form.get("name", ""),
                parent_id=int(parent) if parent else None,
                code=form.get("code", ""),
                national_code=form.get("national_code", ""),
                approval_matter=_form_flag(form, "approval_matter"),
            )

    await _write(request.app.state.settings, work)
    await _changed(bus, request.app.state.settings, "categories")
    return RedirectResponse("/admin/categories?done=saved", status_code=303)


@router.post("/admin/categories/{category_id}/delete", dependencies=[CsrfChecked])
async def categories_delete(
    request: Request, category_id: RowId, account: CurrentAccount, bus: BusDep
) -> Response:
    _category_errors(request, account)
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: categories.delete(s, editor, category_id))
    await _changed(bus, request.app.state.settings, "categories")
    return RedirectResponse("/admin/categories?done=deleted", status_code=303)


@router.get("/admin/categories/export")
def categories_export(request: Request, account: CurrentAccount) -> Response:
    with session_scope(request.app.state.settings) as s:
        rows = categories.export_rows(s)
    return _export(request, account, "categories", _xlsx(categories.COLUMNS, rows, "categories"), len(rows))


@router.post("/admin/categories/import", dependencies=[CsrfChecked])
async def categories_import(
    request: Request, account: CurrentAccount, bus: BusDep, file: UploadFile | None = File(None)
) -> Response:
    _category_errors(request, account)
    rows = await _read_upload(file, categories.COLUMNS)
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: categories.import_rows(s, editor, rows))
    await _changed(bus, request.app.state.settings, "categories")
    return RedirectResponse("/admin/categories?done=imported", status_code=303)


# The JSON API: the same service functions, the same checks.


@router.get("/api/categories")
def api_categories(request: Request, account: CurrentAccount) -> JSONResponse:
    with session_scope(request.app.state.settings) as s:
        return JSONResponse(categories.tree(s), headers={"Cache-Control": "no-store"})


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > 64 * 1024:
        raise ConfigError("the request body is too large", "body")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ConfigError("the body is not JSON", "body") from None
    if not isinstance(data, dict):
        raise ConfigError("the body is a JSON object", "body")
    return data


@router.post("/api/categories", dependencies=[CsrfChecked])
async def api_category_create(request: Request, account: CurrentAccount, bus: BusDep) -> JSONResponse:
    data = await _json_body(request)
    editor = _editor(request, account)
    parent = data.get("parent_id")
    if parent is not None and (not isinstance(parent, int) or isinstance(parent, bool)):
        raise ConfigError("parent_id is a category id", "category_parent")

    def work(s: Session) -> dict[str, Any]:
        cat = categories.create(
            s,
            editor,
            name=data.get("name", ""),
            parent_id=parent,
            code=data.get("code", ""),
            national_code=data.get("national_code", ""),
            approval_matter=data.get("approval_matter") is True,
        )
        return {"id": cat.id, **categories.snapshot(cat)}

    out = await _write(request.app.state.settings, work)
    await _changed(bus, request.app.state.settings, "categories")
    return JSONResponse(out, status_code=201)


CATEGORY_KEYS = ("name", "parent_id", "national_code", "approval_matter", "active")


@router.post("/api/categories/{category_id}", dependencies=[CsrfChecked])
async def api_category_update(
    request: Request, category_id: RowId, account: CurrentAccount, bus: BusDep
) -> JSONResponse:
    data = await _json_body(request)
    changes = {k: data[k] for k in CATEGORY_KEYS if k in data}
    parent = changes.get("parent_id")
    if parent is not None and (not isinstance(parent, int) or isinstance(parent, bool)):
        raise ConfigError("parent_id is a category id", "category_parent")
    for flag in ("approval_matter", "active"):
        if flag in changes and not isinstance(changes[flag], bool):
            raise ConfigError(f"{flag} is true or false", "flag", value=str(changes[flag])[:20])
    editor = _editor(request, account)

    def work(s: Session) -> dict[str, Any]:
        cat = categories.update(s, editor, category_id, changes)
        return {"id": cat.id, **categories.snapshot(cat)}

    out = await _write(request.app.state.settings, work)
    await _changed(bus, request.app.state.settings, "categories")
    return JSONResponse(out)


@router.post("/api/categories/{category_id}/delete", dependencies=[CsrfChecked])
async def api_category_delete(
    request: Request, category_id: RowId, account: CurrentAccount, bus: BusDep
) -> JSONResponse:
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: categories.delete(s, editor, category_id))
    await _changed(bus, request.app.state.settings, "categories")
    return JSONResponse({"deleted": category_id})


# --- routing rules ----------------------------------------------------------------------------


def _choices(s: Session) -> dict[str, Any]:
    return {
        "nodes": categories.tree(s, with_usage=False),
        "communities": list(s.exec(select(Community).order_by(col(Community.id)))),
        "areas": list(s.exec(select(ServiceArea).order_by(col(ServiceArea.id)))),
        "grids": list(s.exec(select(Grid).order_by(col(Grid.community_id), col(Grid.id)))),
        "outlets": list(s.exec(select(Outlet).order_by(col(Outlet.id)))),
    }


def _int_param(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def _routing_page(request: Request, account: Account, status_code: int = 200, error: str = "") -> Response:
    q = request.query_params
    outlet_filter = _int_param(q.get("outlet_id", ""))
    with session_scope(request.app.state.settings) as s:
        choices = _choices(s)
        listing = rules.listing(s, outlet_filter)
        preview = None
        if "preview" in q:
            try:
                day = date.fromisoformat(q.get("day", "")[:10]) if q.get("day") else None
            except ValueError:
                day = None
            preview = rules.preview(
                s,
                _int_param(q.get("category_id", "")),
                _int_param(q.get("community_id", "")),
                _int_param(q.get("grid_id", "")),
                day,
            )
    return render(
        request,
        "admin_routing.html",
        status_code=status_code,
        account=account,
        rules=listing,
        preview=preview,
        query={k: q.get(k, "")[:16] for k in ("category_id", "community_id", "grid_id", "day")},
        outlet_filter=outlet_filter,
        error=error,
        done=q.get("done", "")[:16],
        **choices,
    )


def _routing_errors(request: Request, account: Account) -> None:
    show_errors_on(request, lambda exc, message: _routing_page(request, account, exc.status, error=message))


@router.get("/admin/routing")
def routing_page(request: Request, account: CurrentAccount) -> Response:
    return _routing_page(request, account)


@router.post("/admin/routing/save", dependencies=[CsrfChecked])
async def routing_save(request: Request, account: CurrentAccount, bus: BusDep) -> Response:
    _routing_errors(request, account)
    form = {k: str(v)[:300] for k, v in (await request.form()).items() if isinstance(v, str)}
    editor = _editor(request, account)
    item = form.pop("id", "")
    # An edit form's checkbox is absent when unticked; a new rule is active unless said otherwise.
    form["active"] = "1" if form.get("active", "" if item else "1") in {"1", "on"} else "0"
    if form.get("place", ""):  # one select for the place: "c:12", "a:3", "g:40"
        kind, _, value = form.pop("place").partition(":")
        field = {"c": "community_id", "a": "area_id", "g": "grid_id"}.get(kind)
        if field is None:
            raise ConfigError("a rule covers one place: a grid, a community or a service area", "rule_place")
        form[field] = value

    def work(s: Session) -> None:
        if item.isascii() and item.isdigit():
            rules.update(s, editor, int(item), form)
        else:
            rules.create(s, editor, form)

    await _write(request.app.state.settings, work)
    await _changed(bus, request.app.state.settings, "routing")
    return RedirectResponse("/admin/routing?done=saved", status_code=303)


@router.post("/admin/routing/{rule_id}/delete", dependencies=[CsrfChecked])
async def routing_delete(request: Request, rule_id: RowId, account: CurrentAccount, bus: BusDep) -> Response:
    _routing_errors(request, account)
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: rules.delete(s, editor, rule_id))
    await _changed(bus, request.app.state.settings, "routing")
    return RedirectResponse("/admin/routing?done=deleted", status_code=303)


@router.get("/admin/routing/coverage")
def routing_coverage_page(request: Request, account: CurrentAccount) -> Response:
    with session_scope(request.app.state.settings) as s:
        report = rules.coverage(s)
        listing = {r["id"]: r for r in rules.listing(s)}
    return render(request, "admin_coverage.html", account=account, report=report, rules=listing)


@router.get("/admin/routing/export")
def routing_export(request: Request, account: CurrentAccount) -> Response:
    with session_scope(request.app.state.settings) as s:
        rows = rules.export_rows(s)
    return _export(request, account, "rules", _xlsx(rules.COLUMNS, rows, "rules"), len(rows))


@router.post("/admin/routing/import", dependencies=[CsrfChecked])
async def routing_import(
    request: Request, account: CurrentAccount, bus: BusDep, file: UploadFile | None = File(None)
) -> Response:
    _routing_errors(request, account)
    form = await request.form()
    replace = form.get("replace") in ("1", "on")
    rows = await _read_upload(file, rules.COLUMNS)
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: rules.import_rows(s, editor, rows, replace=replace))
    await _changed(bus, request.app.state.settings, "routing")
    return RedirectResponse("/admin/routing?done=imported", status_code=303)


@router.get("/api/routing/rules")
def api_rules(
    request: Request, account: CurrentAccount, outlet_id: int | None = Query(None, ge=1, le=2_147_483_647)
) -> JSONResponse:
    with session_scope(request.app.state.settings) as s:
        return JSONResponse(rules.listing(s, outlet_id), headers={"Cache-Control": "no-store"})


@router.post("/api/routing/rules", dependencies=[CsrfChecked])
async def api_rule_create(request: Request, account: CurrentAccount, bus: BusDep) -> JSONResponse:
    data = await _json_body(request)
    editor = _editor(request, account)

    def work(s: Session) -> dict[str, Any]:
        rule = rules.create(s, editor, data)
        return {"id": rule.id, **rules.snapshot(rule)}

    out = await _write(request.app.state.settings, work)
    await _changed(bus, request.app.state.settings, "routing")
    return JSONResponse(out, status_code=201)


@router.post("/api/routing/rules/{rule_id}", dependencies=[CsrfChecked])
async def api_rule_update(
    request: Request, rule_id: RowId, account: CurrentAccount, bus: BusDep
) -> JSONResponse:
    data = await _json_body(request)
    editor = _editor(request, account)

    def work(s: Session) -> dict[str, Any]:
        rule = rules.update(s, editor, rule_id, data)
        return {"id": rule.id, **rules.snapshot(rule)}

    out = await _write(request.app.state.settings, work)
    await _changed(bus, request.app.state.settings, "routing")
    return JSONResponse(out)


@router.post("/api/routing/rules/{rule_id}/delete", dependencies=[CsrfChecked])
async def api_rule_delete(
    request: Request, rule_id: RowId, account: CurrentAccount, bus: BusDep
) -> JSONResponse:
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: rules.delete(s, editor, rule_id))
    await _changed(bus, request.app.state.settings, "routing")
    return JSONResponse({"deleted": rule_id})


@router.get("/api/routing/preview")
def api_routing_preview(
    request: Request,
    account: CurrentAccount,
    category_id: int | None = Query(None, ge=0, le=2**31),
    community_id: int | None = Query(None, ge=0, le=2**31),
    grid_id: int | None = Query(None, ge=0, le=2**31),
    day: date | None = Query(None),
) -> JSONResponse:
    with session_scope(request.app.state.settings) as s:
        return JSONResponse(
            rules.preview(s, category_id, community_id, grid_id, day), headers={"Cache-Control": "no-store"}
        )


@router.get("/api/routing/coverage")
def api_routing_coverage(
    request: Request, account: CurrentAccount, day: date | None = Query(None)
) -> JSONResponse:
    with session_scope(request.app.state.settings) as s:
        return JSONResponse(rules.coverage(s, day), headers={"Cache-Control": "no-store"})


# --- the holiday calendar -----------------------------------------------------------------------


def _calendar_year(request: Request) -> int:
    asked = request.query_params.get("year", "")
    if asked.isascii() and asked.isdigit() and len(asked) == 4 and 2000 <= int(asked) <= 2100:
        return int(asked)
    return china_now(request.app.state.settings).year


def _calendar_page(request: Request, account: Account, status_code: int = 200, error: str = "") -> Response:
    year = _calendar_year(request)
    with session_scope(request.app.state.settings) as s:
        days = holidays.listing(s, year)
        cal = holidays.current(s)
    return render(
        request,
        "admin_calendar.html",
        status_code=status_code,
        account=account,
        year=year,
        days=days,
        package_knows=holidays.package_knows(year),
        entered=year in cal.years,
        error=error,
        done=request.query_params.get("done", "")[:16],
    )


def _calendar_errors(request: Request, account: Account) -> None:
    show_errors_on(request, lambda exc, message: _calendar_page(request, account, exc.status, error=message))


@router.get("/admin/calendar")
def calendar_page(request: Request, account: CurrentAccount) -> Response:
    return _calendar_page(request, account)


@router.post("/admin/calendar/save", dependencies=[CsrfChecked])
async def calendar_save(request: Request, account: CurrentAccount, bus: BusDep) -> Response:
    _calendar_errors(request, account)
    form = {k: str(v)[:64] for k, v in (await request.form()).items() if isinstance(v, str)}
    editor = _editor(request, account)
    day = await _write(
        request.app.state.settings,
        lambda s: (
            holidays.save_day(s, editor, form.get("day"), form.get("workday", ""), form.get("name")).day
        ),
    )
    await _changed(bus, request.app.state.settings, "calendar")
    return RedirectResponse(f"/admin/calendar?year={day.year}&done=saved", status_code=303)


@router.post("/admin/calendar/delete", dependencies=[CsrfChecked])
async def calendar_delete(request: Request, account: CurrentAccount, bus: BusDep) -> Response:
    _calendar_errors(request, account)
    form = {k: str(v)[:64] for k, v in (await request.form()).items() if isinstance(v, str)}
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: holidays.delete_day(s, editor, form.get("day")))
    await _changed(bus, request.app.state.settings, "calendar")
    year = form.get("day", "")[:4]
    return RedirectResponse(
        f"/admin/calendar?year={year if year.isascii() and year.isdigit() else ''}&done=deleted",
        status_code=303,
    )


@router.post("/admin/calendar/import", dependencies=[CsrfChecked])
async def calendar_import(
    request: Request, account: CurrentAccount, bus: BusDep, file: UploadFile | None = File(None)
) -> Response:
    _calendar_errors(request, account)
    rows = await _read_upload(file, holidays.COLUMNS)
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: holidays.import_rows(s, editor, rows))
    await _changed(bus, request.app.state.settings, "calendar")
    return RedirectResponse("/admin/calendar?done=imported", status_code=303)


@router.get("/admin/calendar/export")
def calendar_export(request: Request, account: CurrentAccount) -> Response:
    with session_scope(request.app.state.settings) as s:
        rows = holidays.export_rows(s)
    return _export(request, account, "holidays", _xlsx(holidays.COLUMNS, rows, "holidays"), len(rows))


@router.get("/api/calendar")
def api_calendar(
    request: Request, account: CurrentAccount, year: int | None = Query(None, ge=2000, le=2100)
) -> JSONResponse:
    settings = request.app.state.settings
    year = year or china_now(settings).year
    with session_scope(settings) as s:
        days = [
            {"day": h.day.isoformat(), "workday": h.workday, "name": h.name}
            for h in holidays.listing(s, year)
        ]
    body = {
        "year": year,
        "package_knows": holidays.package_knows(year),
        "days": days,
        "missing": holidays.missing_years(settings),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# --- deadline policies ----------------------------------------------------------------------------


def _policy_json(p: policies.Policy) -> dict[str, Any]:
    return {"order_type": p.order_type, "urgency": p.urgency, "custom": p.custom, **policies.settings_of(p)}


def _deadlines_page(request: Request, account: Account, status_code: int = 200, error: str = "") -> Response:
    with session_scope(request.app.state.settings) as s:
        table = policies.current(s).table()
    return render(
        request,
        "admin_deadlines.html",
        status_code=status_code,
        account=account,
        table=table,
        units=policies.UNITS,
        error=error,
        done=request.query_params.get("done", "")[:16],
    )


@router.get("/admin/deadlines")
def deadlines_page(request: Request, account: CurrentAccount) -> Response:
    return _deadlines_page(request, account)


async def _save_policy(
    request: Request, account: Account, bus: EventBus, data: dict[str, Any]
) -> policies.Policy:
    settings = request.app.state.settings
    editor = _editor(request, account)
    kind = (str(data.get("order_type", ""))[:8], str(data.get("urgency", ""))[:8])
    saved = await _write(settings, lambda s: policies.save(s, settings, editor, *kind, data))
    await _changed(bus, settings, "deadlines")
    return saved


@router.post("/admin/deadlines/save", dependencies=[CsrfChecked])
async def deadlines_save(request: Request, account: CurrentAccount, bus: BusDep) -> Response:
    show_errors_on(request, lambda exc, message: _deadlines_page(request, account, exc.status, error=message))
    form = {k: str(v)[:300] for k, v in (await request.form()).items() if isinstance(v, str)}
    await _save_policy(request, account, bus, form)
    return RedirectResponse("/admin/deadlines?done=saved", status_code=303)


@router.get("/api/deadlines")
def api_deadlines(request: Request, account: CurrentAccount) -> JSONResponse:
    with session_scope(request.app.state.settings) as s:
        body = [_policy_json(p) for p in policies.current(s).table()]
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/api/deadlines", dependencies=[CsrfChecked])
async def api_deadline_save(request: Request, account: CurrentAccount, bus: BusDep) -> JSONResponse:
    data = await _json_body(request)
    if isinstance(data.get("escalate_to"), list):
        data["escalate_to"] = ",".join(str(x) for x in data["escalate_to"][:20])
    return JSONResponse(_policy_json(await _save_policy(request, account, bus, data)))


# --- message templates ----------------------------------------------------------------------------


def _template_rows(s: Session) -> list[dict[str, Any]]:
    out = []
    for name, spec in message_templates.REGISTRY.items():
        body, code, mapping = message_templates.effective(s, name)
        out.append(
            {
                "name": name,
                "label": spec.label,
                "channel": spec.channel,
                "variables": list(spec.variables),
                "body": body,
                "default": spec.default,
                "custom": name in message_templates.current(s).rows,
                "provider_code": code,
                "param_map": mapping,
            }
        )
    return out


def _template_preview(s: Session, name: str, number: str, body: str | None) -> dict[str, Any]:
    spec = message_templates.REGISTRY.get(name)
    if spec is None:
        raise ConfigError(f"no template {name[:48]!r}", "not_found")
    order = find_by_number(s, number) if number else None
    if number and order is None:
        raise ConfigError(f"no order {number[:32]!r}", "template_order")
    sample = message_templates.SAMPLES.get(name)
    values = sample(order) if (order is not None and sample) else {v: "{" + v + "}" for v in spec.variables}
    text = message_templates.render(s, name, values, body)
    return {
        "name": name,
        "order": order.number if order else None,
        "body": text.body,
        "length": len(text.body),
        "segments": sms_text.segments(text.body),
        "provider_code": text.provider_code,
        "params": text.params,
    }


def _templates_page(request: Request, account: Account, status_code: int = 200, error: str = "") -> Response:
    q = request.query_params
    with session_scope(request.app.state.settings) as s:
        rows = _template_rows(s)
        preview = None
        if q.get("preview") in message_templates.REGISTRY:
            try:
                preview = _template_preview(s, q["preview"], q.get("order", "")[:32].strip(), None)
            except ConfigError as exc:
                error = error or user_message(request, exc)
    return render(
        request,
        "admin_templates.html",
        status_code=status_code,
        account=account,
        rows=rows,
        preview=preview,
        order=q.get("order", "")[:32],
        error=error,
        done=q.get("done", "")[:16],
    )


def _templates_errors(request: Request, account: Account) -> None:
    show_errors_on(request, lambda exc, message: _templates_page(request, account, exc.status, error=message))


@router.get("/admin/templates")
def templates_page(request: Request, account: CurrentAccount) -> Response:
    return _templates_page(request, account)


async def _save_template(request: Request, account: Account, bus: EventBus, data: dict[str, Any]) -> None:
    settings = request.app.state.settings
    editor = _editor(request, account)
    name = str(data.get("name", ""))[:48]
    await _write(settings, lambda s: message_templates.save(s, editor, name, data))
    await _changed(bus, settings, "templates")


@router.post("/admin/templates/save", dependencies=[CsrfChecked])
async def templates_save(request: Request, account: CurrentAccount, bus: BusDep) -> Response:
    _templates_errors(request, account)
    form = {k: str(v)[:2000] for k, v in (await request.form()).items() if isinstance(v, str)}
    await _save_template(request, account, bus, form)
    return RedirectResponse("/admin/templates?done=saved", status_code=303)


@router.post("/admin/templates/reset", dependencies=[CsrfChecked])
async def templates_reset(request: Request, account: CurrentAccount, bus: BusDep) -> Response:
    _templates_errors(request, account)
    form = await request.form()
    name = str(form.get("name", ""))[:48]
    editor = _editor(request, account)
    await _write(request.app.state.settings, lambda s: message_templates.reset(s, editor, name))
    await _changed(bus, request.app.state.settings, "templates")
    return RedirectResponse("/admin/templates?done=reset", status_code=303)


@router.get("/api/templates")
def api_templates(request: Request, account: CurrentAccount) -> JSONResponse:
    with session_scope(request.app.state.settings) as s:
        return JSONResponse(_template_rows(s), headers={"Cache-Control": "no-store"})


@router.post("/api/templates", dependencies=[CsrfChecked])
async def api_template_save(request: Request, account: CurrentAccount, bus: BusDep) -> JSONResponse:
    data = await _json_body(request)
    await _save_template(request, account, bus, data)
    with session_scope(request.app.state.settings) as s:
        row = [r for r in _template_rows(s) if r["name"] == data.get("name")]
    return JSONResponse(row[0])


@router.get("/api/templates/preview")
def api_template_preview(
    request: Request,
    account: CurrentAccount,
    name: str = Query("", max_length=48),
    order: str = Query("", max_length=32),
    body: str | None = Query(None, max_length=message_templates.MAX_BODY),
) -> JSONResponse:
    with session_scope(request.app.state.settings) as s:
        return JSONResponse(
            _template_preview(s, name, order.strip(), body), headers={"Cache-Control": "no-store"}
        )


# --- the whole configuration as one file ----------------------------------------------------------

STAGING = "config-staging"  # under the data folder: a dry-run's file, until applied


def _staged(settings: Settings, token: str) -> FsPath:
    if not (token.isascii() and token.isalnum() and 16 <= len(token) <= 64):
        raise ConfigError("the staged file is gone: upload it again", "config_staged")
    return FsPath(settings.data_dir) / STAGING / f"{token}.json"


def _config_page(
    request: Request, account: Account, status_code: int = 200, error: str = "", **extra: Any
) -> Response:
    return render(
        request,
        "admin_config.html",
        status_code=status_code,
        account=account,
        error=error,
        parts=config_file.PARTS,
        diff=extra.get("diff"),
        token=extra.get("token", ""),
        applied=extra.get("applied", False),
    )


@router.get("/admin/config")
def config_page(request: Request, account: CurrentAccount) -> Response:
    return _config_page(request, account)


@router.get("/admin/config/export")
def config_export(request: Request, account: CurrentAccount) -> Response:
    with session_scope(request.app.state.settings) as s:
        body = config_file.dumps(config_file.export(s))
        audit(s, account.username, "config.export", target="config", role=account.role, ip=client_ip(request))
        s.commit()
    return Response(
        body.encode(),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="hotline-config.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/admin/config/dry-run", dependencies=[CsrfChecked])
async def config_dry_run(
    request: Request, account: CurrentAccount, file: UploadFile | None = File(None)
) -> Response:
    """The difference the file would make; the file waits (staged) for the administrator's apply."""
    show_errors_on(request, lambda exc, message: _config_page(request, account, exc.status, error=message))
    if file is None or not file.filename:
        raise ConfigError("choose a file", "config_file")
    raw = await file.read(config_file.MAX_BYTES + 1)
    data = config_file.loads(raw)
    settings = request.app.state.settings

    def stage() -> tuple[dict[str, Any], str]:
        with session_scope(settings) as s:
            changes = config_file.diff(s, data)
        token = secrets.token_hex(16)
        path = _staged(settings, token)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"owner": account.username, "data": data}, ensure_ascii=False))
        return changes, token

    changes, token = await run_in_threadpool(stage)
    return _config_page(request, account, diff=changes, token=token)


@router.post("/admin/config/apply", dependencies=[CsrfChecked])
async def config_apply(request: Request, account: CurrentAccount, bus: BusDep) -> Response:
    show_errors_on(request, lambda exc, message: _config_page(request, account, exc.status, error=message))
    form = await request.form()
    settings = request.app.state.settings
    path = _staged(settings, str(form.get("token", ""))[:64])
    try:
        staged = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigError("the staged file is gone: upload it again", "config_staged") from None
    if staged.get("owner") != account.username:
        raise ConfigError("the staged file is gone: upload it again", "config_staged")
    editor = _editor(request, account)
    changes = await _write(settings, lambda s: config_file.apply(s, settings, editor, staged["data"]))
    path.unlink(missing_ok=True)
    for part in ("routing", "calendar", "deadlines", "templates"):
        await _changed(bus, settings, part)
    return _config_page(request, account, diff=changes, applied=True)


@router.get("/api/config")
def api_config_export(request: Request, account: CurrentAccount) -> JSONResponse:
    with session_scope(request.app.state.settings) as s:
        return JSONResponse(config_file.export(s), headers={"Cache-Control": "no-store"})


@router.post("/api/config", dependencies=[CsrfChecked])
async def api_config_import(
    request: Request, account: CurrentAccount, bus: BusDep, dry_run: bool = Query(True)
) -> JSONResponse:
    """The dry run (the default) or, with ``dry_run=false``, the import of a whole configuration."""
    data = config_file.loads(await request.body())
    settings = request.app.state.settings
    if dry_run:

        def preview() -> dict[str, Any]:
            with session_scope(settings) as s:
                return config_file.diff(s, data)

        return JSONResponse({"dry_run": True, "diff": await run_in_threadpool(preview)})
    editor = _editor(request, account)
    changes = await _write(settings, lambda s: config_file.apply(s, settings, editor, data))
    for part in ("routing", "calendar", "deadlines", "templates"):
        await _changed(bus, settings, part)
    return JSONResponse({"dry_run": False, "diff": changes})
