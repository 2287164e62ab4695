"""Today's queue figures for the wallboard, kept live from the call records as calls end.

Definitions (the reports of the statistics issue use the same ones):
- offered: calls that entered the queue;
- answered: offered calls a seat answered; abandoned: offered calls the caller left while
  waiting; short abandons (waited under ``SHORT_ABANDON_S``) are counted apart and are not in
  ``abandoned``; timeouts (the queue gave up) are neither;
- answered rate (接通率): answered ÷ offered;
- service level (15 s): answered within the queue's threshold (``levels``, else
  ``service_level`` s) ÷ answered, and ÷ (answered + abandoned) — both ways Asterisk defines it.
The day is China Standard Time's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlmodel import select

from callcenter.calls.models import CallRecord
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import session_scope

SHORT_ABANDON_S = 5.0


def china_day(ts: datetime | None = None) -> str:
    return (ts or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ).date().isoformat()


@dataclass
class QueueDay:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    timeout: int = 0
    answered_in_sl: int = 0

    def view(self) -> dict[str, Any]:
        def rate(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None

        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "timeout": self.timeout,
            "answered_rate": rate(self.answered, self.offered),
            "service_level": rate(self.answered_in_sl, self.answered),
            "service_level_with_abandoned": rate(self.answered_in_sl, self.answered + self.abandoned),
        }


@dataclass
class DayStats:
    day: str
    service_level: int = 15
    queues: dict[str, QueueDay] = field(default_factory=dict)
    seat_calls: dict[str, int] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)  # per-queue threshold (queues.conf servicelevel)

    def add(self, queue: str, seat: str, outcome: str, wait_s: float | None) -> None:
        if not queue:
            return  # never reached a queue (hung up in the IVR, internal calls)
        q = self.queues.setdefault(queue, QueueDay())
        if outcome == "abandoned" and (wait_s or 0) < SHORT_ABANDON_S:
            q.short_abandoned += 1
            return
        q.offered += 1
        if outcome == "answered":
            q.answered += 1
            if wait_s is not None and wait_s <= self.levels.get(queue, self.service_level):
                q.answered_in_sl += 1
            if seat:
                self.seat_calls[seat] = self.seat_calls.get(seat, 0) + 1
        elif outcome == "abandoned":
            q.abandoned += 1
        elif outcome == "timeout":
            q.timeout += 1

    @classmethod
    def load(
        cls, settings: Settings, day: str | None = None, levels: dict[str, int] | None = None
    ) -> DayStats:
        """Today's figures from the call records (at start, so a restart changes nothing)."""
        day = day or china_day()
        start = datetime.combine(datetime.fromisoformat(day).date(), time(0), CHINA_TZ)
        stats = cls(day=day, service_level=settings.service_level_s, levels=dict(levels or {}))
        with session_scope(settings) as s:
            rows = s.exec(
                select(CallRecord.queue, CallRecord.seat, CallRecord.outcome, CallRecord.wait_s).where(
                    CallRecord.started_at >= start, CallRecord.started_at < start + timedelta(days=1)
                )
            )
            for queue, seat, outcome, wait_s in rows:
                stats.add(queue, seat, outcome, wait_s)
        return stats
