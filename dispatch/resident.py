"""What a resident sees of their order on the resident's page (no login): found by its number and
the six-digit query code sent in the receipt SMS, a timeline of what happened in plain words
(no staff names, no notes, no outlet), and the resident's own rating, which becomes the 回访
when there is none yet. A dissatisfied rating puts the order in front of the supervisors for
重办 review (listed on the orders page, told by e-mail: ``notices``); only a supervisor closes or
re-opens it (``transitions``), and until then the resident reads that it is being reviewed."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from callcenter.clock import local_minute
from callcenter.config import Settings
from dispatch.actors import Actor
from dispatch.models import DISSATISFIED, Action, OrderHistory, Status, WorkOrder
from dispatch.service import clean
from dispatch.transitions import RATING_SATISFACTION, transition

ORDER_NUMBER = re.compile(r"[A-Z]{2}[0-9]{8}-[0-9]{5}")
QUERY_CODE = re.compile(r"[0-9]{6}")
MAX_COMMENT = 200

# The steps a resident is told of, by history action; the page words them from the catalogue
# (``resident.step.<key>``). Everything else (审核, 延期审批, internal moves) is not shown.
RESIDENT_STEPS: dict[str, str] = {
    Action.RECEIVE: "received",
    Action.ANSWER: "answered",
    Action.DISPATCH: "dispatched",
    Action.REDISPATCH: "redispatched",
    Action.ACCEPT: "accepted",
    Action.PROGRESS: "progress",
    Action.RETURN: "redispatched",
    Action.EXTEND: "extended",
    Action.REMIND: "hurried",
    Action.SUPERVISE: "hurried",
    Action.RESOLVE: "resolved",
    Action.FOLLOW_UP: "followed_up",
    Action.REOPEN: "reopened",
    Action.MERGE: "merged",
    Action.CLOSE: "closed",
}


STATUS_KEYS = ("received", "in_progress", "resolved", "reviewing", "done", "merged")


@dataclass(frozen=True)
class Step:
    key: str
    at: str


def normalize_number(text: str) -> str:
    return "".join((text or "")[:40].split()).upper()


def find_order(session: Session, number: str, code: str) -> WorkOrder | None:
    """The order with this number and query code, or None; the same None whether the number is
    unknown or the code wrong (a guess learns nothing), compared in constant time."""
    number = normalize_number(number)
    code = "".join((code or "")[:12].split())
    if not ORDER_NUMBER.fullmatch(number) or not QUERY_CODE.fullmatch(code):
        return None
    order = session.exec(select(WorkOrder).where(WorkOrder.number == number)).first()
    expected = order.query_code if order is not None and order.query_code else "x" * 6
    if not hmac.compare_digest(expected.encode(), code.encode()) or order is None:
        return None
    return order


def timeline(session: Session, order: WorkOrder) -> list[Step]:
    """The order's history as a resident reads it: step and China time, oldest first, one line
    for repeated steps of the same kind in a row."""
    rows = session.exec(
        select(OrderHistory).where(OrderHistory.order_id == order.id).order_by(col(OrderHistory.id))
    ).all()
    steps: list[Step] = []
    for h in rows:
        key = RESIDENT_STEPS.get(h.action)
        if key is None or (steps and steps[-1].key == key):
            continue
        steps.append(Step(key, local_minute(h.at)))
    return steps


def status_key(order: WorkOrder) -> str:
    """The order's state in a resident's words (``resident.status.<key>``)."""
    if order.status == Status.RESOLVED:
        return "resolved"
    if order.status == Status.FOLLOWED_UP and order.satisfaction == DISSATISFIED:
        return "reviewing"
    if order.status in (Status.FOLLOWED_UP, Status.CLOSED):
        return "done"
    if order.status == Status.MERGED:
        return "merged"
    return "received" if order.status == Status.RECEIVED else "in_progress"


def can_rate(order: WorkOrder) -> bool:
    return order.status == Status.RESOLVED


def rate(
    session: Session,
    settings: Settings,
    order: WorkOrder,
    rating: int,
    comment: str,
    now: datetime | None = None,
) -> WorkOrder:
    """The resident's rating (1 very satisfied … 5 very dissatisfied) and words as the 回访
    (no commit). ``DispatchError`` when the order is not waiting for one."""
    if rating not in RATING_SATISFACTION:
        raise ValueError("rating 1-5")
    words = clean(comment, MAX_COMMENT)
    order.resident_comment = words
    note = f"居民查询页评价 {rating}" + (f"：{words}" if words else "")
    return transition(
        session,
        order,
        "回访",
        Actor.system("resident-page"),
        now,
        settings=settings,
        satisfaction=RATING_SATISFACTION[rating],
        note=note,
        channel="page",
        rating=rating,
    )
