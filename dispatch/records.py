"""An order's grid event (and approval record, for approval matters), kept in step with the order.

``notices.order_changed`` calls ``sync_order`` after every order change, in the same
transaction; a record whose fields changed bumps its version and queues a signed webhook delivery
per configured URL (``callcenter.records.service`` pushes them).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from callcenter.clock import utcnow
from callcenter.config import Settings
from callcenter.directory.models import Community, Grid
from callcenter.records.models import ApprovalRecord, GridEvent
from callcenter.records.service import queue_delivery
from callcenter.residents.models import Resident
from dispatch.models import Category, Status, WorkOrder

# How the approval platform names an order's status.
APPROVAL_STATUS: dict[str, str] = {
    Status.RECEIVED: "受理",
    Status.DISPATCHED: "受理",
    Status.ACCEPTED: "办理中",
    Status.IN_PROGRESS: "办理中",
    Status.RESOLVED: "办结",
    Status.FOLLOWED_UP: "办结",
    Status.CLOSED: "办结",
    Status.RETURNED: "退回",
    Status.MERGED: "并件",
}


def sync_order(session: Session, order: WorkOrder, settings: Settings) -> None:
    """Create or update the order's grid event (and approval record for approval matters)."""
    if order.id is None or not order.number:
        return
    grid = session.get(Grid, order.grid_id) if order.grid_id else None
    community = session.get(Community, order.community_id) if order.community_id else None
    values: dict[str, Any] = {
        "grid_id": order.grid_id,
        "grid": grid.name if grid else "",
        "community": community.name if community else "",
        "category": order.category or order.order_type,
        "location": order.address or "",
        "status": order.status,
    }
    ev = session.exec(select(GridEvent).where(GridEvent.order_id == order.id)).first()
    if ev is None or any(getattr(ev, k) != v for k, v in values.items()):
        ev = ev or GridEvent(order_id=order.id, order_number=order.number)
        for k, v in values.items():
            setattr(ev, k, v)
        ev.version += 1
        ev.updated_at = utcnow()
        session.add(ev)
        payload = {"type": "grid_event", "order_number": order.number, "version": ev.version, **values}
        payload["updated_at"] = ev.updated_at.isoformat()
        queue_delivery(session, "grid", settings.grid_webhook_url, payload)

    category = session.get(Category, order.category_id) if order.category_id else None
    if category is None or not category.approval_matter:
        return
    applicant = order.caller_name
    if not applicant and order.resident_id:
        resident = session.get(Resident, order.resident_id)
        applicant = resident.name if resident else ""
    values = {
        "matter": category.name,
        "applicant": applicant or "",
        "status": APPROVAL_STATUS.get(order.status, order.status),
        "outcome": order.resolution or order.return_reason or "",
    }
    rec = session.exec(select(ApprovalRecord).where(ApprovalRecord.order_id == order.id)).first()
    if rec is None or any(getattr(rec, k) != v for k, v in values.items()):
        rec = rec or ApprovalRecord(order_id=order.id, order_number=order.number)
        for k, v in values.items():
            setattr(rec, k, v)
        rec.version += 1
        rec.updated_at = utcnow()
        session.add(rec)
        payload = {"type": "approval_record", "order_number": order.number, "version": rec.version, **values}
        payload["updated_at"] = rec.updated_at.isoformat()
        queue_delivery(session, "approval", settings.approval_webhook_url, payload)
