"""Work-order pages and APIs: the order form's data (options, routing suggestion, create), the
order list and detail with the allowed actions, attachments, the outlet's mobile page (login, or a
signed link valid for one order). Access rules: ``views.ROUTE_ROLES`` and ``PUBLIC_ROUTES``; the
state machine (``dispatch.service``) decides what each role may do to each order."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select
from starlette.concurrency import run_in_threadpool

from callcenter.accounts.models import Account, Role
from callcenter.audit.service import record as audit
from callcenter.clock import aware, local_minute, utcnow
from callcenter.config import CHINA_TZ
from callcenter.database import session_scope
from callcenter.directory.models import Community, Grid, Outlet
from callcenter.residents.models import Resident
from dispatch import attachments, links, routing, service, transitions
from dispatch.actors import STAFF, Actor
from dispatch.errors import DispatchError
from dispatch.models import (
    ORDER_TYPES,
    Category,
    OrderAttachment,
    OrderCall,
    Status,
    WorkOrder,
)
from web_console.views import authorize, csrf_ok, csrf_token, forbidden_response, protected, render

log = logging.getLogger(__name__)

public_orders = APIRouter()  # the signed outlet links: no session, the token is the key

PAGE_SIZE = 50
STATUSES = (
    Status.RECEIVED,
    Status.DISPATCHED,
    Status.ACCEPTED,
    Status.IN_PROGRESS,
    Status.RETURNED,
    Status.RESOLVED,
    Status.FOLLOWED_UP,
    Status.CLOSED,
    Status.MERGED,
)
OUTLET_ACTIONS = ("签收", "办理", "办结", "退单", "延期")


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _category_path(db: Session, category_id: int | None) -> str:
    names = []
    seen = set()
    c = db.get(Category, category_id) if category_id else None
    while c is not None and c.id not in seen and len(names) < 8:
        names.append(c.name)
        seen.add(c.id)
        c = db.get(Category, c.parent_id) if c.parent_id else None
    return " / ".join(reversed(names))


def order_view(db: Session, order: WorkOrder, actor: Actor | None = None) -> dict[str, Any]:
    outlet = db.get(Outlet, order.outlet_id) if order.outlet_id else None
    suggested = db.get(Outlet, order.suggested_outlet_id) if order.suggested_outlet_id else None
    community = db.get(Community, order.community_id) if order.community_id else None
    grid = db.get(Grid, order.grid_id) if order.grid_id else None
    resident = db.get(Resident, order.resident_id) if order.resident_id else None
    repeat = db.get(WorkOrder, order.repeat_of_id) if order.repeat_of_id else None
    merged = db.get(WorkOrder, order.merged_into_id) if order.merged_into_id else None
    return {
        "id": order.id,
        "number": order.number,
        "short_code": order.short_code,
        "type": order.order_type,
        "category": _category_path(db, order.category_id) or order.category,
        "urgency": order.urgency,
        "status": order.status,
        "summary": order.summary,
        "resident": {"id": resident.id, "name": resident.name} if resident else None,
        "caller_phone": order.caller_phone,
        "caller_name": order.caller_name,
        "community": community.name if community else "",
        "grid": grid.name if grid else "",
        "address": order.address,
        "outlet": {"id": outlet.id, "name": outlet.name} if outlet else None,
        "suggested_outlet": {"id": suggested.id, "name": suggested.name} if suggested else None,
        "created_at": local_minute(order.created_at),
        "created_by": order.created_by,
        "deadline_at": local_minute(order.deadline_at),
        "overdue": bool(
            order.deadline_at and order.status in Status.AT_OUTLET and aware(order.deadline_at) < utcnow()
        ),
        "extension_requested_until": local_minute(order.extension_requested_until),
        "resolution": order.resolution,
        "return_reason": order.return_reason,
        "satisfaction": order.satisfaction,
        "reviewed": order.reviewed,
        "reopen_count": order.reopen_count,
        "repeat_of": repeat.number if repeat else "",
        "merged_into": merged.number if merged else "",
        "allowed": transitions.allowed_actions(order, actor) if actor else [],
    }


def _history_view(db: Session, order_id: int) -> list[dict[str, Any]]:
    return [
        {
            "at": local_minute(h.at),
            "actor": h.actor,
            "role": h.role,
            "action": h.action,
            "from": h.from_status,
            "to": h.to_status,
            "note": h.note,
            "detail": h.detail or {},
        }
        for h in service.history(db, order_id)
    ]


def _outlets(db: Session) -> list[Outlet]:
    return list(db.exec(select(Outlet).order_by(Outlet.kind, Outlet.name)))


def _categories(db: Session) -> list[dict[str, Any]]:
    """The category tree, flattened depth-first, with each node's depth (for indented options)."""
    rows = list(db.exec(select(Category).where(Category.active == True).order_by(Category.code)))  # noqa: E712
    children: dict[int | None, list[Category]] = {}
    for c in rows:
        children.setdefault(c.parent_id, []).append(c)
    out: list[dict[str, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for c in children.get(parent, []):
            out.append({"id": c.id, "name": c.name, "code": c.code, "depth": depth, "parent_id": c.parent_id})
            if depth < 8:
                walk(c.id, depth + 1)

    walk(None, 0)
    return out


def _actor(account: Account) -> Actor:
    return Actor.of(account)


def _transition_args(form: dict[str, Any]) -> dict[str, Any]:
    keep = ("note", "reason", "outlet_id", "satisfaction", "until", "approve", "into")
    out = {k: form[k] for k in keep if form.get(k) not in (None, "")}
    if "until" in out:
        try:  # a date (yyyy-mm-dd) or datetime-local from the form, in China time
            until = datetime.fromisoformat(str(out["until"]))
            if until.tzinfo is None:
                until = until.replace(tzinfo=CHINA_TZ)
            if len(str(out["until"])) <= 10:
                until = until.replace(hour=18)
            out["until"] = until
        except ValueError:
            out["until"] = None
    return out


# --- the order form's data (seat console) --------------------------------------------------


@protected.get("/api/dispatch/options")
def api_dispatch_options(request: Request, account: Account = Depends(authorize)) -> JSONResponse:
    with session_scope(request.app.state.settings) as db:
        body = {
            "types": list(ORDER_TYPES),
            "urgencies": ["normal", "urgent"],
            "categories": _categories(db),
            "outlets": [{"id": o.id, "name": o.name, "kind": o.kind} for o in _outlets(db)],
            "communities": [
                {"id": c.id, "name": c.name} for c in db.exec(select(Community).order_by(Community.name))
            ],
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@protected.get("/api/orders/suggest")
def api_orders_suggest(
    request: Request,
    account: Account = Depends(authorize),
    category_id: int | None = Query(None),
    community_id: int | None = Query(None),
    resident_id: int | None = Query(None),
    address: str = Query("", max_length=255),
) -> JSONResponse:
    """The routing suggestion and an open order about the same matter (for 并单)."""
    with session_scope(request.app.state.settings) as db:
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
    resident_id: int | None = None
    caller_phone: str = Field(default="", max_length=40)
    caller_name: str = Field(default="", max_length=64)
    order_type: str = Field(max_length=8)
    category_id: int | None = None
    urgency: str = Field(default="normal", max_length=8)
    community_id: int | None = None
    grid_id: int | None = None
    address: str = Field(default="", max_length=255)
    summary: str = Field(max_length=1000)
    # What happens right away: dispatch to this outlet, or answer on the call (直接答复).
    outlet_id: int | None = None
    answer: str = Field(default="", max_length=1000)
    merge_into: str = Field(default="", max_length=32)


def _create(settings, account: Account, body: NewOrder) -> dict[str, Any]:
    actor = _actor(account)
    with session_scope(settings) as db:
        order = service.create_order(
            db,
            actor,
            order_type=body.order_type,
            summary=body.summary,
            category_id=body.category_id,
            urgency=body.urgency,
            resident_id=body.resident_id if body.resident_id and db.get(Resident, body.resident_id) else None,
            caller_phone=body.caller_phone,
            caller_name=body.caller_name,
            community_id=body.community_id
            if body.community_id and db.get(Community, body.community_id)
            else None,
            grid_id=body.grid_id if body.grid_id and db.get(Grid, body.grid_id) else None,
            address=body.address,
            call_linkedid=body.linkedid,
        )
        if body.merge_into:
            transitions.transition(db, order, "并单", actor, into=body.merge_into)
        elif body.answer.strip():
            transitions.transition(db, order, "直接答复", actor, note=body.answer)
        elif body.outlet_id is not None:
            transitions.transition(db, order, "派单", actor, outlet_id=body.outlet_id)
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


@protected.post("/api/orders")
async def api_orders_create(
    request: Request, body: NewOrder, account: Account = Depends(authorize)
) -> Response:
    if not csrf_ok(request.session, request.headers.get("x-csrf-token")):
        return JSONResponse({"error": "csrf"}, status_code=403)
    try:
        view = await run_in_threadpool(_create, request.app.state.settings, account, body)
    except DispatchError as exc:
        return JSONResponse({"error": str(exc), "code": exc.code}, status_code=422)
    return JSONResponse(view, status_code=201)


@protected.get("/api/orders")
def api_orders(
    request: Request,
    account: Account = Depends(authorize),
    linkedid: str = Query("", max_length=64),
    resident_id: int | None = Query(None),
) -> JSONResponse:
    """Orders of one call or one resident (the console's pop and tests)."""
    with session_scope(request.app.state.settings) as db:
        query = select(WorkOrder)
        if linkedid:
            ids = select(OrderCall.order_id).where(OrderCall.linkedid == linkedid)
            query = query.where(col(WorkOrder.id).in_(ids))
        elif resident_id is not None:
            query = query.where(WorkOrder.resident_id == resident_id)
        else:
            return JSONResponse([])
        rows = db.exec(query.order_by(col(WorkOrder.created_at).desc()).limit(20)).all()
        actor = _actor(account)
        return JSONResponse([order_view(db, o, actor) for o in rows], headers={"Cache-Control": "no-store"})


class LinkCall(BaseModel):
    linkedid: str = Field(max_length=64)


def _link(settings, order_id: int, linkedid: str, account: Account) -> dict[str, Any]:
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


@protected.post("/api/orders/{order_id}/calls")
async def api_order_link_call(
    request: Request, order_id: int, body: LinkCall, account: Account = Depends(authorize)
) -> Response:
    """A later call about an order (the resident rings again): linked to it."""
    if not csrf_ok(request.session, request.headers.get("x-csrf-token")):
        return JSONResponse({"error": "csrf"}, status_code=403)
    try:
        view = await run_in_threadpool(_link, request.app.state.settings, order_id, body.linkedid, account)
    except DispatchError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404 if exc.code == "not_found" else 422)
    return JSONResponse(view)


# --- list and detail (seats and supervisors) -----------------------------------------------


@protected.get("/orders")
def orders_page(
    request: Request,
    account: Account = Depends(authorize),
    status: str = Query("", max_length=16),
    order_type: str = Query("", max_length=8),
    q: str = Query("", max_length=64),
    overdue: bool = Query(False),
    page: int = Query(1, ge=1, le=10000),
) -> Response:
    actor = _actor(account)
    with session_scope(request.app.state.settings) as db:
        query = select(WorkOrder)
        count = select(func.count()).select_from(WorkOrder)
        conds = []
        if status in STATUSES:
            conds.append(WorkOrder.status == status)
        if order_type in ORDER_TYPES:
            conds.append(WorkOrder.order_type == order_type)
        if q.strip():
            text = q.strip()
            conds.append(
                (WorkOrder.number == text)
                | (WorkOrder.short_code == text)
                | col(WorkOrder.summary).contains(text)
                | col(WorkOrder.address).contains(text)
            )
        if overdue:
            conds.append(col(WorkOrder.status).in_(Status.AT_OUTLET))
            conds.append(WorkOrder.deadline_at < utcnow())
        for c in conds:
            query = query.where(c)
            count = count.where(c)
        total = db.exec(count).one()
        rows = db.exec(
            query.order_by(col(WorkOrder.id).desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
        ).all()
        orders = [order_view(db, o, actor) for o in rows]
    return render(
        request,
        "orders_list.html",
        account=account,
        orders=orders,
        total=total,
        page=page,
        pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
        statuses=STATUSES,
        types=ORDER_TYPES,
        filters={"status": status, "order_type": order_type, "q": q, "overdue": overdue},
    )


def _detail(
    request: Request, account: Account, order_id: int, status_code: int = 200, error: str = ""
) -> Response:
    actor = _actor(account)
    with session_scope(request.app.state.settings) as db:
        order = db.get(WorkOrder, order_id)
        if order is None:
            return render(request, "error.html", status_code=404)
        view = order_view(db, order, actor)
        hist = _history_view(db, order.id)
        calls = db.exec(select(OrderCall).where(OrderCall.order_id == order.id).order_by(OrderCall.id)).all()
        # The calls' recordings (telephony's CallRecord), playable by whoever may hear them: the
        # seat who took the call, supervisors and administrators (GET /api/recordings checks again).
        from callcenter.calls.models import CallRecord

        records = {
            r.linkedid: r
            for r in db.exec(
                select(CallRecord).where(col(CallRecord.linkedid).in_([c.linkedid for c in calls]))
            )
        }
        files = db.exec(
            select(OrderAttachment).where(OrderAttachment.order_id == order.id).order_by(OrderAttachment.id)
        ).all()
        outlets = _outlets(db)
    flash = request.session.pop("order_flash", None)
    return render(
        request,
        "order_detail.html",
        status_code=status_code,
        account=account,
        order=view,
        history=hist,
        calls=[
            {
                "linkedid": c.linkedid,
                "at": local_minute(c.linked_at),
                "recording": bool(records.get(c.linkedid) and records[c.linkedid].recording),
                "may_play": account.role != "seat"
                or bool(
                    records.get(c.linkedid)
                    and account.extension
                    and records[c.linkedid].seat == account.extension
                ),
            }
            for c in calls
        ],
        files=[{"id": f.id, "name": f.filename, "size": f.size, "type": f.content_type} for f in files],
        outlets=outlets,
        error=error,
        flash=flash,
    )


@protected.get("/orders/{order_id}")
def order_page(request: Request, order_id: int, account: Account = Depends(authorize)) -> Response:
    return _detail(request, account, order_id)


def _apply(
    settings,
    order_id: int,
    action: str,
    actor: Actor,
    args: dict[str, Any],
    account_name: str,
    role: str,
    ip: str,
    via: str,
) -> WorkOrder:
    with session_scope(settings) as db:
        order = db.get(WorkOrder, order_id)
        if order is None:
            raise DispatchError("no such order", "not_found")
        before = order.status
        transitions.transition(db, order, action, actor, **args)
        audit(
            db,
            account_name,
            "order.transition",
            target=f"order:{order.number}",
            role=role,
            ip=ip,
            transition=transitions.canonical_action(action),
            before=before,
            after=order.status,
            via=via,
        )
        db.commit()
        return order


@protected.post("/orders/{order_id}/action")
async def order_action(request: Request, order_id: int, account: Account = Depends(authorize)) -> Response:
    form = dict(await request.form())
    if not csrf_ok(request.session, str(form.get("csrf", ""))):
        return forbidden_response(request)
    action = str(form.get("action", ""))[:16]
    try:
        await run_in_threadpool(
            _apply,
            request.app.state.settings,
            order_id,
            action,
            _actor(account),
            _transition_args({k: str(v)[:1000] for k, v in form.items() if isinstance(v, str)}),
            account.username,
            account.role,
            _ip(request),
            "web",
        )
    except DispatchError as exc:
        if exc.code == "not_found":
            return render(request, "error.html", status_code=404)
        return _detail(
            request, account, order_id, status_code=409 if exc.code != "invalid" else 422, error=str(exc)
        )
    request.session["order_flash"] = action
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


# --- attachments ---------------------------------------------------------------------------


def _may_see(account: Account, order: WorkOrder) -> bool:
    if account.role == Role.OUTLET.value:
        return account.outlet_id is not None and account.outlet_id == order.outlet_id
    return account.role in STAFF


async def _read_upload(upload: UploadFile) -> bytes:
    data = await upload.read(attachments.MAX_BYTES + 1)
    return data


def _store(settings, order_id: int, account_name: str, filename: str, data: bytes, check) -> int:
    with session_scope(settings) as db:
        order = db.get(WorkOrder, order_id)
        if order is None or not check(order):
            raise DispatchError("no such order", "not_found")
        row = attachments.save(db, settings, order, filename, data, account_name)
        db.commit()
        return row.id


@protected.post("/orders/{order_id}/attachments")
async def order_upload(
    request: Request,
    order_id: int,
    account: Account = Depends(authorize),
    csrf: str = Form(""),
    file: UploadFile | None = File(None),
) -> Response:
    if not csrf_ok(request.session, csrf):
        return forbidden_response(request)
    if file is None:
        return JSONResponse({"error": "no file"}, status_code=422)
    data = await _read_upload(file)
    try:
        await run_in_threadpool(
            _store,
            request.app.state.settings,
            order_id,
            account.username,
            file.filename or "",
            data,
            lambda o: _may_see(account, o),
        )
    except DispatchError as exc:
        if exc.code == "not_found":
            return render(request, "error.html", status_code=404)
        if account.role == Role.OUTLET.value:
            return RedirectResponse(f"/outlet/orders/{order_id}?error=file", status_code=303)
        return _detail(request, account, order_id, status_code=422, error=str(exc))
    back = f"/outlet/orders/{order_id}" if account.role == Role.OUTLET.value else f"/orders/{order_id}"
    return RedirectResponse(back, status_code=303)


@protected.get("/orders/{order_id}/attachments/{attachment_id}")
def order_attachment(
    request: Request, order_id: int, attachment_id: int, account: Account = Depends(authorize)
) -> Response:
    settings = request.app.state.settings
    with session_scope(settings) as db:
        order = db.get(WorkOrder, order_id)
        row = db.get(OrderAttachment, attachment_id)
        if order is None or row is None or row.order_id != order.id or not _may_see(account, order):
            return render(request, "error.html", status_code=404)
        audit(
            db,
            account.username,
            "order.attachment_view",
            target=f"order:{order.number}",
            role=account.role,
            ip=_ip(request),
            attachment=row.id,
        )
        db.commit()
    return FileResponse(
        attachments.path_of(settings, row),
        media_type=row.content_type,
        headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
    )


# --- the outlet's page (outlet accounts) ---------------------------------------------------


@protected.get("/outlet")
def outlet_home(request: Request, account: Account = Depends(authorize)) -> Response:
    with session_scope(request.app.state.settings) as db:
        outlet = db.get(Outlet, account.outlet_id) if account.outlet_id else None
        rows = []
        if outlet is not None:
            rows = db.exec(
                select(WorkOrder)
                .where(
                    WorkOrder.outlet_id == outlet.id,
                    col(WorkOrder.status).in_(Status.AT_OUTLET | {Status.RESOLVED}),
                )
                .order_by(col(WorkOrder.deadline_at))
                .limit(200)
            ).all()
        orders = [order_view(db, o, _actor(account)) for o in rows]
    return render(request, "outlet_list.html", account=account, outlet=outlet, orders=orders)


def _outlet_page(
    request: Request,
    order_id: int,
    actor: Actor,
    post_url: str,
    account: Account | None,
    status_code: int = 200,
    error: str = "",
    done: str = "",
) -> Response:
    with session_scope(request.app.state.settings) as db:
        order = db.get(WorkOrder, order_id)
        if order is None or actor.outlet_id is None or order.outlet_id != actor.outlet_id:
            return render(request, "error.html", status_code=404)
        view = order_view(db, order, actor)
        view["allowed"] = [a for a in view["allowed"] if a in OUTLET_ACTIONS]
        hist = _history_view(db, order.id)
        files = db.exec(select(OrderAttachment).where(OrderAttachment.order_id == order.id)).all()
    return render(
        request,
        "outlet_order.html",
        status_code=status_code,
        account=account,
        order=view,
        history=hist,
        files=[{"id": f.id, "name": f.filename} for f in files],
        post_url=post_url,
        error=error,
        done=done,
        signed=account is None,
    )


async def _outlet_post(request: Request, order_id: int, actor: Actor, who: str, via: str) -> str:
    """One outlet action from the page, with an optional photo. Returns the action done."""
    form = await request.form()
    if not csrf_ok(request.session, str(form.get("csrf", ""))):
        raise PermissionError("csrf")
    action = str(form.get("action", ""))[:16]
    if action not in OUTLET_ACTIONS:
        raise DispatchError("not an outlet action")
    args = _transition_args({k: str(v)[:1000] for k, v in form.items() if isinstance(v, str)})
    photo = form.get("photo")
    data = b""
    name = ""
    if photo is not None and not isinstance(photo, str):
        data = await photo.read(attachments.MAX_BYTES + 1)
        name = photo.filename or "photo"
    settings = request.app.state.settings

    def work() -> None:
        with session_scope(settings) as db:
            order = db.get(WorkOrder, order_id)
            if order is None:
                raise DispatchError("no such order", "not_found")
            before = order.status
            transitions.transition(db, order, action, actor, **args)
            if data:
                attachments.save(db, settings, order, name, data, who)
            audit(
                db,
                who,
                "order.transition",
                target=f"order:{order.number}",
                role=actor.role,
                ip=_ip(request),
                transition=transitions.canonical_action(action),
                before=before,
                after=order.status,
                via=via,
            )
            db.commit()

    await run_in_threadpool(work)
    return action


@protected.get("/outlet/orders/{order_id}")
def outlet_order(request: Request, order_id: int, account: Account = Depends(authorize)) -> Response:
    return _outlet_page(
        request,
        order_id,
        _actor(account),
        f"/outlet/orders/{order_id}",
        account,
        error=request.query_params.get("error", "")[:16],
    )


@protected.post("/outlet/orders/{order_id}")
async def outlet_order_post(
    request: Request, order_id: int, account: Account = Depends(authorize)
) -> Response:
    actor = _actor(account)
    try:
        action = await _outlet_post(request, order_id, actor, account.username, "outlet page")
    except PermissionError:
        return forbidden_response(request)
    except DispatchError as exc:
        return _outlet_page(
            request, order_id, actor, f"/outlet/orders/{order_id}", account, status_code=409, error=str(exc)
        )
    return _outlet_page(request, order_id, actor, f"/outlet/orders/{order_id}", account, done=action)


# --- the same page through a signed link (no login) ----------------------------------------


def _token_actor(request: Request, token: str) -> tuple[int, Actor] | None:
    found = links.read_token(request.app.state.settings, token)
    if found is None:
        return None
    order_id, outlet_id = found
    return order_id, Actor(username=f"link:outlet{outlet_id}", role=Role.OUTLET.value, outlet_id=outlet_id)


@public_orders.get("/o/{token}")
def signed_order(request: Request, token: str) -> Response:
    found = _token_actor(request, token)
    if found is None:
        return render(request, "error.html", status_code=403)
    order_id, actor = found
    csrf_token(request.session)
    return _outlet_page(request, order_id, actor, f"/o/{token}", None)


@public_orders.post("/o/{token}")
async def signed_order_post(request: Request, token: str) -> Response:
    found = _token_actor(request, token)
    if found is None:
        return render(request, "error.html", status_code=403)
    order_id, actor = found
    try:
        action = await _outlet_post(request, order_id, actor, actor.username, "signed link")
    except PermissionError:
        return forbidden_response(request)
    except DispatchError as exc:
        return _outlet_page(request, order_id, actor, f"/o/{token}", None, status_code=409, error=str(exc))
    return _outlet_page(request, order_id, actor, f"/o/{token}", None, done=action)


# The resident's page registers its routes on ``protected`` too.
from web_console import resident_page  # noqa: E402, F401
