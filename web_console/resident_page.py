"""The resident's page for seats and supervisors: profile (ID number masked), household, elderly
profile, service archive and orders; household members added and the elderly profile edited here
(audited). Access rules: ``views.ROUTE_ROLES``."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter.accounts.models import Account
from callcenter.calls.service import mask_id_number
from callcenter.clock import local_day
from callcenter.database import Reads, session_scope
from callcenter.directory.models import Community, Grid
from callcenter.phone import display
from callcenter.residents.models import Resident, ServiceArchive
from dispatch import profile as profiles
from dispatch.models import WorkOrder
from dispatch.service import DispatchError
from web_console.orders import STATUSES
from web_console.views import authorize, csrf_ok, forbidden_response, protected, render


def _page(
    request: Request, account: Account, resident_id: int, status_code: int = 200, error: str = ""
) -> Response:
    with session_scope(request.app.state.settings) as db:
        r = db.get(Resident, resident_id)
        if r is None:
            return render(request, "error.html", status_code=404)
        community = db.get(Community, r.community_id) if r.community_id else None
        grid = db.get(Grid, r.grid_id) if r.grid_id else None
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
            from datetime import datetime

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


@protected.get("/residents/{resident_id}")
def resident_page(request: Request, resident_id: int, account: Account = Depends(authorize)) -> Response:
    return _page(request, account, resident_id)


@protected.post("/residents/{resident_id}/household")
async def resident_household(
    request: Request, resident_id: int, account: Account = Depends(authorize)
) -> Response:
    form = await request.form()
    if not csrf_ok(request.session, str(form.get("csrf", ""))):
        return forbidden_response(request)
    year = str(form.get("birth_year", "")).strip()

    def work() -> None:
        with session_scope(request.app.state.settings) as db:
            profiles.add_household_member(
                db,
                account.username,
                account.role,
                resident_id,
                name=str(form.get("name", ""))[:64],
                relation=str(form.get("relation", ""))[:16],
                phone=str(form.get("phone", ""))[:40],
                birth_year=int(year) if year.isdigit() else None,
            )
            db.commit()

    try:
        await run_in_threadpool(work)
    except DispatchError as exc:
        code = 404 if exc.code == "not_found" else 422
        return _page(request, account, resident_id, status_code=code, error=str(exc))
    return RedirectResponse(f"/residents/{resident_id}", status_code=303)


@protected.post("/residents/{resident_id}/elderly")
async def resident_elderly(
    request: Request, resident_id: int, account: Account = Depends(authorize)
) -> Response:
    form = await request.form()
    if not csrf_ok(request.session, str(form.get("csrf", ""))):
        return forbidden_response(request)

    def work() -> None:
        with session_scope(request.app.state.settings) as db:
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

    try:
        await run_in_threadpool(work)
    except DispatchError as exc:
        code = 404 if exc.code == "not_found" else 422
        return _page(request, account, resident_id, status_code=code, error=str(exc))
    return RedirectResponse(f"/residents/{resident_id}", status_code=303)
