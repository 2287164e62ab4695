"""Follow-up calls' ratings onto their orders (回访).

Resolving an order requests the call in the same transaction (``transitions.transition``, 办结);
telephony calls the resident and publishes ``followup.result`` with the order's reference. Here a
keyed rating becomes the 回访 transition, by the system, so it counts for the seat who took the
order and the outlet that resolved it. An unreachable resident leaves the order resolved, for a
seat to follow up by phone (the order list shows it waiting for 回访), after an SMS has asked
the resident for a rating by reply (``notices.ask_rating_by_sms``; the reply is the 回访 too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlmodel import select

from callcenter.bus import EventBus
from callcenter.callcontrol.callbacks import FOLLOWUP_RESULT
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.messages import FollowUpResult
from dispatch.actors import Actor
from dispatch.models import Status, WorkOrder
from dispatch.notices import ask_rating_by_sms
from dispatch.transitions import RATING_SATISFACTION, transition

log = logging.getLogger(__name__)
PREFIX = "order:"


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
        s.commit()
    return "rating asked by SMS" if asked else "unreachable: for a seat"


class FollowUpResults:
    """In the engine's process: applies each rating as it is published."""

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        sub = self.bus.subscribe(FOLLOWUP_RESULT)
        await sub.ready.wait()
        self._task = asyncio.create_task(self._run(sub), name="dispatch-followups")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, sub) -> None:
        async for _topic, payload in sub:
            try:
                outcome = await asyncio.to_thread(
                    apply_result, self.settings, FollowUpResult.from_json(payload)
                )
                log.info("follow-up %s: %s", payload.get("reference"), outcome)
            except Exception:
                log.exception("applying follow-up %r failed", payload)
