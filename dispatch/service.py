"""Work orders: taking them (受理), finding them, linking calls, spotting repeats, their history.

``create_order`` adds a new order and its first history row and hands the change to
``notices.order_changed`` (records, webhooks) in the same transaction; it flushes but does not
commit. Every later change goes through ``dispatch.transitions.transition``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from callcenter import ids
from callcenter.clock import aware, utcnow
from callcenter.config import Settings, get_settings
from dispatch import notices, routing
from dispatch.actors import STAFF, Actor
from dispatch.errors import DispatchError
from dispatch.models import (
    ORDER_TYPES,
    URGENCIES,
    Action,
    Category,
    OrderCall,
    OrderHistory,
    Status,
    WorkOrder,
)
from dispatch.numbers import insert_unique, new_query_code, new_short_code, next_number

__all__ = [
    "REPEAT_WINDOW",
    "Actor",
    "DispatchError",
    "add_history",
    "clean",
    "create_order",
    "find_by_number",
    "find_by_short_code",
    "find_repeat",
    "history",
    "link_call",
]

REPEAT_WINDOW = timedelta(days=7)


def clean(text: Any, limit: int) -> str:
    """Printable text only (no control characters from SMS or forms), trimmed."""
    return "".join(ch for ch in str(text or "") if ch.isprintable()).strip()[:limit]


def find_by_short_code(session: Session, code: str) -> WorkOrder | None:
    """The open order an SMS reply's code names (closed orders release their codes)."""
    code = str(code).strip()
    if not re.fullmatch(r"[0-9]{4,6}", code):
        return None
    return session.exec(select(WorkOrder).where(WorkOrder.open_code == code)).first()


def find_by_number(session: Session, number: str) -> WorkOrder | None:
    return session.exec(select(WorkOrder).where(WorkOrder.number == number.strip()[:32])).first()


def add_history(
    session: Session,
    order: WorkOrder,
    actor: Actor,
    action: str,
    from_status: str,
    note: str = "",
    now: datetime | None = None,
    **detail: Any,
) -> OrderHistory:
    """The order's history row for ``action`` (to the order's status as it is now)."""
    assert order.id is not None, "the order is inserted before its history"
    row = OrderHistory(
        order_id=order.id,
        at=now or utcnow(),
        actor=actor.username,
        role=actor.role,
        action=str(action),
        from_status=str(from_status),
        to_status=str(order.status),
        note=note[:1000],
        detail={k: v for k, v in detail.items() if v not in (None, "")},
    )
    session.add(row)
    return row  # flushed with the transaction (or by a notice that needs its id)


def history(session: Session, order_id: int) -> list[OrderHistory]:
    return list(
        session.exec(
            select(OrderHistory).where(OrderHistory.order_id == order_id).order_by(col(OrderHistory.id))
        )
    )


def create_order(
    session: Session,
    actor: Actor,
    *,
    order_type: str,
    summary: str,
    category_id: int | None = None,
    urgency: str = "normal",
    resident_id: int | None = None,
    caller_phone: str = "",
    caller_name: str = "",
    community_id: int | None = None,
    grid_id: int | None = None,
    address: str = "",
    call_linkedid: str = "",
    now: datetime | None = None,
    settings: Settings | None = None,
    receipt: bool = True,
) -> WorkOrder:
    """受理: a new order (status 受理), with the routing suggestion and a repeat flag. No commit.

    ``settings``: where its records are pushed (the process's settings when not given);
    ``receipt=False``: the resident's receipt SMS is not queued here but by the 派单 that follows
    in the same transaction (``flows.create_and_dispatch``), as one SMS saying both."""
    settings = settings or get_settings()
    now = now or utcnow()
    if actor.role not in STAFF:
        raise DispatchError(f"受理: not allowed for the role {actor.role}", "role")
    if order_type not in ORDER_TYPES:
        raise DispatchError(f"unknown order type {order_type!r}")
    if urgency not in URGENCIES:
        raise DispatchError(f"unknown urgency {urgency!r}")
    summary = clean(summary, 1000)
    if not summary:
        raise DispatchError("a description is required")
    category = session.get(Category, category_id) if category_id is not None else None
    if category_id is not None and category is None:
        raise DispatchError("unknown category")
    linkedid = clean(call_linkedid, 64)
    if linkedid and not ids.CALL_ID.fullmatch(linkedid):
        raise DispatchError("not a call id")
    order = WorkOrder(
        number=next_number(session, now),
        short_code="",
        order_type=order_type,
        category=category.name if category else "",
        category_id=category_id,
        urgency=urgency,
        summary=summary,
        resident_id=resident_id,
        caller_phone=clean(caller_phone, 40),
        caller_name=clean(caller_name, 64),
        community_id=community_id,
        grid_id=grid_id,
        address=clean(address, 255),
        call_linkedid=linkedid,
        created_by=actor.username,
        created_at=now,
        updated_at=now,
    )
    order.query_code = new_query_code()
    code = new_short_code(session)
    order.short_code = code
    order.open_code = code
    suggestion = routing.suggest(session, category_id, community_id, grid_id, routing.china_date(now))
    order.suggested_outlet_id = suggestion.outlet_id if suggestion else None
    repeat = find_repeat(session, order, now)
    order.repeat_of_id = repeat.id if repeat else None
    insert_unique(session, order, now)
    assert order.id is not None
    if linkedid:
        session.add(OrderCall(order_id=order.id, linkedid=linkedid, linked_at=now))
    hist = add_history(
        session,
        order,
        actor,
        Action.RECEIVE,
        "",
        now=now,
        suggested_outlet=order.suggested_outlet_id,
        repeat_of=repeat.number if repeat else None,
    )
    notices.order_changed(session, settings, order, hist, resident_sms=receipt)
    return order


def find_repeat(session: Session, order: WorkOrder, now: datetime) -> WorkOrder | None:
    """An order still open about the same matter: same category, and the same resident or address,
    taken within the window. Flagged on the new order for the seat to merge (并单). One indexed
    lookup per key (an OR of two columns would scan the category's orders)."""
    if order.category_id is None or (order.resident_id is None and not order.address):
        return None
    keys = []
    if order.resident_id is not None:
        keys.append(WorkOrder.resident_id == order.resident_id)
    if order.address:
        keys.append(WorkOrder.address == order.address)
    found: list[WorkOrder] = []
    for key in keys:
        hit = session.exec(
            select(WorkOrder)
            .where(
                key,
                WorkOrder.category_id == order.category_id,
                col(WorkOrder.status).in_(Status.OPEN),
                WorkOrder.created_at >= now - REPEAT_WINDOW,
                WorkOrder.id != order.id if order.id is not None else True,
            )
            .order_by(col(WorkOrder.created_at).desc())
            .limit(1)
        ).first()
        if hit is not None:
            found.append(hit)
    return max(found, key=lambda o: aware(o.created_at) or now) if found else None


def link_call(session: Session, order: WorkOrder, linkedid: str, recording: str = "") -> OrderCall:
    linkedid = clean(linkedid, 64)
    if not ids.CALL_ID.fullmatch(linkedid):
        raise DispatchError("not a call id")
    existing = session.exec(
        select(OrderCall).where(OrderCall.order_id == order.id, OrderCall.linkedid == linkedid)
    ).first()
    if existing is not None:
        return existing
    assert order.id is not None
    row = OrderCall(order_id=order.id, linkedid=linkedid, recording=clean(recording, 255))
    session.add(row)
    return row
