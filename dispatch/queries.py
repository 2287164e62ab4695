"""Reads of work orders for the pages: the order as the pages show it (``order_views``), the staff
list with its filters, the history, and the order form's options.

A page of orders is shown with their outlet, suggested outlet, community, grid, resident, repeat
and merge target, and category path: ``order_views`` loads those for the whole page in one joined
query plus one of the category tree, instead of a ``get`` per relation per order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, or_, select

from callcenter.clock import aware, local_minute, utcnow
from callcenter.directory.models import Community, Grid, Outlet
from callcenter.residents.models import Resident
from dispatch import service, transitions
from dispatch.actors import Actor
from dispatch.models import DISSATISFIED, ORDER_TYPES, Category, Status, WorkOrder

PAGE_SIZE = 50
# The statuses the list filters by, in the order of an order's life.
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


def _category_paths(db: Session, orders: Sequence[WorkOrder]) -> dict[int, str]:
    """Each order's category as its path in the tree ("市政 / 路灯"), at most eight levels."""
    wanted = {o.category_id for o in orders if o.category_id}
    if not wanted:
        return {}
    nodes = {
        cid: (name, parent)
        for cid, name, parent in db.connection().execute(
            sa.select(col(Category.id), col(Category.name), col(Category.parent_id))
        )
    }
    paths: dict[int, str] = {}
    for start in wanted:
        names: list[str] = []
        seen: set[int] = set()
        current: int | None = start
        while current is not None and current in nodes and current not in seen and len(names) < 8:
            name, parent = nodes[current]
            names.append(name)
            seen.add(current)
            current = parent
        paths[start] = " / ".join(reversed(names))
    return paths


def order_views(db: Session, orders: Sequence[WorkOrder], actor: Actor | None = None) -> list[dict[str, Any]]:
    """The orders as the pages and the console's API show them (one joined query for the page)."""
    if not orders:
        return []
    assigned = aliased(Outlet)
    suggested = aliased(Outlet)
    repeat_of = aliased(WorkOrder)
    merged_into = aliased(WorkOrder)
    query = (
        sa.select(
            col(WorkOrder.id),
            col(assigned.id),
            col(assigned.name),
            col(suggested.id),
            col(suggested.name),
            col(Community.name),
            col(Grid.name),
            col(Resident.id),
            col(Resident.name),
            col(repeat_of.number),
            col(merged_into.number),
        )
        .select_from(WorkOrder)
        .outerjoin(assigned, col(assigned.id) == col(WorkOrder.outlet_id))
        .outerjoin(suggested, col(suggested.id) == col(WorkOrder.suggested_outlet_id))
        .outerjoin(Community, col(Community.id) == col(WorkOrder.community_id))
        .outerjoin(Grid, col(Grid.id) == col(WorkOrder.grid_id))
        .outerjoin(Resident, col(Resident.id) == col(WorkOrder.resident_id))
        .outerjoin(repeat_of, col(repeat_of.id) == col(WorkOrder.repeat_of_id))
        .outerjoin(merged_into, col(merged_into.id) == col(WorkOrder.merged_into_id))
        .where(col(WorkOrder.id).in_([o.id for o in orders]))
    )
    related = {row[0]: row for row in db.connection().execute(query)}
    paths = _category_paths(db, orders)
    now = utcnow()
    views = []
    for order in orders:
        _, out_id, out_name, sug_id, sug_name, community, grid, res_id, res_name, repeat, merged = (
            related.get(order.id, (None,) * 11)
        )
        deadline = aware(order.deadline_at)
        views.append(
            {
                "id": order.id,
                "number": order.number,
                "short_code": order.short_code,
                "type": order.order_type,
                "category": (paths.get(order.category_id, "") if order.category_id else "") or order.category,
                "urgency": order.urgency,
                "status": order.status,
                "summary": order.summary,
                "resident": {"id": res_id, "name": res_name} if res_id is not None else None,
                "caller_phone": order.caller_phone,
                "caller_name": order.caller_name,
                "community": community or "",
                "grid": grid or "",
                "address": order.address,
                "outlet": {"id": out_id, "name": out_name} if out_id is not None else None,
                "suggested_outlet": {"id": sug_id, "name": sug_name} if sug_id is not None else None,
                "created_at": local_minute(order.created_at),
                "created_by": order.created_by,
                "deadline_at": local_minute(order.deadline_at),
                "overdue": bool(deadline and order.status in Status.AT_OUTLET and deadline < now),
                "extension_requested_until": local_minute(order.extension_requested_until),
                "resolution": order.resolution,
                "return_reason": order.return_reason,
                "satisfaction": order.satisfaction,
                "reviewed": order.reviewed,
                "public": order.public,
                "reopen_count": order.reopen_count,
                "repeat_of": repeat or "",
                "merged_into": merged or "",
                "allowed": transitions.allowed_actions(order, actor) if actor else [],
            }
        )
    return views


def order_view(db: Session, order: WorkOrder, actor: Actor | None = None) -> dict[str, Any]:
    return order_views(db, [order], actor)[0]


def history_view(db: Session, order_id: int) -> list[dict[str, Any]]:
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


@dataclass(frozen=True, slots=True)
class OrderFilters:
    """The staff list's filters, as the page's query string gives them."""

    status: str = ""
    order_type: str = ""
    q: str = ""
    overdue: bool = False
    # Rated dissatisfied at the 回访 and waiting for a supervisor to re-open (重办) or close it
    reopen_review: bool = False


def awaiting_reopen_review() -> list[Any]:
    """The conditions of an order a resident rated dissatisfied that no supervisor has decided on:
    it stays 已回访 until a supervisor re-opens it (重办) or closes it (``transitions``)."""
    return [WorkOrder.status == Status.FOLLOWED_UP, WorkOrder.satisfaction == DISSATISFIED]


def count_reopen_review(db: Session) -> int:
    count = select(func.count()).select_from(WorkOrder)
    for c in awaiting_reopen_review():
        count = count.where(c)
    return db.exec(count).one()


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[WorkOrder]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, (self.total + PAGE_SIZE - 1) // PAGE_SIZE)


def list_orders(db: Session, filters: OrderFilters, page: int = 1) -> OrderPage:
    """One page of the staff list, newest first, with the number of orders that match."""
    query = select(WorkOrder)
    count = select(func.count()).select_from(WorkOrder)
    conds: list[Any] = []
    if filters.status in STATUSES:
        conds.append(WorkOrder.status == filters.status)
    if filters.order_type in ORDER_TYPES:
        conds.append(WorkOrder.order_type == filters.order_type)
    if filters.q.strip():
        text = filters.q.strip()
        conds.append(
            or_(
                col(WorkOrder.number) == text,
                col(WorkOrder.short_code) == text,
                col(WorkOrder.summary).contains(text, autoescape=True),
                col(WorkOrder.address).contains(text, autoescape=True),
            )
        )
    if filters.overdue:
        conds.append(col(WorkOrder.status).in_(Status.AT_OUTLET))
        conds.append(col(WorkOrder.deadline_at) < utcnow())
    if filters.reopen_review:
        conds.extend(awaiting_reopen_review())
    for c in conds:
        query = query.where(c)
        count = count.where(c)
    total = db.exec(count).one()
    rows = db.exec(
        query.order_by(col(WorkOrder.id).desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    return OrderPage(orders=list(rows), total=total, page=page)


def outlets(db: Session) -> list[Outlet]:
    return list(db.exec(select(Outlet).order_by(Outlet.kind, Outlet.name)))


def categories(db: Session) -> list[dict[str, Any]]:
    """The category tree, flattened depth-first, with each node's depth (for indented options)."""
    rows = list(db.exec(select(Category).where(col(Category.active)).order_by(Category.code)))
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
