"""An order's grid event (and approval record, for approval matters), kept in step with the order.

``notices.order_changed`` calls ``sync_order`` after every order change, in the same
transaction; a record whose fields changed bumps its version and queues a signed webhook delivery
per configured URL (``callcenter.records.service`` pushes them).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel import Session, select

from callcenter.clock import utcnow
from callcenter.config import Settings
from callcenter.database import saved_id
from callcenter.directory.models import Community, Grid
from callcenter.records.models import ApprovalRecord, GridEvent
from callcenter.records.service import queue_delivery
from callcenter.residents.models import Resident
from dispatch.models import Category, Status, WorkOrder

Record = TypeVar("Record", GridEvent, ApprovalRecord)

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
    _record_version(session, GridEvent, order, values, "grid_event", "grid", settings.grid_webhook_url)

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
    _record_version(
        session, ApprovalRecord, order, values, "approval_record", "approval", settings.approval_webhook_url
    )


def _record_version(
    session: Session,
    model: type[Record],
    order: WorkOrder,
    values: dict[str, Any],
    kind: str,
    target: str,
    url: str,
) -> None:
    """A new version of the order's record when something it shows changed, and its webhook."""
    found: Record | None = session.exec(select(model).where(model.order_id == order.id)).first()
    if found is not None and all(getattr(found, k) == v for k, v in values.items()):
        return
    row: Record = found or model(order_id=saved_id(order), order_number=order.number)
    for k, v in values.items():
        setattr(row, k, v)
    row.version += 1
    row.updated_at = utcnow()
    session.add(row)
    payload = {"type": kind, "order_number": order.number, "version": row.version, **values}
    payload["updated_at"] = row.updated_at.isoformat()
    queue_delivery(session, target, url, payload)
