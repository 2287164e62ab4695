"""Order operations that span domains: an action taken on an order, with its attachment and its
line in the audit log, in one transaction. The staff pages and the outlet's pages both act
through here, so an action is audited the same way whoever takes it and wherever."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from callcenter.audit.service import record as audit
from callcenter.config import Settings
from dispatch import attachments, transitions
from dispatch.actors import Actor
from dispatch.errors import DispatchError
from dispatch.models import WorkOrder


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, for the audit log: the account (or the signed link's outlet), role, address, and
    the channel (``web``, ``outlet``, ``link`` …)."""

    name: str
    role: str
    ip: str
    via: str


def act_on_order(
    session: Session,
    settings: Settings,
    order_id: int,
    action: str,
    actor: Actor,
    requester: Requester,
    args: dict[str, Any],
    attachment: tuple[str, bytes] | None = None,
) -> WorkOrder:
    """Take ``action`` on the order (``transitions.transition``), store the attached file if any,
    and write the audit line; the caller commits, so all of it lands together or not at all."""
    order = session.get(WorkOrder, order_id)
    if order is None:
        raise DispatchError("no such order", "not_found")
    before = order.status
    transitions.transition(session, order, action, actor, settings=settings, **args)
    if attachment is not None and attachment[1]:
        attachments.save(session, settings, order, attachment[0], attachment[1], requester.name)
    audit(
        session,
        requester.name,
        "order.transition",
        target=f"order:{order.number}",
        role=requester.role,
        ip=requester.ip,
        transition=transitions.canonical_action(action),
        before=before,
        after=order.status,
        via=requester.via,
    )
    return order
