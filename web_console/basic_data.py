"""Basic data administration (基础数据): jurisdictions, communities, grids, service areas, outlets
and suppliers, service numbers; imports from CSV/Excel with a progress bar and a row-by-row
report. Adding one item is an import of one row (the same checks). Access rules:
``views.ROUTE_ROLES``; every change and import is in the audit log."""

from __future__ import annotations

import secrets
import threading
from typing import Any

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from callcenter import phone
from callcenter.accounts.models import Account
from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory import imports
from callcenter.directory.models import Community, Grid, Jurisdiction, Outlet, OutletArea, ServiceNumber
from callcenter.residents.imports import import_table
from callcenter.statistics.exports import safe_cell
from web_console.views import authorize, csrf_ok, forbidden_response, protected, render

EDITABLE = ("jurisdictions", "communities", "grids", "service_areas", "outlets", "service_numbers")
# What the edit form of an existing item changes (outlets: their contacts, see _update_outlet).
EDIT_FIELDS: dict[str, tuple[str, ...]] = {
    "jurisdictions": ("name", "code"),
    "communities": ("name", "urban"),
    "grids": ("name",),
    "service_areas": ("name", "communities"),
    "service_numbers": ("title", "queue_name"),
}
IMPORTABLE = (*EDITABLE, "residents")
MAX_UPLOAD = imports.MAX_BYTES


def _model(kind: str):
    from callcenter.directory.models import ServiceArea

    return {
        "jurisdictions": Jurisdiction,
        "communities": Community,
        "grids": Grid,
        "service_areas": ServiceArea,
        "outlets": Outlet,
        "service_numbers": ServiceNumber,
    }[kind]


def _rows(settings: Settings, kind: str) -> list[dict[str, Any]]:
    """What the list page and the API show for each item."""
    from callcenter.directory.models import ServiceArea, ServiceAreaCommunity

    with session_scope(settings) as s:
        jur = {j.id: j.name for j in s.exec(select(Jurisdiction))}
        com = {c.id: c.name for c in s.exec(select(Community))}
        areas = {a.id: a.name for a in s.exec(select(ServiceArea))}
        if kind == "jurisdictions":
            return [{"id": j.id, "name": j.name, "code": j.code} for j in s.exec(select(Jurisdiction))]
        if kind == "communities":
            return [
                {"id": c.id, "name": c.name, "jurisdiction": jur.get(c.jurisdiction_id, ""), "urban": c.urban}
                for c in s.exec(select(Community).order_by(Community.jurisdiction_id, Community.id))
            ]
        if kind == "grids":
            return [
                {"id": g.id, "name": g.name, "community": com.get(g.community_id, "")}
                for g in s.exec(select(Grid).order_by(Grid.community_id, Grid.id))
            ]
        if kind == "service_areas":
            members: dict[int, list[str]] = {}
            for m in s.exec(select(ServiceAreaCommunity)):
                members.setdefault(m.area_id, []).append(com.get(m.community_id, ""))
            return [
                {"id": a.id, "name": a.name, "communities": "；".join(members.get(a.id, []))}
                for a in s.exec(select(ServiceArea))
            ]
        if kind == "outlets":
            covered: dict[int, list[str]] = {}
            for oa in s.exec(select(OutletArea)):
                covered.setdefault(oa.outlet_id, []).append(areas.get(oa.area_id, ""))
            return [
                {
                    "id": o.id,
                    "name": o.name,
                    "kind": o.kind,
                    "community": com.get(o.community_id, "") if o.community_id else "",
                    "categories": o.categories,
                    "areas": "；".join(covered.get(o.id, [])),
                    "phone": phone.display(o.phone) if o.phone.startswith("+") else o.phone,
                    "phones": o.phones,
                    "email": o.email,
                    "emails": o.emails,
                    "working_hours": o.working_hours,
                    "active": o.active,
                }
                for o in s.exec(select(Outlet).order_by(Outlet.id))
            ]
        if kind == "service_numbers":
            return [
                {"id": n.id, "number": n.number, "title": n.title, "queue_name": n.queue_name}
                for n in s.exec(select(ServiceNumber))
            ]
    raise KeyError(kind)


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


@protected.get("/admin/basic")
def basic_index(request: Request, account: Account = Depends(authorize)) -> Response:
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
        fields=list(imports.COLUMNS[kind]),
        edit_fields=EDIT_FIELDS.get(kind, ()),
        rows=_rows(settings, kind),
        error=notice.get("error"),
        errors=notice.get("errors") or [],
        saved=notice.get("saved"),
    )


@protected.get("/admin/basic/{kind}")
def basic_kind(request: Request, kind: str, account: Account = Depends(authorize)) -> Response:
    if kind not in EDITABLE:
        return render(request, "error.html", status_code=404)
    return _kind_page(request, account, kind)


@protected.post("/admin/basic/{kind}/save")
async def basic_save(request: Request, kind: str, account: Account = Depends(authorize)) -> Response:
    form = {k: str(v)[:1000] for k, v in (await request.form()).multi_items()}
    if not csrf_ok(request.session, form.get("csrf")):
        return forbidden_response(request)
    if kind not in EDITABLE:
        return render(request, "error.html", status_code=404)
    settings: Settings = request.app.state.settings
    item_id = form.get("id", "")

    def save() -> tuple[bool, Any]:
        with session_scope(settings) as s:
            if item_id.isdigit() and kind == "outlets":
                return _update_outlet(s, settings, int(item_id), form, account, _ip(request))
            if item_id.isdigit():
                return _update(s, kind, int(item_id), form, account, _ip(request))
            row = {f: form.get(f, "").strip() for f in imports.COLUMNS[kind]}
            report = imports.run_import(s, settings, kind, [row])
            if report.ok:
                with session_scope(settings) as s2:
                    audit(
                        s2,
                        account.username,
                        "basic.create",
                        target=kind,
                        role=account.role,
                        ip=_ip(request),
                        name=row.get("name") or row.get("number"),
                    )
                    s2.commit()
            return report.ok, [e for _, e in report.errors]

    try:
        ok, detail = await run_in_threadpool(save)
    except imports.ImportFileError as exc:
        ok, detail = False, [str(exc)]
    if not ok:
        return _kind_page(request, account, kind, status_code=422, errors=detail)
    return RedirectResponse(f"/admin/basic/{kind}", status_code=303)


def _update(s, kind: str, item_id: int, form: dict[str, str], account: Account, ip: str):
    """Edit an existing item's own fields (references to it stay as they are)."""
    import re

    from callcenter.directory.models import ServiceAreaCommunity

    obj = s.get(_model(kind), item_id)
    if obj is None:
        return False, ["not found"]
    values = {f: " ".join(form.get(f, "").split()) for f in EDIT_FIELDS[kind]}
    errors = []
    if "name" in values and not values["name"]:
        errors.append("name is required")
    if "name" in values and len(values["name"]) > 64:
        errors.append("name: longer than 64 characters")
    if kind == "jurisdictions":
        other = s.exec(
            select(Jurisdiction).where(Jurisdiction.name == values["name"], Jurisdiction.id != item_id)
        )
        if other.first() is not None:
            errors.append(f"jurisdiction {values['name']!r} exists")
    if kind == "service_numbers" and not re.fullmatch(r"[a-z0-9_-]{1,32}", values["queue_name"]):
        errors.append("queue_name: lowercase letters, digits, - and _")
    members: list[int] = []
    if kind == "service_areas":
        look = imports.Lookups(s)
        for name in imports.split_list(values.pop("communities")):
            try:
                members.append(look.community(name).id)
            except imports.RowError as exc:
                errors.append(str(exc))
    if kind == "communities":
        try:
            values["urban"] = imports.parse_bool(values["urban"] or "是", "urban")
        except imports.RowError as exc:
            errors.append(str(exc))
    if errors:
        return False, errors
    before = {k: getattr(obj, k) for k in values}
    for k, v in values.items():
        setattr(obj, k, v)
    s.add(obj)
    if kind == "service_areas":
        for m in s.exec(select(ServiceAreaCommunity).where(ServiceAreaCommunity.area_id == item_id)):
            s.delete(m)
        for cid in members:
            s.add(ServiceAreaCommunity(area_id=item_id, community_id=cid))
    audit(
        s,
        account.username,
        "basic.update",
        target=f"{kind}:{item_id}",
        role=account.role,
        ip=ip,
        before=before,
        after=values,
    )
    s.commit()
    return True, []


def _update_outlet(s, settings: Settings, outlet_id: int, form: dict[str, str], account: Account, ip: str):
    """Outlets change contacts and hours often (the SMS reply check uses these numbers)."""
    outlet = s.get(Outlet, outlet_id)
    if outlet is None:
        return False, ["not found"]
    errors = []
    numbers = []
    for raw in [form.get("phone", "")] + imports.split_list(form.get("phones", "")):
        if not raw:
            continue
        n = phone.normalize(raw, settings.default_region, settings.default_area_code)
        if n is None:
            errors.append(f"{raw!r} is not a phone number")
        numbers.append(n)
    emails = [form.get("email", "")] + imports.split_list(form.get("emails", ""))
    for e in emails:
        if e and not imports.EMAIL.match(e):
            errors.append(f"{e!r} is not an e-mail address")
    if not form.get("phone"):
        errors.append("phone is required")
    area_ids: list[int] | None = None
    if "areas" in form:
        look = imports.Lookups(s)
        area_ids = []
        for name in imports.split_list(form["areas"]):
            try:
                area_ids.append(look.area(name).id)
            except imports.RowError as exc:
                errors.append(str(exc))
    if errors:
        return False, errors
    if "categories" in form:
        outlet.categories = "，".join(imports.split_list(form["categories"]))[:255]
    if area_ids is not None:
        for oa in s.exec(select(OutletArea).where(OutletArea.outlet_id == outlet.id)):
            s.delete(oa)
        for aid in area_ids:
            s.add(OutletArea(outlet_id=outlet.id, area_id=aid))
    before = {"phone": outlet.phone, "phones": outlet.phones, "email": outlet.email, "emails": outlet.emails}
    outlet.phone = numbers[0] or ""
    outlet.phones = ",".join(n for n in numbers[1:] if n)
    outlet.email = emails[0]
    outlet.emails = ",".join(e for e in emails[1:] if e)
    outlet.working_hours = form.get("working_hours", "").strip()[:64]
    outlet.active = form.get("active", "on") in ("on", "true", "1")
    s.add(outlet)
    audit(
        s,
        account.username,
        "basic.outlet_update",
        target=f"outlet:{outlet.id}",
        role=account.role,
        ip=ip,
        before=before,
        after={"phone": outlet.phone, "phones": outlet.phones, "email": outlet.email},
    )
    s.commit()
    return True, []


@protected.post("/admin/basic/{kind}/{item_id}/delete")
def basic_delete(
    request: Request, kind: str, item_id: int, csrf: str = Form(""), account: Account = Depends(authorize)
) -> Response:
    if not csrf_ok(request.session, csrf):
        return forbidden_response(request)
    if kind not in EDITABLE:
        return render(request, "error.html", status_code=404)
    settings = request.app.state.settings
    with session_scope(settings) as s:
        obj = s.get(_model(kind), item_id)
        if obj is None:
            return render(request, "error.html", status_code=404)
        name = getattr(obj, "name", None) or getattr(obj, "number", "")
        try:
            if kind == "outlets":
                for oa in s.exec(select(OutletArea).where(OutletArea.outlet_id == item_id)):
                    s.delete(oa)
            s.delete(obj)
            audit(
                s,
                account.username,
                "basic.delete",
                target=f"{kind}:{item_id}",
                role=account.role,
                ip=_ip(request),
                name=name,
            )
            s.commit()
        except IntegrityError:
            s.rollback()
            return _kind_page(request, account, kind, status_code=409, errors=[f"{name}: still in use"])
    return RedirectResponse(f"/admin/basic/{kind}", status_code=303)


@protected.get("/admin/basic/{kind}/export")
def basic_export(request: Request, kind: str, account: Account = Depends(authorize)) -> Response:
    """The list as an Excel file with the import's Chinese headings (so it can be edited and
    imported elsewhere). Exports are audited."""
    import io

    from openpyxl import Workbook

    if kind not in EDITABLE:
        return render(request, "error.html", status_code=404)
    settings = request.app.state.settings
    rows = _rows(settings, kind)
    fields = list(imports.COLUMNS[kind])
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
    with session_scope(settings) as s:
        audit(
            s,
            account.username,
            "basic.export",
            target=kind,
            role=account.role,
            ip=_ip(request),
            rows=len(rows),
        )
        s.commit()
    return Response(
        buf.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{kind}.xlsx"', "Cache-Control": "no-store"},
    )


@protected.get("/api/basic/{kind}")
def api_basic(request: Request, kind: str, account: Account = Depends(authorize)) -> Response:
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


@protected.post("/admin/import")
async def import_upload(
    request: Request,
    kind: str = Form(""),
    csrf: str = Form(""),
    skip_duplicates: str = Form(""),
    file: UploadFile | None = File(None),
    account: Account = Depends(authorize),
) -> Response:
    if not csrf_ok(request.session, csrf):
        return forbidden_response(request)
    if kind not in IMPORTABLE or file is None or not file.filename:
        return RedirectResponse("/admin/basic", status_code=303)
    data = await file.read(MAX_UPLOAD + 1)
    job = imports.ImportJob(
        id=secrets.token_urlsafe(12), kind=kind, filename=file.filename[:200], owner=account.username
    )
    jobs = _jobs(request)
    if len(data) > MAX_UPLOAD:
        job.state, job.error = "failed", "file too large"
    jobs.save(job)
    if job.state == "running":
        threading.Thread(
            target=_run_job,
            args=(request.app.state.settings, jobs, job, data, bool(skip_duplicates), account, _ip(request)),
            name=f"import-{job.id}",
            daemon=True,
        ).start()
    return RedirectResponse(f"/admin/import/{job.id}", status_code=303)


def _job_for(request: Request, job_id: str, account: Account) -> imports.ImportJob | None:
    job = _jobs(request).get(job_id)
    return job if job is not None and job.owner == account.username else None


@protected.get("/admin/import")
def import_form(request: Request, account: Account = Depends(authorize)) -> Response:
    return RedirectResponse("/admin/basic", status_code=303)


@protected.get("/admin/import/{job_id}")
def import_page(request: Request, job_id: str, account: Account = Depends(authorize)) -> Response:
    job = _job_for(request, job_id, account)
    if job is None:
        return render(request, "error.html", status_code=404)
    return render(request, "admin_import.html", account=account, job=job.as_dict())


@protected.get("/api/import/{job_id}")
def api_import(request: Request, job_id: str, account: Account = Depends(authorize)) -> Response:
    job = _job_for(request, job_id, account)
    if job is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse(job.as_dict(), headers={"Cache-Control": "no-store"})
