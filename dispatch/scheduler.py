"""The deadline scheduler: 催办 to the outlet before an order's deadline, 督办 after it.

One asyncio task runs next to the engine (one per deployment, like the engine); each tick does its
database work on a worker thread, one order per transaction, through ``transitions.transition`` (so
the reminders are in the order's history and the SMS goes through the outbox). The clock is
injectable: tests move time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import col, select

from callcenter import topics
from callcenter.bus import EventBus
from callcenter.clock import utcnow
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.messages import DispatchOverdue
from dispatch.actors import Actor
from dispatch.errors import DispatchError
from dispatch.models import Status, WorkOrder
from dispatch.transitions import transition

log = logging.getLogger(__name__)

OVERDUE_TOPIC = topics.DISPATCH_OVERDUE


class DeadlineScheduler:
    def __init__(
        self,
        settings: Settings,
        bus: EventBus | None = None,
        clock: Callable[[], datetime] = utcnow,
        interval: float | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.clock = clock
        self.interval = interval if interval is not None else settings.deadline_check_s
        self._task: asyncio.Task | None = None

    def tick(self) -> list[tuple[str, str]]:
        """One pass: what was done, as (order number, action). Blocking (database)."""
        now = self.clock()
        done: list[tuple[str, str]] = []
        system = Actor.system()
        with session_scope(self.settings) as s:
            remind_ids = s.exec(
                select(WorkOrder.id).where(
                    col(WorkOrder.status).in_(Status.AT_OUTLET),
                    col(WorkOrder.remind_at).is_not(None),
                    col(WorkOrder.remind_at) <= now,
                    col(WorkOrder.deadline_at) > now,
                    col(WorkOrder.reminded_at).is_(None),
                )
            ).all()
            overdue_ids = s.exec(
                select(WorkOrder.id).where(
                    col(WorkOrder.status).in_(Status.AT_OUTLET | {Status.RETURNED}),
                    col(WorkOrder.deadline_at).is_not(None),
                    col(WorkOrder.deadline_at) <= now,
                    col(WorkOrder.supervised_at).is_(None),
                )
            ).all()
        for ids, action in ((remind_ids, "催办"), (overdue_ids, "督办")):
            for order_id in ids:
                with session_scope(self.settings) as s:
                    order = s.get(WorkOrder, order_id)
                    if order is None:
                        continue
                    try:
                        note = "办结时限将到" if action == "催办" else "已超过办结时限"
                        transition(s, order, action, system, now=now, note=note, settings=self.settings)
                        s.commit()
                    except DispatchError as exc:  # changed meanwhile (e.g. resolved)
                        log.info("scheduler: %s %s skipped: %s", action, order.number, exc)
                        s.rollback()
                        continue
                    except Exception:
                        log.exception("scheduler: %s of order %s failed", action, order_id)
                        s.rollback()
                        continue
                    done.append((order.number, action))
        return done

    async def run_once(self) -> list[tuple[str, str]]:
        done = await asyncio.to_thread(self.tick)
        if self.bus is not None:
            for number, action in done:
                if action == "督办":
                    overdue = DispatchOverdue(number=number, action=action)
                    await self.bus.publish(overdue.topic, overdue.to_json())
        return done

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("deadline scheduler pass failed")
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="dispatch-deadlines")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
