"""Residents on the web: from the pop (an unknown caller registered or linked, the full ID number
on request, audited; the seat's own calls today) and the resident's page for seats and
supervisors (profile with the ID number masked, household, elderly profile, service archive and
orders; household members added and the elderly profile edited there, audited).
Access rules: ``access.ROUTE_ROLES``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter import ids
from callcenter.accounts.models import Account
from callcenter.audit.service import record as audit
from callcenter.bus import EventBus
from callcenter.calls.models import CallRecord
from callcenter.calls.service import mask_id_number
from callcenter.clock import local_day
from callcenter.config import CHINA_TZ
from callcenter.database import Reads
from callcenter.directory.models import Community, Grid, Jurisdiction
from callcenter.errors import UserError
from callcenter.messages import CallsResident
from callcenter.phone import display
from callcenter.residents import service as resident_service
from callcenter.residents.models import Resident, ServiceArchive
from callcenter.text import digits_int
from dispatch import profile as profiles
from dispatch.models import WorkOrder
from dispatch.queries import STATUSES
from web_console.deps import BusDep, CsrfChecked, CurrentAccount, DbSession, RowId, open_db, protected_router
from web_console.render import render, show_errors_on, user_error_json
from web_console.sessions import client_ip

router = protected_router()


def _masked(phone: str) -> str:
    """Enough for a seat to recognise a number, not enough to copy it from a list."""
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"


def _resident_brief(r: Resident) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "phone": _masked(r.phone), "community_id": r.community_id}


class RegisterResident(BaseModel):
    linkedid: str = Field(default="", max_length=40)
    name: str = Field(max_length=64)
    phone: str = Field(max_length=40)
    community_id: RowId | None = None
    grid_id: RowId | None = None
    address: str = Field(default="", max_length=255)


class LinkPhone(BaseModel):
    linkedid: str = Field(default="", max_length=40)
    phone: str = Field(max_length=40)


async def _repop(bus: EventBus, linkedid: str, resident_id: RowId | None) -> None:
    """The caller's pop shows the resident now: the engine rebuilds it."""
    if ids.CALL_ID.fullmatch(linkedid):
        linked = CallsResident(linkedid=linkedid, resident_id=resident_id)
        await bus.publish(linked.topic, linked.to_json())


def _show_resident_errors(request: Request) -> None:
    """A refused registration or link: 409 with the resident a duplicate points at, else 422."""

    def refused(exc: UserError, message: str) -> Response:
        existing = getattr(exc, "existing", None)
        brief = _resident_brief(existing) if existing else None
        return user_error_json(request, exc, 409 if brief else 422, existing=brief)

    show_errors_on(request, refused)


@router.get("/api/my/calls")
def api_my_calls(request: Request, account: CurrentAccount) -> JSONResponse:
    """The seat's calls today (China time), newest first: the console's 'my recent calls'."""
    ext = account.extension
    if not ext or not ids.EXTENSION.fullmatch(ext):
        return JSONResponse([])
    today = datetime.now(CHINA_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    with open_db(request) as db:
        rows = db.exec(
            select(CallRecord, Resident.name)
            .join(Resident, col(Resident.id) == col(CallRecord.resident_id), isouter=True)
            .where(CallRecord.seat == ext, CallRecord.started_at >= today)
            .order_by(col(CallRecord.started_at).desc())
            .limit(20)
        )
        calls = [
            {
                "linkedid": c.linkedid,
                "started_at": c.started_at.isoformat(),
                "caller": display(c.caller) or c.caller,
                "resident": name or "",
                "order_12345": c.order_12345,
                "wait_s": c.wait_s,
                "talk_s": c.talk_s,
                "outcome": c.outcome,
            }
            for c, name in rows
        ]
    return JSONResponse(calls, headers={"Cache-Control": "no-store"})


@router.get("/api/residents/{resident_id}/identity")
def api_resident_identity(request: Request, resident_id: RowId, account: CurrentAccount) -> Response:
    """A resident's full ID number and phones: shown on request only, and every request audited."""
    with open_db(request) as db:
        resident = db.get(Resident, resident_id)
        if resident is None:
            return JSONResponse({"error": "no such resident"}, status_code=404)
        audit(
            db,
            account.username,
            "resident.view_identity",
            target=f"resident:{resident.id}",
            role=account.role,
            ip=client_ip(request),
        )
        db.commit()
        body = {
            "id": resident.id,
            "id_number": resident.id_number,
            "phone": resident.phone,
            "phone2": resident.phone2,
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/api/communities")
def api_communities(account: CurrentAccount, db: DbSession) -> JSONResponse:
    rows = db.exec(
        select(Community.id, Community.name, Jurisdiction.name)
        .join(Jurisdiction, col(Jurisdiction.id) == col(Community.jurisdiction_id))
        .order_by(Jurisdiction.name, Community.name)
    )
    return JSONResponse([{"id": i, "name": n, "jurisdiction": j} for i, n, j in rows])


@router.get("/api/residents")
def api_residents(account: CurrentAccount, db: DbSession, q: str = Query("", max_length=64)) -> JSONResponse:
    return JSONResponse([_resident_brief(r) for r in resident_service.search(db, q)])


@router.post("/api/residents", dependencies=[CsrfChecked])
async def api_register_resident(
    request: Request, body: RegisterResident, account: CurrentAccount, bus: BusDep
) -> Response:
    _show_resident_errors(request)
    with open_db(request) as db:
        resident = await run_in_threadpool(
            resident_service.register,
            db,
            account.username,
            account.role,
            body.name,
            body.phone,
            body.community_id,
            body.grid_id,
            body.address,
        )
    await _repop(bus, body.linkedid, resident.id)
    return JSONResponse(_resident_brief(resident), status_code=201)


@router.post("/api/residents/{resident_id}/phones", dependencies=[CsrfChecked])
async def api_link_phone(
    request: Request, resident_id: RowId, body: LinkPhone, account: CurrentAccount, bus: BusDep
) -> Response:
    _show_resident_errors(request)
    with open_db(request) as db:
        resident = await run_in_threadpool(
            resident_service.link_phone, db, account.username, account.role, resident_id, body.phone
        )
    await _repop(bus, body.linkedid, resident.id)
    return JSONResponse(_resident_brief(resident))


# --- the resident's page -------------------------------------------------------------------


def _page(
    request: Request, account: Account, resident_id: RowId, status_code: int = 200, error: str = ""
) -> Response:
    with open_db(request) as db:
        r = db.get(Resident, resident_id)
        if r is None:
            return render(request, "error.html", status_code=404)
        community = db.get(Community, r.community_id) if r.community_id else None
        grid = db.get(Grid, r.grid_id) if r.grid_id else None
        assert r.id is not None
        extras = profiles.resident_extras(Reads(db), r.id)
        archive = db.exec(
            select(ServiceArchive)
            .where(ServiceArchive.resident_id == r.id)
            .order_by(col(ServiceArchive.delivered_at).desc())
            .limit(100)
        ).all()
        orders = db.exec(
            select(WorkOrder)
            .where(WorkOrder.resident_id == r.id)
            .order_by(col(WorkOrder.created_at).desc())
            .limit(100)
        ).all()
        view = {
            "id": r.id,
            "name": r.name,
            "phone": display(r.phone) or r.phone,
            "id_number": mask_id_number(r.id_number),
            "address": r.address,
            "community": community.name if community else "",
            "grid": grid.name if grid else "",
            "age": None,
            "elderly": r.elderly,
            "lives_alone": r.lives_alone,
            "vulnerable": r.vulnerable,
            "emergency_contact": r.emergency_contact,
        }
        if r.birth_year:
            view["age"] = datetime.now().year - r.birth_year
        archive_view = [
            {
                "at": local_day(a.delivered_at),
                "service": a.service,
                "outlet": a.outlet_name,
                "outcome": a.outcome,
            }
            for a in archive
        ]
        orders_view = [
            {
                "id": o.id,
                "number": o.number,
                "type": o.order_type,
                "status": o.status,
                "summary": o.summary,
                "at": local_day(o.created_at),
            }
            for o in orders
        ]
    return render(
        request,
        "resident_page.html",
        status_code=status_code,
        account=account,
        resident=view,
        household=extras["household"],
        elderly=extras["elderly"] or {},
        archive=archive_view,
        orders=orders_view,
        statuses=STATUSES,
        error=error,
    )


def _show_page_errors(request: Request, account: Account, resident_id: RowId) -> None:
    """A refused change shows the page again with the reason (404 for an unknown resident)."""
    show_errors_on(
        request,
        lambda exc, message: _page(request, account, resident_id, status_code=exc.status, error=message),
    )


@router.get("/residents/{resident_id}")
def resident_page(request: Request, resident_id: RowId, account: CurrentAccount) -> Response:
    return _page(request, account, resident_id)


@router.post("/residents/{resident_id}/household", dependencies=[CsrfChecked])
async def resident_household(request: Request, resident_id: RowId, account: CurrentAccount) -> Response:
    form = await request.form()
    year = str(form.get("birth_year", "")).strip()

    def work() -> None:
        with open_db(request) as db:
            profiles.add_household_member(
                db,
                account.username,
                account.role,
                resident_id,
                name=str(form.get("name", ""))[:64],
                relation=str(form.get("relation", ""))[:16],
                phone=str(form.get("phone", ""))[:40],
                birth_year=digits_int(year, 4),
            )
            db.commit()

    _show_page_errors(request, account, resident_id)
    await run_in_threadpool(work)
    return RedirectResponse(f"/residents/{resident_id}", status_code=303)


@router.post("/residents/{resident_id}/elderly", dependencies=[CsrfChecked])
async def resident_elderly(request: Request, resident_id: RowId, account: CurrentAccount) -> Response:
    form = await request.form()

    def work() -> None:
        with open_db(request) as db:
            profiles.save_elderly_profile(
                db,
                account.username,
                account.role,
                resident_id,
                health_notes=str(form.get("health_notes", ""))[:500],
                emergency_phone=str(form.get("emergency_phone", ""))[:40],
                caregiver=str(form.get("caregiver", ""))[:64],
                caregiver_phone=str(form.get("caregiver_phone", ""))[:40],
                lives_alone=form.get("lives_alone") == "1",
                vulnerable=form.get("vulnerable") == "1",
            )
            db.commit()

    _show_page_errors(request, account, resident_id)
    await run_in_threadpool(work)
    return RedirectResponse(f"/residents/{resident_id}", status_code=303)
