"""Residents from the pop: an unknown caller registered or linked, the full ID number on
request (audited), and the seat's own calls today. Access rules: ``views.ROUTE_ROLES``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from callcenter import ids
from callcenter.accounts.models import Account
from callcenter.audit.service import record as audit
from callcenter.config import CHINA_TZ
from callcenter.database import session_scope
from callcenter.residents import service as resident_service
from callcenter.residents.models import Resident
from web_console.views import authorize, csrf_ok, protected


def _masked(phone: str) -> str:
    """Enough for a seat to recognise a number, not enough to copy it from a list."""
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"


def _resident_brief(r: Resident) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "phone": _masked(r.phone), "community_id": r.community_id}


class RegisterResident(BaseModel):
    linkedid: str = Field(default="", max_length=40)
    name: str = Field(max_length=64)
    phone: str = Field(max_length=40)
    community_id: int | None = None
    grid_id: int | None = None
    address: str = Field(default="", max_length=255)


class LinkPhone(BaseModel):
    linkedid: str = Field(default="", max_length=40)
    phone: str = Field(max_length=40)


async def _repop(request: Request, linkedid: str, resident_id: int) -> None:
    """The caller's pop shows the resident now: the engine rebuilds it."""
    if ids.CALL_ID.match(linkedid):
        await request.app.state.bus.publish(
            "calls.resident", {"linkedid": linkedid, "resident_id": resident_id}
        )


@protected.get("/api/my/calls")
def api_my_calls(request: Request, account: Account = Depends(authorize)) -> JSONResponse:
    """The seat's calls today (China time), newest first: the console's 'my recent calls'."""
    from callcenter.calls.models import CallRecord
    from callcenter.phone import display

    ext = account.extension
    if not ext or not ids.EXTENSION.match(ext):
        return JSONResponse([])
    today = datetime.now(CHINA_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    with session_scope(request.app.state.settings) as db:
        rows = db.exec(
            select(CallRecord, Resident.name)
            .join(Resident, Resident.id == CallRecord.resident_id, isouter=True)
            .where(CallRecord.seat == ext, CallRecord.started_at >= today)
            .order_by(CallRecord.started_at.desc())
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


@protected.get("/api/residents/{resident_id}/identity")
def api_resident_identity(
    request: Request, resident_id: int, account: Account = Depends(authorize)
) -> Response:
    """A resident's full ID number and phones: shown on request only, and every request audited."""
    with session_scope(request.app.state.settings) as db:
        resident = db.get(Resident, resident_id)
        if resident is None:
            return JSONResponse({"error": "no such resident"}, status_code=404)
        ip = request.client.host if request.client else ""
        audit(
            db,
            account.username,
            "resident.view_identity",
            target=f"resident:{resident.id}",
            role=account.role,
            ip=ip,
        )
        db.commit()
        body = {
            "id": resident.id,
            "id_number": resident.id_number,
            "phone": resident.phone,
            "phone2": resident.phone2,
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@protected.get("/api/communities")
def api_communities(request: Request, account: Account = Depends(authorize)) -> JSONResponse:
    from callcenter.directory.models import Community, Jurisdiction

    with session_scope(request.app.state.settings) as db:
        rows = db.exec(
            select(Community.id, Community.name, Jurisdiction.name)
            .join(Jurisdiction, Jurisdiction.id == Community.jurisdiction_id)
            .order_by(Jurisdiction.name, Community.name)
        )
        return JSONResponse([{"id": i, "name": n, "jurisdiction": j} for i, n, j in rows])


@protected.get("/api/residents")
def api_residents(
    request: Request, account: Account = Depends(authorize), q: str = Query("", max_length=64)
) -> JSONResponse:
    with session_scope(request.app.state.settings) as db:
        return JSONResponse([_resident_brief(r) for r in resident_service.search(db, q)])


@protected.post("/api/residents")
async def api_register_resident(
    request: Request, body: RegisterResident, account: Account = Depends(authorize)
) -> Response:
    if not csrf_ok(request.session, request.headers.get("x-csrf-token")):
        return JSONResponse({"error": "csrf"}, status_code=403)
    try:
        with session_scope(request.app.state.settings) as db:
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
    except resident_service.ResidentError as exc:
        existing = _resident_brief(exc.existing) if exc.existing else None
        return JSONResponse({"error": str(exc), "existing": existing}, status_code=409 if existing else 422)
    await _repop(request, body.linkedid, resident.id)
    return JSONResponse(_resident_brief(resident), status_code=201)


@protected.post("/api/residents/{resident_id}/phones")
async def api_link_phone(
    request: Request, resident_id: int, body: LinkPhone, account: Account = Depends(authorize)
) -> Response:
    if not csrf_ok(request.session, request.headers.get("x-csrf-token")):
        return JSONResponse({"error": "csrf"}, status_code=403)
    try:
        with session_scope(request.app.state.settings) as db:
            resident = await run_in_threadpool(
                resident_service.link_phone, db, account.username, account.role, resident_id, body.phone
            )
    except resident_service.ResidentError as exc:
        existing = _resident_brief(exc.existing) if exc.existing else None
        return JSONResponse({"error": str(exc), "existing": existing}, status_code=409 if existing else 422)
    await _repop(request, body.linkedid, resident.id)
    return JSONResponse(_resident_brief(resident))
