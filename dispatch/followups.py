"""Follow-up calls' ratings onto their orders (回访).

Resolving an order requests the call in the same transaction (``transitions.transition``, 办结);
telephony calls the resident and publishes ``followup.result`` with the order's reference. Here a
keyed rating becomes the 回访 transition, by the system, so it counts for the seat who took the
order and the outlet that resolved it. An unreachable resident is asked by SMS for a rating by
reply (``notices.ask_rating_by_sms``; the reply, or a rating on the resident's page, is the 回访
too). The chain ends with a seat: no SMS possible (no mobile, or TD), or no answer within
``resident_rating_reply_h``, and the 回访 becomes a task in the seats' callbacks list
(``callbacks.add_followup_task``), closed when the 回访 is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlmodel import col, select

from callcenter.bus import EventBus
from callcenter.callcontrol.callbacks import FOLLOWUP_RESULT, add_followup_task
from callcenter.callcontrol.models import Callback, FollowUp
from callcenter.clock import aware, utcnow
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.messages import FollowUpResult
from dispatch.actors import Actor
from dispatch.models import Status, WorkOrder
from dispatch.notices import ask_rating_by_sms
from dispatch.transitions import RATING_SATISFACTION, transition

log = logging.getLogger(__name__)
PREFIX = "order:"
SWEEP_S = 60.0  # how often unanswered rating requests are looked for


def apply_result(settings: Settings, result: FollowUpResult) -> str:
    """One ``followup.result``; what became of it (for the log and tests). Blocking (database)."""
    reference = result.reference
    if not reference.startswith(PREFIX):
        return "not an order"
    number = reference[len(PREFIX) :]
    rating = result.rating
    if result.status != "rated" or rating is None or rating not in RATING_SATISFACTION:
        return _unreachable(settings, number)
    with session_scope(settings) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).first()
        if order is None:
            return "no such order"
        if order.status != Status.RESOLVED:
            return "already followed up"  # a seat called the resident meanwhile
        transition(
            s,
            order,
            "回访",
            Actor.system("followup-call"),
            satisfaction=RATING_SATISFACTION[rating],
            settings=settings,
            note=f"回访电话按键 {rating}",
            channel="call",
            rating=rating,
        )
        s.commit()
    return "followed up"


def _unreachable(settings: Settings, number: str) -> str:
    """The call found no one: ask by SMS; without a mobile (or after TD) a seat follows up."""
    with session_scope(settings) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).first()
        if order is None or order.status != Status.RESOLVED:
            return "unreachable"
        asked = ask_rating_by_sms(s, settings, order)
        if not asked:
            add_followup_task(s, order.caller_phone, order.number, "no_sms")
        s.commit()
    return "rating asked by SMS" if asked else "unreachable: for a seat"


def unanswered_ratings(settings: Settings, now: datetime | None = None) -> list[str]:
    """Orders whose follow-up call found no one and whose rating SMS got no answer within
    ``resident_rating_reply_h``: each becomes a seat's task (once per unanswered call). Returns
    their numbers. Blocking (database)."""
    now = now or utcnow()
    latest = now - timedelta(hours=settings.resident_rating_reply_h)
    earliest = now - timedelta(days=settings.resident_rating_days)
    made: list[str] = []
    with session_scope(settings) as s:
        calls = s.exec(
            select(FollowUp)
            .where(
                FollowUp.status == "unreachable",
                col(FollowUp.reference).startswith(PREFIX),
                col(FollowUp.done_at) <= latest,
                col(FollowUp.done_at) >= earliest,
            )
            .order_by(col(FollowUp.id))
            .limit(500)
        ).all()
        for call in calls:
            number = call.reference[len(PREFIX) :]
            order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).first()
            if order is None or order.status != Status.RESOLVED:
                continue
            since = aware(call.done_at) or now
            tasks = s.exec(select(Callback).where(Callback.reference == number)).all()
            if any(aware(t.requested_at) >= since for t in tasks):
                continue  # this unanswered call has its task already (open or done)
            if add_followup_task(s, order.caller_phone, number, "no_reply") is not None:
                made.append(number)
        s.commit()
    return made


class FollowUpResults:
    """In the engine's process: applies each rating as it is published."""

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self._task: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> None:
        sub = self.bus.subscribe(FOLLOWUP_RESULT)
        await sub.ready.wait()
        self._task = asyncio.create_task(self._run(sub), name="dispatch-followups")
        self._sweeper = asyncio.create_task(self._sweep(), name="dispatch-followup-tasks")

    async def stop(self) -> None:
        for task in (self._task, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _sweep(self) -> None:
        while True:
            try:
                made = await asyncio.to_thread(unanswered_ratings, self.settings)
                if made:
                    log.info("follow-ups unanswered by SMS, now seats' tasks: %s", ", ".join(made))
            except Exception:
                log.exception("looking for unanswered rating requests failed")
            await asyncio.sleep(SWEEP_S)

    async def _run(self, sub) -> None:
        async for _topic, payload in sub:
            try:
                outcome = await asyncio.to_thread(
                    apply_result, self.settings, FollowUpResult.from_json(payload)
                )
                log.info("follow-up %s: %s", payload.get("reference"), outcome)
            except Exception:
                log.exception("applying follow-up %r failed", payload)
