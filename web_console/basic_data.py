"""Basic data administration (基础数据): jurisdictions, communities, grids, service areas, outlets
and suppliers, service numbers; imports from CSV/Excel with a progress bar and a row-by-row
report. Adding one item is an import of one row (the same checks); editing one is
``directory.service``. Access rules: ``access.ROUTE_ROLES``; every change and import is in the audit log."""

from __future__ import annotations

import io
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from openpyxl import Workbook
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter import phone
from callcenter.accounts.models import Account
from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory import imports
from callcenter.directory.models import (
    Community,
    Grid,
    Jurisdiction,
    Outlet,
    OutletArea,
    ServiceArea,
    ServiceAreaCommunity,
    ServiceNumber,
)
from callcenter.directory.service import EDIT_FIELDS, EDITABLE, MODELS, Editor, update_item, update_outlet
from callcenter.residents.imports import import_table
from callcenter.statistics.exports import safe_cell
from callcenter.text import is_digits
from dispatch.errors import ConfigError
from dispatch.models import RoutingRule
from web_console.deps import CsrfChecked, CurrentAccount, RowId, open_db, protected_router
from web_console.render import render, user_message
from web_console.sessions import client_ip

IMPORTABLE = (*EDITABLE, "residents")
MAX_UPLOAD = imports.MAX_BYTES

router = protected_router()


def _rows(settings: Settings, kind: str) -> list[dict[str, Any]]:
    """What the list page and the API show for each item."""
    with session_scope(settings) as s:
        jur = {j.id: j.name for j in s.exec(select(Jurisdiction))}
        com = {c.id: c.name for c in s.exec(select(Community))}
        if kind == "jurisdictions":
            return [{"id": j.id, "name": j.name, "code": j.code} for j in s.exec(select(Jurisdiction))]
        if kind == "communities":
            return [
                {"id": c.id, "name": c.name, "jurisdiction": jur.get(c.jurisdiction_id, ""), "urban": c.urban}
                for c in s.exec(select(Community).order_by(col(Community.jurisdiction_id), col(Community.id)))
            ]
        if kind == "grids":
            return [
                {"id": g.id, "name": g.name, "community": com.get(g.community_id, "")}
                for g in s.exec(select(Grid).order_by(col(Grid.community_id), col(Grid.id)))
            ]
        if kind == "service_areas":
            members: dict[int | None, list[str]] = {}
            for m in s.exec(select(ServiceAreaCommunity)):
                members.setdefault(m.area_id, []).append(com.get(m.community_id, ""))
            return [
                {"id": a.id, "name": a.name, "communities": "；".join(members.get(a.id, []))}
                for a in s.exec(select(ServiceArea))
            ]
        if kind == "outlets":
            # What an outlet serves is its routing rules (the one source of truth): counted here,
            # listed on the routing page.
            rule_counts: dict[int, int] = {}
            for outlet_id in s.exec(select(RoutingRule.outlet_id)):
                rule_counts[outlet_id] = rule_counts.get(outlet_id, 0) + 1
            return [
                {
                    "id": o.id,
                    "name": o.name,
                    "kind": o.kind,
                    "community": com.get(o.community_id, "") if o.community_id else "",
                    "rules": rule_counts.get(o.id or 0, 0),
                    "phone": phone.display(o.phone) if o.phone.startswith("+") else o.phone,
                    "phones": o.phones,
                    "email": o.email,
                    "emails": o.emails,
                    "working_hours": o.working_hours,
                    "active": o.active,
                }
                for o in s.exec(select(Outlet).order_by(col(Outlet.id)))
            ]
        if kind == "service_numbers":
            return [
                {"id": n.id, "number": n.number, "title": n.title, "queue_name": n.queue_name}
                for n in s.exec(select(ServiceNumber))
            ]
    raise KeyError(kind)


# Columns the routing rules own: not shown, edited or exported with the outlet.
RULE_COLUMNS = frozenset({"categories", "areas"})


def _fields(kind: str) -> list[str]:
    return [f for f in imports.COLUMNS[kind] if not (kind == "outlets" and f in RULE_COLUMNS)]


@router.get("/admin/basic")
def basic_index(request: Request, account: CurrentAccount) -> Response:
    counts = {kind: len(_rows(request.app.state.settings, kind)) for kind in EDITABLE}
    return render(request, "admin_basic.html", account=account, counts=counts, kinds=IMPORTABLE)


def _kind_page(
    request: Request, account: Account, kind: str, status_code: int = 200, **notice: Any
) -> Response:
    settings = request.app.state.settings
    return render(
        request,
        "admin_basic_kind.html",
        status_code=status_code,
        account=account,
        kind=kind,
        fields=_fields(kind),
        edit_fields=EDIT_FIELDS.get(kind, ()),
        rows=_rows(settings, kind),
        error=notice.get("error"),
        errors=notice.get("errors") or [],
        saved=notice.get("saved"),
    )


@router.get("/admin/basic/{kind}")
def basic_kind(request: Request, kind: str, account: CurrentAccount) -> Response:
    if kind not in EDITABLE:
        return render(request, "error.html", status_code=404)
    return _kind_page(request, account, kind)


@router.post("/admin/basic/{kind}/save", dependencies=[CsrfChecked])
async def basic_save(request: Request, kind: str, account: CurrentAccount) -> Response:
    form = {k: str(v)[:1000] for k, v in (await request.form()).multi_items()}
    if kind not in EDITABLE:
        return render(request, "error.html", status_code=404)
    settings: Settings = request.app.state.settings
    item_id = form.get("id", "")
    editor = Editor(account.username, account.role, client_ip(request))
    if kind == "outlets" and any(form.get(f, "").strip() for f in RULE_COLUMNS):
        refused = ConfigError("categories and areas an outlet serves are routing rules", "outlet_rules")
        return _kind_page(request, account, kind, status_code=422, errors=[user_message(request, refused)])

    def save() -> tuple[bool, Any]:
        with session_scope(settings) as s:
            if is_digits(item_id) and kind == "outlets":
                errors = update_outlet(s, settings, int(item_id), form, editor)
                return not errors, errors
            if is_digits(item_id):
                errors = update_item(s, kind, int(item_id), form, editor)
                return not errors, errors
            row = {f: form.get(f, "").strip() for f in _fields(kind)}
            report = imports.run_import(s, settings, kind, [row])
            if report.ok:
                with session_scope(settings) as s2:
                    audit(
                        s2,
                        account.username,
                        "basic.create",
                        target=kind,
                        role=account.role,
                        ip=editor.ip,
                        name=row.get("name") or row.get("number"),
                    )
                    s2.commit()
            return report.ok, [e for _, e in report.errors]

    try:
        ok, detail = await run_in_threadpool(save)
    except imports.ImportFileError as exc:
        ok, detail = False, [user_message(request, exc)]
    if not ok:
        return _kind_page(request, account, kind, status_code=422, errors=detail)
    return RedirectResponse(f"/admin/basic/{kind}", status_code=303)


@router.post("/admin/basic/{kind}/{item_id}/delete", dependencies=[CsrfChecked])
def basic_delete(request: Request, kind: str, item_id: RowId, account: CurrentAccount) -> Response:
    if kind not in EDITABLE:
        return render(request, "error.html", status_code=404)
    with open_db(request) as s:
        obj: Any = s.get(MODELS[kind], item_id)
        if obj is None:
            return render(request, "error.html", status_code=404)
        name = getattr(obj, "name", None) or getattr(obj, "number", "")
        try:
            if kind == "outlets":
                for oa in s.exec(select(OutletArea).where(OutletArea.outlet_id == item_id)):
                    s.delete(oa)  # legacy coverage rows; the rules refuse the delete while they exist
            s.delete(obj)
            audit(
                s,
                account.username,
                "basic.delete",
                target=f"{kind}:{item_id}",
                role=account.role,
                ip=client_ip(request),
                name=name,
            )
            s.commit()
        except IntegrityError:
            s.rollback()
            return _kind_page(request, account, kind, status_code=409, errors=[f"{name}: still in use"])
    return RedirectResponse(f"/admin/basic/{kind}", status_code=303)


@router.get("/admin/basic/{kind}/export")
def basic_export(request: Request, kind: str, account: CurrentAccount) -> Response:
    """The list as an Excel file with the import's Chinese headings (so it can be edited and
    imported elsewhere). Exports are audited."""
    if kind not in EDITABLE:
        return render(request, "error.html", status_code=404)
    settings = request.app.state.settings
    rows = _rows(settings, kind)
    fields = _fields(kind)
    wb = Workbook()
    ws = wb.active
    ws.title = kind
    ws.append([imports.COLUMNS[kind][f][1] if len(imports.COLUMNS[kind][f]) > 1 else f for f in fields])
    for r in rows:
        values = []
        for f in fields:
            v = r.get(f, "")
            v = ("是" if v else "否") if isinstance(v, bool) else str(v)
            values.append(safe_cell(v))
        ws.append(values)
    buf = io.BytesIO()
    wb.save(buf)
    with open_db(request) as s:
        audit(
            s,
            account.username,
            "basic.export",
            target=kind,
            role=account.role,
            ip=client_ip(request),
            rows=len(rows),
        )
        s.commit()
    return Response(
        buf.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{kind}.xlsx"', "Cache-Control": "no-store"},
    )


@router.get("/api/basic/{kind}")
def api_basic(request: Request, kind: str, account: CurrentAccount) -> Response:
    if kind not in EDITABLE:
        return JSONResponse({"error": "unknown kind"}, status_code=404)
    return JSONResponse(_rows(request.app.state.settings, kind), headers={"Cache-Control": "no-store"})


# --- imports ------------------------------------------------------------------------------


def _jobs(request: Request) -> imports.ImportJobs:
    return request.app.state.import_jobs


def _run_job(
    settings: Settings,
    jobs: imports.ImportJobs,
    job: imports.ImportJob,
    data: bytes,
    skip_duplicates: bool,
    actor: Account,
    ip: str,
):
    try:
        rows = imports.read_table(job.filename, data)
        job.total = len(rows)
        jobs.save(job)

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total
            jobs.save(job)

        with session_scope(settings) as s:
            report = import_table(s, settings, job.kind, rows, progress, skip_duplicates)
        job.report = report.as_dict()
        job.done = job.total
        job.state = "done"
    except imports.ImportFileError as exc:
        job.error, job.state = str(exc), "failed"
    except Exception as exc:  # reported on the page; the transaction was never committed
        job.error, job.state = f"{type(exc).__name__}", "failed"
    jobs.save(job)
    with session_scope(settings) as s:
        audit(
            s,
            actor.username,
            "basic.import",
            target=job.kind,
            role=actor.role,
            ip=ip,
            file=job.filename[:128],
            state=job.state,
            imported=(job.report or {}).get("imported", 0),
            errors=len((job.report or {}).get("errors", [])),
        )
        s.commit()


# Imports run on a small pool, not a thread each: a burst of uploads waits its turn (up to
# IMPORT_QUEUE of them, then refused) instead of parsing many files at once.
IMPORT_WORKERS = 1
IMPORT_QUEUE = 4
_IMPORTS = ThreadPoolExecutor(max_workers=IMPORT_WORKERS, thread_name_prefix="import")
_IMPORT_SLOTS = threading.BoundedSemaphore(IMPORT_WORKERS + IMPORT_QUEUE)


@router.post("/admin/import", dependencies=[CsrfChecked])
async def import_upload(
    request: Request,
    account: CurrentAccount,
    kind: str = Form(""),
    skip_duplicates: str = Form(""),
    file: UploadFile | None = File(None),
) -> Response:
    if kind not in IMPORTABLE or file is None or not file.filename:
        return RedirectResponse("/admin/basic", status_code=303)
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise imports.ImportFileError("file too large")
    if file.filename.lower().endswith(".xlsx"):
        await run_in_threadpool(imports.check_xlsx, data)  # a zip bomb is refused here, at once
    if not _IMPORT_SLOTS.acquire(blocking=False):
        raise imports.ImportFileError("too many imports are waiting; try again later", code="rate_limited")
    job = imports.ImportJob(
        id=secrets.token_urlsafe(12), kind=kind, filename=file.filename[:200], owner=account.username
    )
    jobs = _jobs(request)
    jobs.save(job)
    args = (request.app.state.settings, jobs, job, data, bool(skip_duplicates), account, client_ip(request))
    try:
        _IMPORTS.submit(_run_job, *args).add_done_callback(lambda _: _IMPORT_SLOTS.release())
    except RuntimeError:  # the pool is shut down (the process is stopping)
        _IMPORT_SLOTS.release()
        raise
    return RedirectResponse(f"/admin/import/{job.id}", status_code=303)


def _job_for(request: Request, job_id: str, account: Account) -> imports.ImportJob | None:
    job = _jobs(request).get(job_id)
    return job if job is not None and job.owner == account.username else None


@router.get("/admin/import")
def import_form(request: Request, account: CurrentAccount) -> Response:
    return RedirectResponse("/admin/basic", status_code=303)


@router.get("/admin/import/{job_id}")
def import_page(request: Request, job_id: str, account: CurrentAccount) -> Response:
    job = _job_for(request, job_id, account)
    if job is None:
        return render(request, "error.html", status_code=404)
    return render(request, "admin_import.html", account=account, job=job.as_dict())


@router.get("/api/import/{job_id}")
def api_import(request: Request, job_id: str, account: CurrentAccount) -> Response:
    job = _job_for(request, job_id, account)
    if job is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse(job.as_dict(), headers={"Cache-Control": "no-store"})
