"""Order operations that span domains: an action taken on an order, with its attachment and its
line in the audit log, in one transaction. The staff pages and the outlet's pages both act
through here, so an action is audited the same way whoever takes it and wherever."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.knowledge import service as knowledge
from dispatch import attachments, service, transitions
from dispatch.actors import Actor
from dispatch.errors import DispatchError
from dispatch.models import Action, WorkOrder


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


def create_and_dispatch(
    session: Session, settings: Settings, actor: Actor, outlet_id: int, **fields: Any
) -> WorkOrder:
    """受理 and 派单 in one go (the console's order form with an outlet chosen): a new order
    (``service.create_order`` with ``fields``) dispatched to ``outlet_id`` at once. The resident
    gets one SMS, the receipt saying the order is already with an outlet, instead of the receipt
    and the dispatch notice; the outlet's SMS and e-mail are those of any 派单. The caller commits."""
    order = service.create_order(session, actor, settings=settings, receipt=False, **fields)
    transitions.transition(
        session,
        order,
        Action.DISPATCH.value,
        actor,
        settings=settings,
        with_receipt=True,
        outlet_id=outlet_id,
    )
    return order


@dataclass(frozen=True, slots=True)
class Caller:
    """The call a question came on: its id, the resident if known, the number and name shown."""

    linkedid: str = ""
    resident_id: int | None = None
    phone: str = ""
    name: str = ""


def answer_with_article(
    session: Session,
    settings: Settings,
    article_id: int,
    actor: Actor,
    requester: Requester,
    caller: Caller,
    summary: str = "",
) -> WorkOrder:
    """A 咨询 answered on the call from a knowledge-base article: a new order, closed at once by
    直接答复 with the article's spoken answer, the use counted on the article and linked to the
    order, and the audit line; the caller commits."""
    article = knowledge.get(session, article_id)
    if article.status != "published":
        raise knowledge.KnowledgeError("only a published article answers a call", "state")
    order = service.create_order(
        session,
        actor,
        order_type="咨询",
        summary=summary.strip() or article.title,
        category_id=article.category_id,
        resident_id=caller.resident_id,
        caller_phone=caller.phone,
        caller_name=caller.name,
        call_linkedid=caller.linkedid,
        settings=settings,
    )
    answer = f"知识库#{article.id} v{article.version}《{article.title}》：{article.spoken or article.answer}"
    transitions.transition(session, order, Action.ANSWER.value, actor, settings=settings, note=answer[:1000])
    assert order.id is not None
    knowledge.record_use(session, article_id, order.id, actor.username)
    audit(
        session,
        requester.name,
        "order.create",
        target=f"order:{order.number}",
        role=requester.role,
        ip=requester.ip,
        status=order.status,
        linkedid=order.call_linkedid,
        article=article_id,
        via=requester.via,
    )
    return order
