"""The staff's work-order pages: the list with its filters, the detail with the allowed actions,
and attachments (which outlets may also add to and open on their own orders). Access rules:
``access.ROUTE_ROLES``; the state machine (``dispatch.service``) decides what each role may do to
each order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter.accounts.models import Account, Role
from callcenter.audit.service import record as audit
from callcenter.calls.models import CallRecord
from callcenter.clock import local_minute
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import session_scope
from callcenter.errors import UserError
from dispatch import attachments, links
from dispatch.actors import STAFF, Actor
from dispatch.errors import DispatchError
from dispatch.flows import Requester, act_on_order
from dispatch.models import ORDER_TYPES, OrderAttachment, OrderCall, WorkOrder
from dispatch.queries import (
    STATUSES,
    OrderFilters,
    count_reopen_review,
    history_view,
    list_orders,
    order_view,
    order_views,
    outlets,
)
from web_console.deps import CsrfChecked, CurrentAccount, RowId, SettingsDep, open_db, protected_router
from web_console.render import render, show_errors_on
from web_console.sessions import client_ip

router = protected_router()


def transition_args(form: dict[str, Any]) -> dict[str, Any]:
    """The details of an action as the forms send them (also the outlet's pages)."""
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


def form_fields(form: Any) -> dict[str, str]:
    """A submitted form's text fields, each cut to 1000 characters."""
    return {k: str(v)[:1000] for k, v in form.items() if isinstance(v, str)}


# --- list and detail (seats and supervisors) -----------------------------------------------


@router.get("/orders")
def orders_page(
    request: Request,
    account: CurrentAccount,
    status: str = Query("", max_length=16),
    order_type: str = Query("", max_length=8),
    q: str = Query("", max_length=64),
    overdue: bool = Query(False),
    review: bool = Query(False),
    page: int = Query(1, ge=1, le=10000),
) -> Response:
    filters = OrderFilters(status=status, order_type=order_type, q=q, overdue=overdue, reopen_review=review)
    with open_db(request) as db:
        found = list_orders(db, filters, page)
        orders = order_views(db, found.orders, Actor.of(account))
        to_review = count_reopen_review(db)
    return render(
        request,
        "orders_list.html",
        account=account,
        orders=orders,
        total=found.total,
        page=page,
        pages=found.pages,
        statuses=STATUSES,
        types=ORDER_TYPES,
        filters={"status": status, "order_type": order_type, "q": q, "overdue": overdue, "review": review},
        to_review=to_review,
    )


def _detail(
    request: Request, account: Account, order_id: RowId, status_code: int = 200, error: str = ""
) -> Response:
    actor = Actor.of(account)
    with open_db(request) as db:
        order = db.get(WorkOrder, order_id)
        if order is None:
            return render(request, "error.html", status_code=404)
        view = order_view(db, order, actor)
        hist = history_view(db, order_id)
        calls = db.exec(
            select(OrderCall).where(OrderCall.order_id == order_id).order_by(col(OrderCall.id))
        ).all()
        # The calls' recordings (telephony's CallRecord), playable by whoever may hear them: the
        # seat who took the call, supervisors and administrators (GET /api/recordings checks again).
        records = {
            r.linkedid: r
            for r in db.exec(
                select(CallRecord).where(col(CallRecord.linkedid).in_([c.linkedid for c in calls]))
            )
        }
        files = db.exec(
            select(OrderAttachment)
            .where(OrderAttachment.order_id == order_id)
            .order_by(col(OrderAttachment.id))
        ).all()
        all_outlets = outlets(db)
    flash = request.session.pop("order_flash", None)
    links_revoked = request.session.pop("order_links_revoked", None)
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
        outlets=all_outlets,
        error=error,
        flash=flash,
        links_revoked=links_revoked,
    )


@router.get("/orders/{order_id}")
def order_page(request: Request, order_id: RowId, account: CurrentAccount) -> Response:
    return _detail(request, account, order_id)


def _apply(
    settings: Settings, order_id: RowId, action: str, actor: Actor, args: dict[str, Any], who: Requester
) -> None:
    with session_scope(settings) as db:
        act_on_order(db, settings, order_id, action, actor, who, args)
        db.commit()


@router.post("/orders/{order_id}/action", dependencies=[CsrfChecked])
async def order_action(
    request: Request, order_id: RowId, account: CurrentAccount, settings: SettingsDep
) -> Response:
    form = form_fields(await request.form())
    action = form.get("action", "")[:16]

    def refused(exc: UserError, message: str) -> Response:
        if exc.code == "not_found":
            return render(request, "error.html", status_code=404)
        return _detail(
            request, account, order_id, status_code=422 if exc.code == "invalid" else 409, error=message
        )

    show_errors_on(request, refused)
    await run_in_threadpool(
        _apply,
        settings,
        order_id,
        action,
        Actor.of(account),
        transition_args(form),
        Requester(account.username, account.role, client_ip(request), "web"),
    )
    request.session["order_flash"] = action
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


@router.post("/orders/{order_id}/links/revoke", dependencies=[CsrfChecked])
def order_links_revoke(request: Request, order_id: int, account: CurrentAccount) -> Response:
    """End every e-mailed link to this order's outlet page at once (a mail forwarded or leaked);
    the outlet still has its login and SMS, and the next notice carries a new link."""
    with open_db(request) as db:
        order = db.get(WorkOrder, order_id)
        if order is None:
            return render(request, "error.html", status_code=404)
        count = links.revoke_links(db, order_id)
        audit(
            db,
            account.username,
            "order.links.revoke",
            order.number,
            role=account.role,
            ip=client_ip(request),
            revoked=count,
        )
        db.commit()
    request.session["order_links_revoked"] = count
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


@router.post("/orders/{order_id}/public", dependencies=[CsrfChecked])
async def order_public(request: Request, order_id: RowId, account: CurrentAccount) -> Response:
    """List the order on the public Open311 read API, or take it off (supervisors): its category,
    community, outlet and dates become readable without a key; the resident's words never are."""
    listed = form_fields(await request.form()).get("list", "") == "1"
    show_errors_on(request, lambda _exc, _message: render(request, "error.html", status_code=404))
    await run_in_threadpool(_set_public, request, order_id, account, listed)
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


def _set_public(request: Request, order_id: RowId, account: Account, form_public: bool) -> None:
    with open_db(request) as db:
        order = db.get(WorkOrder, order_id)
        if order is None:
            raise DispatchError("no such order", "not_found")
        if order.public != form_public:
            order.public = form_public
            db.add(order)
            audit(
                db,
                account.username,
                "order.public" if form_public else "order.private",
                order.number,
                role=account.role,
                ip=client_ip(request),
            )
            db.commit()


# --- attachments ---------------------------------------------------------------------------


def _may_see(account: Account, order: WorkOrder) -> bool:
    if account.role == Role.OUTLET.value:
        return account.outlet_id is not None and account.outlet_id == order.outlet_id
    return account.role in STAFF


def _store(
    settings: Settings,
    order_id: RowId,
    account_name: str,
    filename: str,
    data: bytes,
    check: Callable[[WorkOrder], bool],
) -> int:
    with session_scope(settings) as db:
        order = db.get(WorkOrder, order_id)
        if order is None or not check(order):
            raise DispatchError("no such order", "not_found")
        row = attachments.save(db, settings, order, filename, data, account_name)
        db.commit()
        assert row.id is not None
        return row.id


@router.post("/orders/{order_id}/attachments", dependencies=[CsrfChecked])
async def order_upload(
    request: Request,
    order_id: RowId,
    account: CurrentAccount,
    settings: SettingsDep,
    file: UploadFile | None = File(None),
) -> Response:
    if file is None:
        return JSONResponse({"error": "no file"}, status_code=422)
    data = await file.read(attachments.MAX_BYTES + 1)

    def refused(exc: UserError, message: str) -> Response:
        if exc.code == "not_found":
            return render(request, "error.html", status_code=404)
        if account.role == Role.OUTLET.value:
            return RedirectResponse(f"/outlet/orders/{order_id}?error=file", status_code=303)
        return _detail(request, account, order_id, status_code=422, error=message)

    show_errors_on(request, refused)
    await run_in_threadpool(
        _store,
        settings,
        order_id,
        account.username,
        file.filename or "",
        data,
        lambda o: _may_see(account, o),
    )
    back = f"/outlet/orders/{order_id}" if account.role == Role.OUTLET.value else f"/orders/{order_id}"
    return RedirectResponse(back, status_code=303)


@router.get("/orders/{order_id}/attachments/{attachment_id}")
def order_attachment(
    request: Request, order_id: RowId, attachment_id: RowId, account: CurrentAccount, settings: SettingsDep
) -> Response:
    with open_db(request) as db:
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
            ip=client_ip(request),
            attachment=row.id,
        )
        db.commit()
    return FileResponse(
        attachments.path_of(settings, row),
        media_type=row.content_type,
        headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
    )
