"""The work-order lifecycle: creating orders and the state machine.

``transition(session, order, action, actor, **details)`` is the one way an order changes status:
it checks that the actor's role may take the action and that the order's status allows it,
applies it, writes the order's history row and — for 派单 / 改派 / 催办 / 督办 / 重办 — enqueues the
outlet's SMS through ``sms.service.enqueue_sms`` in the same transaction. It flushes but does not
commit: the caller commits, so the order change, its history and its SMS commit together.

Actions (with the aliases SMS replies and forms use):
  直接答复, 派单, 改派, 签收, 办理 (进度), 办结, 退单, 延期 (延期申请), 延期审批, 催办, 督办,
  回访, 审核, 重办, 并单, 归档.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from callcenter import ids
from callcenter.accounts.models import Role
from callcenter.clock import aware, utcnow
from callcenter.config import CHINA_TZ
from callcenter.directory.models import Outlet
from callcenter.errors import UserError
from callcenter.residents.models import ServiceArchive
from dispatch import deadlines
from dispatch.models import (
    ORDER_TYPES,
    URGENCIES,
    Category,
    OrderCall,
    OrderHistory,
    Status,
    WorkOrder,
)

log = logging.getLogger(__name__)

SYSTEM = "system"  # the deadline scheduler's role

STAFF = frozenset({Role.SEAT.value, Role.SUPERVISOR.value, Role.ADMIN.value})
SUPERVISORS = frozenset({Role.SUPERVISOR.value, Role.ADMIN.value})
OUTLET = frozenset({Role.OUTLET.value})
SATISFACTION = ("满意", "基本满意", "不满意")


def followup_reference(order: WorkOrder) -> str:
    """How a follow-up call names its order (telephony hands it back with the rating)."""
    return f"order:{order.number}"


# The follow-up call's keypad rating (1 very satisfied … 5 very dissatisfied) as 回访 records it.
RATING_SATISFACTION = {1: "满意", 2: "满意", 3: "基本满意", 4: "不满意", 5: "不满意"}


@dataclass(frozen=True)
class Actor:
    """Who acts: an account (username, role, the outlet of an outlet user) or the scheduler."""

    username: str
    role: str
    outlet_id: int | None = None

    @classmethod
    def system(cls, username: str = "scheduler") -> Actor:
        return cls(username=username, role=SYSTEM)

    @classmethod
    def of(cls, account: Any) -> Actor:
        return cls(username=account.username, role=account.role, outlet_id=account.outlet_id)


class DispatchError(UserError, domain="dispatch"):
    """A request refused with a message a person can act on. ``code`` says why:
    ``role`` (this role may not), ``state`` (not in this status), ``outlet`` (another outlet's
    order), ``invalid`` (missing or bad details), ``not_found``."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


TransitionError = DispatchError


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    from_states: frozenset[str]
    to_state: str | None  # None: the status stays (reminders, extensions, reviews)


ACTIONS: dict[str, Rule] = {
    "直接答复": Rule(STAFF, frozenset({Status.RECEIVED}), Status.CLOSED),
    "派单": Rule(STAFF, frozenset({Status.RECEIVED}), Status.DISPATCHED),
    "改派": Rule(
        STAFF,
        frozenset({Status.DISPATCHED, Status.ACCEPTED, Status.IN_PROGRESS, Status.RETURNED}),
        Status.DISPATCHED,
    ),
    "签收": Rule(OUTLET, frozenset({Status.DISPATCHED}), Status.ACCEPTED),
    "办理": Rule(OUTLET, frozenset({Status.ACCEPTED, Status.IN_PROGRESS}), Status.IN_PROGRESS),
    "办结": Rule(OUTLET, frozenset({Status.ACCEPTED, Status.IN_PROGRESS}), Status.RESOLVED),
    "退单": Rule(OUTLET, frozenset({Status.DISPATCHED, Status.ACCEPTED}), Status.RETURNED),
    "延期": Rule(OUTLET, Status.AT_OUTLET, None),
    "延期审批": Rule(SUPERVISORS, Status.AT_OUTLET, None),
    "催办": Rule(STAFF | {SYSTEM}, Status.AT_OUTLET, None),
    "督办": Rule(SUPERVISORS | {SYSTEM}, Status.AT_OUTLET | {Status.RETURNED}, None),
    "回访": Rule(STAFF | {SYSTEM}, frozenset({Status.RESOLVED}), Status.FOLLOWED_UP),
    "审核": Rule(SUPERVISORS, frozenset({Status.RESOLVED, Status.FOLLOWED_UP}), None),
    "重办": Rule(STAFF, frozenset({Status.FOLLOWED_UP}), Status.DISPATCHED),
    "并单": Rule(STAFF, Status.OPEN, Status.MERGED),
    "归档": Rule(STAFF, frozenset({Status.FOLLOWED_UP}), Status.CLOSED),
}

ALIASES: dict[str, str] = {
    "进度": "办理",
    "延期申请": "延期",
    "accept": "签收",
    "progress": "办理",
    "resolve": "办结",
    "return": "退单",
    "dispatch": "派单",
    "redispatch": "改派",
    "answer": "直接答复",
    "remind": "催办",
    "supervise": "督办",
    "follow_up": "回访",
    "review": "审核",
    "reopen": "重办",
    "merge": "并单",
    "close": "归档",
    "extend": "延期",
    "approve_extension": "延期审批",
}


def canonical_action(action: str) -> str:
    action = action.strip()
    return ALIASES.get(action, action)


def _clean(text: Any, limit: int) -> str:
    """Printable text only (no control characters from SMS or forms), trimmed."""
    return "".join(ch for ch in str(text or "") if ch.isprintable()).strip()[:limit]


def allowed_actions(order: WorkOrder, actor: Actor, now: datetime | None = None) -> list[str]:
    """What this actor may do to this order now (the pages show these buttons)."""
    out = []
    for name in ACTIONS:
        try:
            _check(order, name, actor, now or utcnow())
        except DispatchError:
            continue
        out.append(name)
    return out


def _check(order: WorkOrder, action: str, actor: Actor, now: datetime) -> Rule:
    rule = ACTIONS.get(action)
    if rule is None:
        raise DispatchError(f"unknown action {action!r}", "invalid")
    if actor.role not in rule.roles:
        raise DispatchError(f"{action}: not allowed for the role {actor.role}", "role")
    if actor.role == Role.OUTLET.value and (actor.outlet_id is None or actor.outlet_id != order.outlet_id):
        raise DispatchError(f"order {order.number} is not dispatched to this outlet", "outlet")
    if order.status not in rule.from_states:
        raise DispatchError(f"{action}: not possible while the order is {order.status}", "state")
    deadline = aware(order.deadline_at)
    if action == "直接答复" and order.order_type == "投诉":
        raise DispatchError("complaints (投诉) are reviewed by a supervisor before closing", "state")
    if action == "延期":
        if order.extension_requested_until is not None:
            raise DispatchError("an extension is already waiting for approval", "state")
        if deadline is not None and now >= deadline:
            raise DispatchError("an extension must be requested before the deadline", "state")
    if action == "延期审批":
        if order.extension_requested_until is None:
            raise DispatchError("no extension has been requested", "state")
    if action == "重办" and order.satisfaction != "不满意":
        raise DispatchError("only a dissatisfied follow-up reopens an order", "state")
    if action == "归档":
        if order.order_type == "投诉" and not order.reviewed:
            raise DispatchError("complaints (投诉) need a supervisor's review before closing", "state")
        if order.satisfaction == "不满意" and actor.role not in SUPERVISORS:
            raise DispatchError("a dissatisfied order is reopened (重办) or closed by a supervisor", "role")
    if action == "审核" and (order.order_type != "投诉" or order.reviewed):
        raise DispatchError("only complaints not yet reviewed need a review", "state")
    return rule


def can(order: WorkOrder, action: str, actor: Actor, now: datetime | None = None) -> bool:
    try:
        _check(order, canonical_action(action), actor, now or utcnow())
    except DispatchError:
        return False
    return True


# --- numbers and codes ---------------------------------------------------------------------


def next_number(session: Session, now: datetime) -> str:
    """GD<yyyymmdd>-<5 digits>, counted per China day (a range scan on the unique index)."""
    prefix = "GD" + now.astimezone(CHINA_TZ).strftime("%Y%m%d") + "-"
    last = session.exec(
        select(WorkOrder.number)
        .where(WorkOrder.number >= prefix, WorkOrder.number < prefix[:-1] + ".")
        .order_by(col(WorkOrder.number).desc())
        .limit(1)
    ).first()
    seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{seq:05d}"


def new_short_code(session: Session) -> str:
    """A random code unique among open orders: 4 digits while they last, then 5, then 6."""
    for digits in (4, 5, 6):
        for _ in range(12):
            code = str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))
            if session.exec(select(WorkOrder.id).where(WorkOrder.open_code == code)).first() is None:
                return code
    raise DispatchError("no free short code", "invalid")


def find_by_short_code(session: Session, code: str) -> WorkOrder | None:
    """The open order an SMS reply's code names (closed orders release their codes)."""
    code = str(code).strip()
    if not re.fullmatch(r"[0-9]{4,6}", code):
        return None
    return session.exec(select(WorkOrder).where(WorkOrder.open_code == code)).first()


def find_by_number(session: Session, number: str) -> WorkOrder | None:
    return session.exec(select(WorkOrder).where(WorkOrder.number == number.strip()[:32])).first()


# --- creating ------------------------------------------------------------------------------


def _history(
    session: Session,
    order: WorkOrder,
    actor: Actor,
    action: str,
    from_status: str,
    note: str = "",
    now: datetime | None = None,
    **detail: Any,
) -> OrderHistory:
    row = OrderHistory(
        order_id=order.id,
        at=now or utcnow(),
        actor=actor.username,
        role=actor.role,
        action=action,
        from_status=from_status,
        to_status=order.status,
        note=note[:1000],
        detail={k: v for k, v in detail.items() if v not in (None, "")},
    )
    session.add(row)
    return row  # flushed with the transaction (or by a notice that needs its id)


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
) -> WorkOrder:
    """受理: a new order (status 受理), with the routing suggestion and a repeat flag. No commit."""
    from dispatch import routing

    now = now or utcnow()
    if actor.role not in STAFF:
        raise DispatchError(f"受理: not allowed for the role {actor.role}", "role")
    if order_type not in ORDER_TYPES:
        raise DispatchError(f"unknown order type {order_type!r}")
    if urgency not in URGENCIES:
        raise DispatchError(f"unknown urgency {urgency!r}")
    summary = _clean(summary, 1000)
    if not summary:
        raise DispatchError("a description is required")
    category = session.get(Category, category_id) if category_id is not None else None
    if category_id is not None and category is None:
        raise DispatchError("unknown category")
    linkedid = _clean(call_linkedid, 64)
    if linkedid and not ids.CALL_ID.match(linkedid):
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
        caller_phone=_clean(caller_phone, 40),
        caller_name=_clean(caller_name, 64),
        community_id=community_id,
        grid_id=grid_id,
        address=_clean(address, 255),
        call_linkedid=linkedid,
        created_by=actor.username,
        created_at=now,
        updated_at=now,
    )
    code = new_short_code(session)
    order.short_code = code
    order.open_code = code
    suggestion = routing.suggest(session, category_id, community_id)
    order.suggested_outlet_id = suggestion.outlet_id if suggestion else None
    repeat = find_repeat(session, order, now)
    order.repeat_of_id = repeat.id if repeat else None
    _insert_unique(session, order, now)
    if linkedid:
        session.add(OrderCall(order_id=order.id, linkedid=linkedid, linked_at=now))
    _history(
        session,
        order,
        actor,
        "受理",
        "",
        now=now,
        suggested_outlet=order.suggested_outlet_id,
        repeat_of=repeat.number if repeat else None,
    )
    return order


def _insert_unique(session: Session, order: WorkOrder, now: datetime) -> None:
    """Insert with a fresh number and code; another seat may take the same ones between our read
    and our insert: the unique indexes refuse the second, which takes the next ones (savepoint)."""
    for attempt in range(50):
        if attempt:
            order.number = next_number(session, now)
            order.short_code = order.open_code = new_short_code(session)
        try:
            with session.begin_nested():
                session.add(order)
                session.flush()
            return
        except IntegrityError:
            if order in session:
                session.expunge(order)
    raise DispatchError("could not number the order; try again", "invalid")


REPEAT_WINDOW = timedelta(days=7)


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
    return max(found, key=lambda o: aware(o.created_at)) if found else None


def link_call(session: Session, order: WorkOrder, linkedid: str, recording: str = "") -> OrderCall:
    linkedid = _clean(linkedid, 64)
    if not ids.CALL_ID.match(linkedid):
        raise DispatchError("not a call id")
    existing = session.exec(
        select(OrderCall).where(OrderCall.order_id == order.id, OrderCall.linkedid == linkedid)
    ).first()
    if existing is not None:
        return existing
    row = OrderCall(order_id=order.id, linkedid=linkedid, recording=_clean(recording, 255))
    session.add(row)
    return row


# --- notices -------------------------------------------------------------------------------

SMS_SIGNATURE = "【安宁社区热线】"


def _enqueue_sms(session: Session, to: str, body: str, key: str, order: WorkOrder) -> bool:
    """The outlet's SMS, in this transaction, through the messaging outbox."""
    if not to:
        return False
    try:
        from sms.service import enqueue_sms
    except ImportError:
        log.warning("sms.service is not available; order %s: no SMS to %s", order.number, to)
        return False
    enqueue_sms(session, to=to, body=body, idempotency_key=key, order_id=order.id)
    return True


def _deadline_text(order: WorkOrder) -> str:
    due = aware(order.deadline_at)
    return due.astimezone(CHINA_TZ).strftime("%m-%d %H:%M") if due else ""


def outlet_sms_body(order: WorkOrder, action: str) -> str:
    """Plain text, no links (China's SMS gateways refuse them), the reply forms spelled out."""
    code = order.short_code
    head = {"催办": "催办：", "督办": "督办：", "重办": "重办：", "改派": ""}.get(action, "")
    where = order.address or ""
    body = (
        f"{SMS_SIGNATURE}{head}工单{order.number}（{order.order_type}"
        f"{'/' + order.category if order.category else ''}{'/紧急' if order.urgency == 'urgent' else ''}）"
        f"{_clean(order.summary, 60)}"
        f"{'，地址：' + where if where else ''}"
        f"，办结时限{_deadline_text(order)}。"
        f"回复“签收 {code}”签收，“进度 {code} 说明”，“办结 {code} 说明”，“退单 {code} 原因”。"
    )
    return body


def _notify_outlet(session: Session, order: WorkOrder, action: str, hist: OrderHistory) -> None:
    outlet = session.get(Outlet, order.outlet_id) if order.outlet_id else None
    if outlet is None:
        return
    _enqueue_sms(session, outlet.phone, outlet_sms_body(order, action), f"order:{order.id}:{hist.id}", order)


def _notify_supervisors(session: Session, order: WorkOrder, hist: OrderHistory) -> None:
    """督办: an SMS to each supervisor's mobile in the settings (their e-mail is messaging's)."""
    from callcenter.config import get_settings

    body = (
        f"{SMS_SIGNATURE}督办：工单{order.number}（{order.order_type}）已超过办结时限"
        f"{_deadline_text(order)}，状态{order.status}。"
    )
    for i, phone in enumerate(get_settings().supervisor_phones):
        _enqueue_sms(session, phone, body, f"order:{order.id}:{hist.id}:sup{i}", order)


# --- the state machine ---------------------------------------------------------------------


def _set_deadline(order: WorkOrder, now: datetime) -> None:
    order.deadline_at, order.remind_at = deadlines.deadline(now, order.order_type, order.urgency)
    order.accept_due_at = deadlines.accept_deadline(now, order.urgency)
    order.reminded_at = None
    order.supervised_at = None
    order.extension_requested_until = None


def _outlet_for(session: Session, details: dict[str, Any]) -> Outlet:
    outlet_id = details.get("outlet_id")
    try:
        outlet = session.get(Outlet, int(outlet_id)) if outlet_id not in (None, "") else None
    except (TypeError, ValueError):
        outlet = None
    if outlet is None:
        raise DispatchError("choose the outlet to dispatch to")
    return outlet


def _archive(session: Session, order: WorkOrder, now: datetime) -> None:
    """The resident's service archive: what, by which outlet, when, outcome (once per order)."""
    if order.resident_id is None:
        return
    outlet = session.get(Outlet, order.outlet_id) if order.outlet_id else None
    existing = session.exec(select(ServiceArchive).where(ServiceArchive.order_id == order.id)).first()
    row = existing or ServiceArchive(
        resident_id=order.resident_id, order_id=order.id, service="", delivered_at=now
    )
    row.service = _clean(f"{order.category or order.order_type}：{order.summary}", 128)
    row.outlet_id = order.outlet_id
    row.outlet_name = outlet.name if outlet else ""
    row.delivered_at = now
    row.outcome = order.resolution or "已办结"
    session.add(row)


def transition(
    session: Session,
    order: WorkOrder,
    action: str,
    actor: Actor,
    now: datetime | None = None,
    **details: Any,
) -> WorkOrder:
    """Apply ``action`` to ``order`` for ``actor`` (see the module's docstring). No commit.

    Raises ``DispatchError`` (alias ``TransitionError``) when the role or status does not allow
    it, or a required detail is missing: ``note``, ``reason``, ``outlet_id``, ``until``,
    ``approve``, ``satisfaction``, ``into``.
    """
    now = now or utcnow()
    action = canonical_action(action)
    rule = _check(order, action, actor, now)
    before = order.status
    note = _clean(details.get("note") or details.get("reason") or "", 1000)
    extra: dict[str, Any] = {}
    notify: str | None = None  # the outlet's SMS after the history row exists

    if action == "直接答复":
        order.resolution = note or "已在来电中答复"
        order.resolved_at = order.closed_at = now
    elif action in ("派单", "改派"):
        outlet = _outlet_for(session, details)
        if action == "改派" and outlet.id == order.outlet_id and before != Status.RETURNED:
            raise DispatchError("re-dispatch to another outlet")
        extra["outlet"] = outlet.name
        extra["from_outlet"] = order.outlet_id
        extra["suggested"] = order.suggested_outlet_id
        order.outlet_id = outlet.id
        order.dispatched_at = now
        order.accepted_at = None
        order.return_reason = ""
        _set_deadline(order, now)
        notify = action
    elif action == "签收":
        order.accepted_at = now
    elif action == "办理":
        if not note:
            raise DispatchError("describe the progress")
    elif action == "办结":
        order.resolution = note or "已办结"
        order.resolved_at = now
        order.extension_requested_until = None
        # The resident is called for their rating (回访) once the order is resolved (not for
        # orders resolved in the past: imports, demo history).
        if details.get("followup_call", True):
            from callcenter.callcontrol.callbacks import request_followup

            extra["followup_call"] = request_followup(session, order.caller_phone, followup_reference(order))
    elif action == "退单":
        if not note:
            raise DispatchError("a reason is required to return an order")
        order.return_reason = note[:255]
        order.return_count += 1
        extra["outlet_id"] = order.outlet_id
    elif action == "延期":
        until = details.get("until")
        if isinstance(until, str):
            try:
                until = datetime.fromisoformat(until)
            except ValueError:
                until = None
        until = aware(until) if isinstance(until, datetime) else None
        deadline = aware(order.deadline_at)
        if until is None or (deadline is not None and until <= deadline):
            raise DispatchError("ask for a new deadline later than the current one")
        if not note:
            raise DispatchError("a reason is required for an extension")
        order.extension_requested_until = until
        order.extension_reason = note[:255]
        extra["until"] = until.isoformat()
    elif action == "延期审批":
        deadline = aware(order.deadline_at)
        if deadline is not None and now >= deadline:
            raise DispatchError("the deadline has passed: the extension lapsed (督办 instead)", "state")
        approve = details.get("approve")
        if isinstance(approve, str):
            approve = approve.lower() in ("1", "true", "yes", "on", "approve", "同意")
        until = aware(order.extension_requested_until)
        extra["approved"] = bool(approve)
        extra["until"] = until.isoformat() if until else None
        if approve and until is not None:
            span = (until - deadline) if deadline else timedelta(0)
            order.deadline_at = until
            if order.remind_at is not None:
                order.remind_at = aware(order.remind_at) + span
            order.reminded_at = None
        order.extension_requested_until = None
    elif action == "催办":
        order.reminded_at = now
        notify = action
    elif action == "督办":
        order.supervised_at = now
        notify = action if order.status in Status.AT_OUTLET else None
    elif action == "回访":
        satisfaction = _clean(details.get("satisfaction"), 16)
        if satisfaction not in SATISFACTION:
            raise DispatchError("satisfaction: 满意, 基本满意 or 不满意")
        order.satisfaction = satisfaction
        extra["satisfaction"] = satisfaction
    elif action == "审核":
        order.reviewed = True
    elif action == "重办":
        order.reopen_count += 1
        order.satisfaction = ""
        order.resolution = ""
        order.resolved_at = None
        order.accepted_at = None
        if details.get("outlet_id") not in (None, ""):
            order.outlet_id = _outlet_for(session, details).id
        if order.outlet_id is None:
            raise DispatchError("choose the outlet to dispatch to")
        order.dispatched_at = now
        _set_deadline(order, now)
        notify = action
    elif action == "并单":
        into = details.get("into")
        target = None
        if isinstance(into, int) or (isinstance(into, str) and into.isdigit()):
            target = session.get(WorkOrder, int(into))
        elif isinstance(into, str) and into.strip():
            target = find_by_number(session, into)
        if target is None or target.id == order.id:
            raise DispatchError("name the order to merge into")
        if target.status in Status.FINAL:
            raise DispatchError(f"order {target.number} is {target.status}: merge into an open one")
        order.merged_into_id = target.id
        extra["into"] = target.number
        _history(
            session,
            target,
            actor,
            "并单",
            target.status,
            note=f"并入 {order.number}",
            now=now,
            merged=order.number,
        )
    elif action == "归档":
        order.closed_at = now

    if rule.to_state is not None:
        order.status = rule.to_state
    if order.status in Status.FINAL:
        order.open_code = None  # the short code is free for new orders
    order.updated_at = now
    session.add(order)
    hist = _history(session, order, actor, action, before, note=note, now=now, **extra)
    if action == "办结":
        _archive(session, order, now)
    if notify is not None or action == "督办":
        session.flush()  # the notices' idempotency keys carry the history row's id
    if notify is not None:
        _notify_outlet(session, order, notify, hist)
    if action == "督办":
        _notify_supervisors(session, order, hist)
    return order


def history(session: Session, order_id: int) -> list[OrderHistory]:
    return list(
        session.exec(
            select(OrderHistory).where(OrderHistory.order_id == order_id).order_by(col(OrderHistory.id))
        )
    )
