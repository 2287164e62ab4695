"""The seat console's work-order API: the order form's options, the routing suggestion, creating
an order from a call, the orders of a call or resident, and linking a later call to an order.
Access rules: ``access.ROUTE_ROLES``; refusals (``DispatchError``) answer through the one
``UserError`` handler."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter.accounts.models import Account
from callcenter.audit.service import record as audit
from callcenter.clock import utcnow
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory.models import Community, Grid, Outlet
from callcenter.phone import mask_phone
from callcenter.residents.models import Resident
from dispatch import flows, routing, service, transitions
from dispatch.actors import Actor
from dispatch.errors import DispatchError
from dispatch.models import ORDER_TYPES, OrderCall, WorkOrder
from dispatch.queries import categories, order_view, order_views, outlets
from web_console.deps import CsrfChecked, CurrentAccount, RowId, SettingsDep, open_db, protected_router

router = protected_router()


@router.get("/api/dispatch/options")
def api_dispatch_options(request: Request, account: CurrentAccount) -> JSONResponse:
    with open_db(request) as db:
        body = {
            "types": list(ORDER_TYPES),
            "urgencies": ["normal", "urgent"],
            "categories": categories(db),
            "outlets": [{"id": o.id, "name": o.name, "kind": o.kind} for o in outlets(db)],
            "communities": [
                {"id": c.id, "name": c.name} for c in db.exec(select(Community).order_by(Community.name))
            ],
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/api/orders/suggest")
def api_orders_suggest(
    request: Request,
    account: CurrentAccount,
    category_id: RowId | None = Query(None),
    community_id: RowId | None = Query(None),
    resident_id: RowId | None = Query(None),
    address: str = Query("", max_length=255),
) -> JSONResponse:
    """The routing suggestion and an open order about the same matter (for 并单)."""
    with open_db(request) as db:
        hit = routing.suggest(db, category_id, community_id)
        outlet = db.get(Outlet, hit.outlet_id) if hit else None
        probe = WorkOrder(
            number="", category_id=category_id, resident_id=resident_id, address=address.strip()[:255]
        )
        repeat = service.find_repeat(db, probe, utcnow())
        body = {
            "outlet": {"id": outlet.id, "name": outlet.name, "reason": hit.reason}
            if outlet and hit
            else None,
            "repeat": {
                "id": repeat.id,
                "number": repeat.number,
                "status": repeat.status,
                "summary": repeat.summary,
            }
            if repeat
            else None,
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


class NewOrder(BaseModel):
    linkedid: str = Field(default="", max_length=64)
    resident_id: RowId | None = None
    caller_phone: str = Field(default="", max_length=40)
    caller_name: str = Field(default="", max_length=64)
    order_type: str = Field(max_length=8)
    category_id: RowId | None = None
    urgency: str = Field(default="normal", max_length=8)
    community_id: RowId | None = None
    grid_id: RowId | None = None
    address: str = Field(default="", max_length=255)
    summary: str = Field(max_length=1000)
    # What happens right away: dispatch to this outlet, or answer on the call (直接答复).
    outlet_id: RowId | None = None
    answer: str = Field(default="", max_length=1000)
    merge_into: str = Field(default="", max_length=32)


def _create(settings: Settings, account: Account, body: NewOrder) -> dict[str, Any]:
    actor = Actor.of(account)
    with session_scope(settings) as db:
        fields: dict[str, Any] = {
            "order_type": body.order_type,
            "summary": body.summary,
            "category_id": body.category_id,
            "urgency": body.urgency,
            "resident_id": body.resident_id
            if body.resident_id and db.get(Resident, body.resident_id)
            else None,
            "caller_phone": body.caller_phone,
            "caller_name": body.caller_name,
            "community_id": body.community_id
            if body.community_id and db.get(Community, body.community_id)
            else None,
            "grid_id": body.grid_id if body.grid_id and db.get(Grid, body.grid_id) else None,
            "address": body.address,
            "call_linkedid": body.linkedid,
        }
        if body.merge_into:
            order = service.create_order(db, actor, settings=settings, **fields)
            transitions.transition(db, order, "并单", actor, settings=settings, into=body.merge_into)
        elif body.answer.strip():
            order = service.create_order(db, actor, settings=settings, **fields)
            transitions.transition(db, order, "直接答复", actor, settings=settings, note=body.answer)
        elif body.outlet_id is not None:
            # Taken and dispatched at once: the resident gets one SMS saying both.
            order = flows.create_and_dispatch(db, settings, actor, body.outlet_id, **fields)
        else:
            order = service.create_order(db, actor, settings=settings, **fields)
        audit(
            db,
            account.username,
            "order.create",
            target=f"order:{order.number}",
            role=account.role,
            status=order.status,
            linkedid=order.call_linkedid,
        )
        db.commit()
        return order_view(db, order, actor)


@router.post("/api/orders", dependencies=[CsrfChecked])
async def api_orders_create(body: NewOrder, account: CurrentAccount, settings: SettingsDep) -> Response:
    view = await run_in_threadpool(_create, settings, account, body)
    return JSONResponse(view, status_code=201)


@router.get("/api/orders")
def api_orders(
    request: Request,
    account: CurrentAccount,
    linkedid: str = Query("", max_length=64),
    resident_id: RowId | None = Query(None),
) -> JSONResponse:
    """Orders of one call or one resident (the console's pop and tests)."""
    with open_db(request) as db:
        query = select(WorkOrder)
        if linkedid:
            linked = select(OrderCall.order_id).where(OrderCall.linkedid == linkedid)
            query = query.where(col(WorkOrder.id).in_(linked))
        elif resident_id is not None:
            query = query.where(WorkOrder.resident_id == resident_id)
        else:
            return JSONResponse([])
        rows = db.exec(query.order_by(col(WorkOrder.created_at).desc()).limit(20)).all()
        views = order_views(db, rows, Actor.of(account))
    for view in views:  # a list: the caller's number masked (the order's own page shows it)
        view["caller_phone"] = mask_phone(view["caller_phone"])
    return JSONResponse(views, headers={"Cache-Control": "no-store"})


class LinkCall(BaseModel):
    linkedid: str = Field(max_length=64)


def _link(settings: Settings, order_id: RowId, linkedid: str, account: Account) -> dict[str, Any]:
    with session_scope(settings) as db:
        order = db.get(WorkOrder, order_id)
        if order is None:
            raise DispatchError("no such order", "not_found")
        service.link_call(db, order, linkedid)
        audit(
            db,
            account.username,
            "order.link_call",
            target=f"order:{order.number}",
            role=account.role,
            linkedid=linkedid,
        )
        db.commit()
        calls = db.exec(select(OrderCall.linkedid).where(OrderCall.order_id == order.id)).all()
        return {"number": order.number, "calls": list(calls)}


@router.post("/api/orders/{order_id}/calls", dependencies=[CsrfChecked])
async def api_order_link_call(
    order_id: RowId, body: LinkCall, account: CurrentAccount, settings: SettingsDep
) -> Response:
    """A later call about an order (the resident rings again): linked to it."""
    view = await run_in_threadpool(_link, settings, order_id, body.linkedid, account)
    return JSONResponse(view)
