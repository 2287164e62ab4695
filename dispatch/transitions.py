"""The order state machine: ``transition(session, order, action, actor, **details)``.

It is the one way an order changes after it is taken. ``ACTIONS`` holds each action's rule (who
may take it, from which statuses, to which status) and its effect function, side by side. A
transition checks the rule, runs the effect on the order, sets the status, writes the history
row, and hands the change to ``notices.order_changed`` (SMS, e-mail, grid/approval records, the
follow-up call) in the same transaction. It flushes but does not commit: the caller commits, so
the order change, its history and its notices commit together.

Actions (with the aliases SMS replies and forms use): 直接答复, 派单, 改派, 签收, 办理 (进度), 办结,
退单, 延期 (延期申请), 延期审批, 催办, 督办, 回访, 审核, 重办, 并单, 归档.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from callcenter.accounts.models import Role
from callcenter.clock import aware, utcnow
from callcenter.config import Settings, get_settings
from callcenter.directory.models import Outlet
from callcenter.residents.models import ServiceArchive
from callcenter.text import is_digits
from dispatch import deadlines, holidays, notices, policies
from dispatch.actors import OUTLET, STAFF, SUPERVISORS, SYSTEM, Actor
from dispatch.errors import DispatchError
from dispatch.models import DISSATISFIED, SATISFACTION, Action, Status, WorkOrder
from dispatch.service import add_history, clean, find_by_number

log = logging.getLogger(__name__)


# The follow-up call's keypad rating (1 very satisfied … 5 very dissatisfied) as 回访 records it.
RATING_SATISFACTION = {1: "满意", 2: "满意", 3: "基本满意", 4: "不满意", 5: "不满意"}

ALIASES: dict[str, Action] = {
    "进度": Action.PROGRESS,
    "延期申请": Action.EXTEND,
    "accept": Action.ACCEPT,
    "progress": Action.PROGRESS,
    "resolve": Action.RESOLVE,
    "return": Action.RETURN,
    "dispatch": Action.DISPATCH,
    "redispatch": Action.REDISPATCH,
    "answer": Action.ANSWER,
    "remind": Action.REMIND,
    "supervise": Action.SUPERVISE,
    "follow_up": Action.FOLLOW_UP,
    "review": Action.REVIEW,
    "reopen": Action.REOPEN,
    "merge": Action.MERGE,
    "close": Action.CLOSE,
    "extend": Action.EXTEND,
    "approve_extension": Action.APPROVE_EXTENSION,
}


def canonical_action(action: str) -> str:
    """The action's stored name (the alias's action; anything else as given)."""
    action = action.strip()
    return ALIASES[action].value if action in ALIASES else action


@dataclass
class Step:
    """One transition under way: what an effect function reads, changes and reports."""

    session: Session
    order: WorkOrder
    actor: Actor
    now: datetime
    details: dict[str, Any]
    note: str
    before: str
    extra: dict[str, Any] = field(default_factory=dict)  # the history row's detail
    outlet_sms: bool = False  # the outlet hears of it by SMS (and e-mail)
    followup_call: bool = False  # the resident is called for their rating


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    from_states: frozenset[str]
    to_state: Status | None  # None: the status stays (reminders, extensions, reviews)
    effect: Callable[[Step], None]


# --- the effects, one per action ----------------------------------------------------------------


def _set_deadline(step: Step) -> None:
    order, now = step.order, step.now
    assumed: set[int] = set()
    calendar = holidays.current(step.session)
    policy = policies.current(step.session).get(order.order_type, order.urgency)
    order.deadline_at, order.remind_at = deadlines.deadline(
        now, order.order_type, order.urgency, calendar, assumed, policy
    )
    if assumed:  # no calendar knows these years: counted on weekdays, and the history says so
        step.extra["calendar_assumed"] = sorted(assumed)
        log.warning(
            "order %s: no holiday calendar for %s; deadline counted on weekdays", order.number, assumed
        )
    order.accept_due_at = deadlines.accept_deadline(now, order.urgency, policy)
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
    if order.resident_id is None or order.id is None:
        return
    outlet = session.get(Outlet, order.outlet_id) if order.outlet_id else None
    existing = session.exec(select(ServiceArchive).where(ServiceArchive.order_id == order.id)).first()
    row = existing or ServiceArchive(
        resident_id=order.resident_id, order_id=order.id, service="", delivered_at=now
    )
    row.service = clean(f"{order.category or order.order_type}：{order.summary}", 128)
    row.outlet_id = order.outlet_id
    row.outlet_name = outlet.name if outlet else ""
    row.delivered_at = now
    row.outcome = order.resolution or "已办结"
    session.add(row)


def _answer(step: Step) -> None:
    step.order.resolution = step.note or "已在来电中答复"
    step.order.resolved_at = step.order.closed_at = step.now


def _dispatch(step: Step, redispatch: bool = False) -> None:
    order = step.order
    outlet = _outlet_for(step.session, step.details)
    if redispatch and outlet.id == order.outlet_id and step.before != Status.RETURNED:
        raise DispatchError("re-dispatch to another outlet")
    step.extra["outlet"] = outlet.name
    step.extra["from_outlet"] = order.outlet_id
    step.extra["suggested"] = order.suggested_outlet_id
    order.outlet_id = outlet.id
    order.dispatched_at = step.now
    order.accepted_at = None
    order.return_reason = ""
    _set_deadline(step)
    step.outlet_sms = True


def _redispatch(step: Step) -> None:
    _dispatch(step, redispatch=True)


def _accept(step: Step) -> None:
    step.order.accepted_at = step.now


def _progress(step: Step) -> None:
    if not step.note:
        raise DispatchError("describe the progress")


def _resolve(step: Step) -> None:
    order = step.order
    order.resolution = step.note or "已办结"
    order.resolved_at = step.now
    order.extension_requested_until = None
    # The resident is called for their rating (回访) once the order is resolved (not for orders
    # resolved in the past: imports, demo history).
    step.followup_call = bool(step.details.get("followup_call", True))
    _archive(step.session, order, step.now)


def _return(step: Step) -> None:
    if not step.note:
        raise DispatchError("a reason is required to return an order")
    step.order.return_reason = step.note[:255]
    step.order.return_count += 1
    step.extra["outlet_id"] = step.order.outlet_id


# Past a century a date is a typo (9999-12-31), and deadline arithmetic near year 9999 overflows.
MAX_EXTENSION = timedelta(days=36_525)


def _extend(step: Step) -> None:
    order = step.order
    until = step.details.get("until")
    if isinstance(until, str):
        try:
            until = datetime.fromisoformat(until)
        except ValueError:
            until = None
    until = aware(until) if isinstance(until, datetime) else None
    deadline = aware(order.deadline_at)
    if until is None or (deadline is not None and until <= deadline):
        raise DispatchError("ask for a new deadline later than the current one")
    base = deadline or aware(order.created_at)
    if base is not None and until - base > MAX_EXTENSION:
        raise DispatchError("ask for a new deadline within a century")
    if not step.note:
        raise DispatchError("a reason is required for an extension")
    order.extension_requested_until = until
    order.extension_reason = step.note[:255]
    step.extra["until"] = until.isoformat()


def _approve_extension(step: Step) -> None:
    order = step.order
    deadline = aware(order.deadline_at)
    if deadline is not None and step.now >= deadline:
        raise DispatchError("the deadline has passed: the extension lapsed (督办 instead)", "state")
    approve = step.details.get("approve")
    if isinstance(approve, str):
        approve = approve.lower() in ("1", "true", "yes", "on", "approve", "同意")
    until = aware(order.extension_requested_until)
    step.extra["approved"] = bool(approve)
    step.extra["until"] = until.isoformat() if until else None
    if approve and until is not None:
        span = (until - deadline) if deadline else timedelta(0)
        order.deadline_at = until
        remind_at = aware(order.remind_at)
        if remind_at is not None:
            order.remind_at = remind_at + span
        order.reminded_at = None
    order.extension_requested_until = None


def _remind(step: Step) -> None:
    step.order.reminded_at = step.now
    step.outlet_sms = True


def _supervise(step: Step) -> None:
    step.order.supervised_at = step.now
    # The supervisors hear of it in any case; the outlet only while the order is with it.
    step.outlet_sms = step.order.status in Status.AT_OUTLET


def _follow_up(step: Step) -> None:
    satisfaction = clean(step.details.get("satisfaction"), 16)
    if satisfaction not in SATISFACTION:
        raise DispatchError("satisfaction: 满意, 基本满意 or 不满意")
    step.order.satisfaction = satisfaction
    step.extra["satisfaction"] = satisfaction
    # How the resident rated (call keypad, SMS reply, the resident's page) and the 1–5 given
    channel = clean(step.details.get("channel"), 16)
    if channel:
        step.extra["channel"] = channel
    rating = step.details.get("rating")
    if isinstance(rating, int) and 1 <= rating <= 5:
        step.extra["rating"] = rating


def _review(step: Step) -> None:
    step.order.reviewed = True


def _reopen(step: Step) -> None:
    order = step.order
    order.reopen_count += 1
    order.satisfaction = ""
    order.resolution = ""
    order.resolved_at = None
    order.accepted_at = None
    if step.details.get("outlet_id") not in (None, ""):
        order.outlet_id = _outlet_for(step.session, step.details).id
    if order.outlet_id is None:
        raise DispatchError("choose the outlet to dispatch to")
    order.dispatched_at = step.now
    _set_deadline(step)
    step.outlet_sms = True


def _merge(step: Step) -> None:
    order, session = step.order, step.session
    into = step.details.get("into")
    target = None
    if isinstance(into, int) and not isinstance(into, bool) and 0 < into < 2**62:
        target = session.get(WorkOrder, into)
    elif is_digits(into):
        target = session.get(WorkOrder, int(into))
    elif isinstance(into, str) and into.strip():
        target = find_by_number(session, into)
    if target is None or target.id == order.id:
        raise DispatchError("name the order to merge into")
    if target.status in Status.FINAL:
        raise DispatchError(f"order {target.number} is {target.status}: merge into an open one")
    order.merged_into_id = target.id
    step.extra["into"] = target.number
    add_history(
        session,
        target,
        step.actor,
        Action.MERGE,
        target.status,
        note=f"并入 {order.number}",
        now=step.now,
        merged=order.number,
    )


def _close(step: Step) -> None:
    step.order.closed_at = step.now


# --- the rules -----------------------------------------------------------------------------------

AT_OUTLET = Status.AT_OUTLET

ACTIONS: dict[Action, Rule] = {
    Action.ANSWER: Rule(STAFF, frozenset({Status.RECEIVED}), Status.CLOSED, _answer),
    Action.DISPATCH: Rule(STAFF, frozenset({Status.RECEIVED}), Status.DISPATCHED, _dispatch),
    Action.REDISPATCH: Rule(STAFF, AT_OUTLET | {Status.RETURNED}, Status.DISPATCHED, _redispatch),
    Action.ACCEPT: Rule(OUTLET, frozenset({Status.DISPATCHED}), Status.ACCEPTED, _accept),
    Action.PROGRESS: Rule(
        OUTLET, frozenset({Status.ACCEPTED, Status.IN_PROGRESS}), Status.IN_PROGRESS, _progress
    ),
    Action.RESOLVE: Rule(OUTLET, frozenset({Status.ACCEPTED, Status.IN_PROGRESS}), Status.RESOLVED, _resolve),
    Action.RETURN: Rule(OUTLET, frozenset({Status.DISPATCHED, Status.ACCEPTED}), Status.RETURNED, _return),
    Action.EXTEND: Rule(OUTLET, AT_OUTLET, None, _extend),
    Action.APPROVE_EXTENSION: Rule(SUPERVISORS, AT_OUTLET, None, _approve_extension),
    Action.REMIND: Rule(STAFF | {SYSTEM}, AT_OUTLET, None, _remind),
    Action.SUPERVISE: Rule(SUPERVISORS | {SYSTEM}, AT_OUTLET | {Status.RETURNED}, None, _supervise),
    Action.FOLLOW_UP: Rule(STAFF | {SYSTEM}, frozenset({Status.RESOLVED}), Status.FOLLOWED_UP, _follow_up),
    Action.REVIEW: Rule(SUPERVISORS, frozenset({Status.RESOLVED, Status.FOLLOWED_UP}), None, _review),
    Action.REOPEN: Rule(STAFF, frozenset({Status.FOLLOWED_UP}), Status.DISPATCHED, _reopen),
    Action.MERGE: Rule(STAFF, Status.OPEN, Status.MERGED, _merge),
    Action.CLOSE: Rule(STAFF, frozenset({Status.FOLLOWED_UP}), Status.CLOSED, _close),
}


def _check(order: WorkOrder, action: str, actor: Actor, now: datetime) -> Rule:
    try:
        rule = ACTIONS[Action(action)]
    except (ValueError, KeyError):  # not an action, or not one taken on an order (受理)
        raise DispatchError(f"unknown action {action!r}", "invalid") from None
    if actor.role not in rule.roles:
        raise DispatchError(f"{action}: not allowed for the role {actor.role}", "role")
    if actor.role == Role.OUTLET.value and (actor.outlet_id is None or actor.outlet_id != order.outlet_id):
        raise DispatchError(f"order {order.number} is not dispatched to this outlet", "outlet")
    if order.status not in rule.from_states:
        raise DispatchError(f"{action}: not possible while the order is {order.status}", "state")
    deadline = aware(order.deadline_at)
    if action == Action.ANSWER and order.order_type == "投诉":
        raise DispatchError("complaints (投诉) are reviewed by a supervisor before closing", "state")
    if action == Action.EXTEND:
        if order.extension_requested_until is not None:
            raise DispatchError("an extension is already waiting for approval", "state")
        if deadline is not None and now >= deadline:
            raise DispatchError("an extension must be requested before the deadline", "state")
    if action == Action.APPROVE_EXTENSION:
        if order.extension_requested_until is None:
            raise DispatchError("no extension has been requested", "state")
    if action == Action.REOPEN and order.satisfaction != DISSATISFIED:
        raise DispatchError("only a dissatisfied follow-up reopens an order", "state")
    if action == Action.CLOSE:
        if order.order_type == "投诉" and not order.reviewed:
            raise DispatchError("complaints (投诉) need a supervisor's review before closing", "state")
        if order.satisfaction == DISSATISFIED and actor.role not in SUPERVISORS:
            raise DispatchError("a dissatisfied order is reopened (重办) or closed by a supervisor", "role")
    if action == Action.REVIEW and (order.order_type != "投诉" or order.reviewed):
        raise DispatchError("only complaints not yet reviewed need a review", "state")
    return rule


def allowed_actions(order: WorkOrder, actor: Actor, now: datetime | None = None) -> list[str]:
    """What this actor may do to this order now (the pages show these buttons)."""
    out: list[str] = []
    for name in ACTIONS:
        try:
            _check(order, name, actor, now or utcnow())
        except DispatchError:
            continue
        out.append(name.value)
    return out


def can(order: WorkOrder, action: str, actor: Actor, now: datetime | None = None) -> bool:
    try:
        _check(order, canonical_action(action), actor, now or utcnow())
    except DispatchError:
        return False
    return True


def transition(
    session: Session,
    order: WorkOrder,
    action: str,
    actor: Actor,
    now: datetime | None = None,
    *,
    settings: Settings | None = None,
    with_receipt: bool = False,
    **details: Any,
) -> WorkOrder:
    """Apply ``action`` to ``order`` for ``actor`` (see the module's docstring). No commit.

    Raises ``DispatchError`` when the role or status does not allow it, or a required detail is
    missing: ``note``, ``reason``, ``outlet_id``, ``until``, ``approve``, ``satisfaction``,
    ``into``. ``settings``: where the notices go (the process's settings when not given).
    ``with_receipt``: a 派单 of an order just taken without its receipt SMS
    (``create_order(receipt=False)``): the resident's SMS for it is the receipt too.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    name = canonical_action(action)
    if with_receipt and name != Action.DISPATCH:
        raise ValueError(f"only 派单 carries the resident's receipt, not {name}")
    rule = _check(order, name, actor, now)
    note = clean(details.get("note") or details.get("reason") or "", 1000)
    step = Step(session, order, actor, now, details, note, before=order.status)
    rule.effect(step)
    if rule.to_state is not None:
        order.status = rule.to_state.value
    if order.status in Status.FINAL:
        order.open_code = None  # the short code is free for new orders
    order.updated_at = now
    session.add(order)
    hist = add_history(session, order, actor, name, step.before, note=note, now=now, **step.extra)
    notices.order_changed(
        session,
        settings,
        order,
        hist,
        outlet_sms=step.outlet_sms,
        followup_call=step.followup_call,
        with_receipt=with_receipt,
    )
    return order
