"""Residents on the web: from the pop (an unknown caller registered or linked, the full ID number
on request, audited; the seat's own calls today) and the resident's page for seats and
supervisors (profile with the ID number masked, household, elderly profile, service archive and
orders; household members added and the elderly profile edited there, audited).
Routes: ``web_console.access.ROUTE_ROLES``. Who sees a record's sensitive data (a resident of the
seat's calls or orders, or with a stated reason), and the audit of every look:
``web_console.resident_access``. Lists show masked numbers only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from callcenter import ids
from callcenter.accounts.models import Account
from callcenter.bus import EventBus
from callcenter.calls.models import CallRecord
from callcenter.calls.service import mask_id_number
from callcenter.clock import local_day
from callcenter.config import CHINA_TZ
from callcenter.database import Reads
from callcenter.directory.models import Community, Grid, Jurisdiction
from callcenter.errors import UserError
from callcenter.messages import CallsResident, ResidentLookupAlert
from callcenter.phone import display, mask_phone
from callcenter.residents import service as resident_service
from callcenter.residents.models import Resident, ServiceArchive
from callcenter.text import digits_int
from dispatch import profile as profiles
from dispatch.models import WorkOrder
from dispatch.queries import STATUSES
from web_console import resident_access as access
from web_console.deps import BusDep, CsrfChecked, CurrentAccount, DbSession, RowId, open_db, protected_router
from web_console.render import render, show_errors_on, user_error_json
from web_console.sessions import client_ip

router = protected_router()


def _resident_brief(r: Resident) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "phone": mask_phone(r.phone), "community_id": r.community_id}


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


def _identity(resident: Resident) -> dict[str, Any]:
    return {
        "id": resident.id,
        "id_number": resident.id_number,
        "phone": resident.phone,
        "phone2": resident.phone2,
    }


async def _alert(request: Request, alert: ResidentLookupAlert | None) -> None:
    if alert is not None:
        await request.app.state.bus.publish(alert.topic, alert.to_json())


@router.get("/api/residents/{resident_id}/identity")
async def api_resident_identity(request: Request, resident_id: RowId, account: CurrentAccount) -> Response:
    """A resident's full ID number and phones, for a resident linked to the account's calls or
    orders (``resident_access``); anyone else's needs the POST with a reason. Always audited."""
    settings = request.app.state.settings

    def work() -> tuple[dict[str, Any] | None, bool, ResidentLookupAlert | None]:
        """(the identity or None, refused, the alert to publish)."""
        with open_db(request) as db:
            resident = db.get(Resident, resident_id)
            if resident is None:
                return None, False, None
            why = access.basis(db, settings, request.app.state.seat_calls, account, resident_id)
            if not why:
                access.refuse(db, account, resident_id, client_ip(request), "identity")
                alert = access.burst_alert(db, settings, account)
                db.commit()
                return None, True, alert
            access.allow(db, account, resident_id, client_ip(request), access.VIEW_IDENTITY, why)
            db.commit()
            return _identity(resident), False, None

    body, refused, alert = await run_in_threadpool(work)
    await _alert(request, alert)
    if refused:
        return user_error_json(request, access.ResidentAccessError("a reason is needed", code="forbidden"))
    if body is None:
        return JSONResponse({"error": "no such resident"}, status_code=404)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


class RevealReason(BaseModel):
    reason: str = Field(max_length=400)


@router.post("/api/residents/{resident_id}/identity", dependencies=[CsrfChecked])
async def api_reveal_identity(
    request: Request, resident_id: RowId, body: RevealReason, account: CurrentAccount
) -> Response:
    """The same for a resident not linked to the account's work: with a stated reason, within the
    hourly limit, audited with the reason."""
    settings = request.app.state.settings

    def work() -> tuple[dict[str, Any] | None, UserError | None, ResidentLookupAlert | None]:
        with open_db(request) as db:
            resident = db.get(Resident, resident_id)
            if resident is None:
                return None, None, None
            try:
                access.reveal(db, settings, account, resident_id, body.reason, client_ip(request))
            except access.ResidentAccessError as exc:
                alert = access.burst_alert(db, settings, account) if exc.code == "rate_limited" else None
                db.commit()
                return None, exc, alert
            alert = access.burst_alert(db, settings, account)
            db.commit()
            return _identity(resident), None, alert

    found, error, alert = await run_in_threadpool(work)
    await _alert(request, alert)
    if error is not None:
        return user_error_json(request, error)
    if found is None:
        return JSONResponse({"error": "no such resident"}, status_code=404)
    return JSONResponse(found, headers={"Cache-Control": "no-store"})


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


def _masked_page(
    request: Request, account: Account, r: Resident, status_code: int, error: str, community: str, grid: str
) -> Response:
    """A record not linked to the account's work: who it is, nothing sensitive, and the form to
    state a reason."""
    view = {
        "id": r.id,
        "name": r.name,
        "phone": mask_phone(r.phone),
        "id_number": mask_id_number(r.id_number),
        "community": community,
        "grid": grid,
        "age": None,
    }
    return render(
        request,
        "resident_page.html",
        status_code=status_code,
        account=account,
        resident=view,
        sensitive=False,
        reason_max=access.REASON_MAX,
        error=error,
    )


def _page(
    request: Request, account: Account, resident_id: RowId, status_code: int = 200, error: str = ""
) -> Response:
    with open_db(request) as db:
        r = db.get(Resident, resident_id)
        if r is None:
            return render(request, "error.html", status_code=404)
        community = db.get(Community, r.community_id) if r.community_id else None
        grid = db.get(Grid, r.grid_id) if r.grid_id else None
        why = access.basis(db, request.app.state.settings, request.app.state.seat_calls, account, resident_id)
        if not why:
            names = (community.name if community else "", grid.name if grid else "")
            return _masked_page(request, account, r, status_code, error, *names)
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
        sensitive=True,
        reason_max=access.REASON_MAX,
        error=error,
    )


def _show_page_errors(request: Request, account: Account, resident_id: RowId) -> None:
    """A refused change shows the page again with the reason (404 for an unknown resident)."""
    show_errors_on(
        request,
        lambda exc, message: _page(request, account, resident_id, status_code=exc.status, error=message),
    )


def _audit_view(request: Request, account: Account, resident_id: RowId) -> ResidentLookupAlert | None:
    """Every opening of a resident's page is audited, with why its sensitive data was shown (or
    that it was not)."""
    settings = request.app.state.settings
    with open_db(request) as db:
        if db.get(Resident, resident_id) is None:
            return None
        why = access.basis(db, settings, request.app.state.seat_calls, account, resident_id)
        alert = None
        if why:
            access.allow(db, account, resident_id, client_ip(request), access.VIEW, why)
        else:
            access.refuse(db, account, resident_id, client_ip(request), "page")
            alert = access.burst_alert(db, settings, account)
        db.commit()
        return alert


@router.get("/residents/{resident_id}")
async def resident_page(request: Request, resident_id: RowId, account: CurrentAccount) -> Response:
    await _alert(request, await run_in_threadpool(_audit_view, request, account, resident_id))
    return await run_in_threadpool(_page, request, account, resident_id)


@router.post("/residents/{resident_id}/reveal", dependencies=[CsrfChecked])
async def resident_reveal(request: Request, resident_id: RowId, account: CurrentAccount) -> Response:
    """A stated reason opens a record not linked to the account's work for a while (within the
    hourly limit); a refusal shows the page again with the reason why (422, 429)."""
    form = await request.form()
    settings = request.app.state.settings

    def work() -> tuple[UserError | None, ResidentLookupAlert | None]:
        with open_db(request) as db:
            if db.get(Resident, resident_id) is None:
                raise access.ResidentAccessError("no such resident", code="not_found")
            error: UserError | None = None
            try:
                access.reveal(db, settings, account, resident_id, form.get("reason", ""), client_ip(request))
            except access.ResidentAccessError as exc:
                error = exc
            alert = (
                access.burst_alert(db, settings, account)
                if error is None or error.code != "invalid"
                else None
            )
            db.commit()
            return error, alert

    _show_page_errors(request, account, resident_id)
    error, alert = await run_in_threadpool(work)
    await _alert(request, alert)
    if error is not None:
        raise error
    return RedirectResponse(f"/residents/{resident_id}", status_code=303)


def _require_basis(db: Session, request: Request, account: Account, resident_id: RowId) -> None:
    """Changing a record shows it again: only for a record the account may see."""
    if not access.basis(db, request.app.state.settings, request.app.state.seat_calls, account, resident_id):
        raise access.ResidentAccessError("a reason is needed", code="forbidden")


@router.post("/residents/{resident_id}/household", dependencies=[CsrfChecked])
async def resident_household(request: Request, resident_id: RowId, account: CurrentAccount) -> Response:
    form = await request.form()
    year = str(form.get("birth_year", "")).strip()

    def work() -> None:
        with open_db(request) as db:
            _require_basis(db, request, account, resident_id)
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
            _require_basis(db, request, account, resident_id)
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
