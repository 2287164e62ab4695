"""What the FastAGI route needs to route a call, kept in memory: opening hours per service
number (re-read when the configuration is applied) and, per caller, two indexed reads: the
resident with their priority flags, and the seat who answered them last.

On the embedded SQLite file the reads run inline as plain sqlite3 statements
(callcenter.database.hot_reads): each takes ~7 µs, where SQLAlchemy's execution path adds ~45 µs
and a thread hop more still (measured in benchmarks/bench_agi.py). A networked database may wait
on the network, so its reads go through SQLAlchemy on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlmodel import Session, col

from callcenter import topics
from callcenter.bus import EventBus, Subscription, TopicWorker
from callcenter.calls.models import CallRecord
from callcenter.clock import china_now
from callcenter.config import Settings
from callcenter.database import Query, Reads, get_engine, hot_reads, session_scope
from callcenter.ivr import service
from callcenter.ivr.models import ServiceHours
from callcenter.messages import IvrRequest, IvrRequestAdded
from callcenter.residents.service import RESIDENT_BY_PHONE
from callcenter.text import is_digits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallerFacts:
    resident_id: int | None = None
    priority: bool = False  # elderly living alone, or marked vulnerable
    last_seat: str = ""  # the seat who answered this caller within the window


# Built once (the route runs it on every call). The last answered call uses the index on
# (caller, started_at): with the caller index alone SQLite may walk every call of the day.
_LAST_SEAT = Query(
    select(col(CallRecord.seat))
    .where(
        and_(col(CallRecord.caller) == bindparam("caller"), col(CallRecord.started_at) >= bindparam("since"))
    )
    .where(col(CallRecord.seat) != "")
    .order_by(col(CallRecord.started_at).desc())
    .limit(1)
)


def caller_facts(reads: Reads, caller: str | None, since: datetime) -> CallerFacts:
    """The route's two reads (callcenter.database.hot_reads)."""
    if not caller:
        return CallerFacts()
    resident = reads.first(RESIDENT_BY_PHONE, caller=caller)
    seat = reads.first(_LAST_SEAT, caller=caller, since=since)
    resident_id, priority = None, False
    if resident:
        resident_id, elderly, alone, vulnerable = resident
        priority = bool(vulnerable or (elderly and alone))
    last_seat = seat[0] if seat and seat[0] and is_digits(seat[0]) else ""
    return CallerFacts(resident_id=resident_id, priority=priority, last_seat=last_seat)


def _load_hours(settings: Settings) -> dict[str, ServiceHours]:
    with Session(get_engine(settings), expire_on_commit=False) as s:
        return {h.number: h for h in s.scalars(select(ServiceHours))}


class IvrRuntime:
    """Opening hours in memory, refreshed on every applied configuration; caller facts."""

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self.hours: dict[str, ServiceHours] = {}
        self._task: asyncio.Task | None = None
        self.writer = RequestWriter(settings, bus)
        # The embedded file is read inline (microseconds); a networked database on a thread.
        self.inline_reads = get_engine(settings).dialect.name == "sqlite"

    async def start(self) -> None:
        self.hours = await asyncio.to_thread(_load_hours, self.settings)
        sub = self.bus.subscribe(topics.CONFIG_APPLIED)
        await sub.ready.wait()
        self._task = asyncio.create_task(self._refresh(sub), name="ivr-hours")
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _refresh(self, sub) -> None:
        async for _topic, _payload in sub:
            try:
                self.hours = await asyncio.to_thread(_load_hours, self.settings)
            except Exception:
                log.exception("reloading the opening hours failed; keeping the old ones")

    def is_open(self, did: str) -> bool:
        return service.is_open(self.hours.get(did), china_now(self.settings))

    async def facts(self, caller: str | None) -> CallerFacts:
        """The resident calling, their priority and their last seat: the route's reads."""
        since = datetime.now(UTC) - timedelta(hours=self.settings.preferred_seat_window_h)

        def run() -> CallerFacts:
            with hot_reads(self.settings) as reads:
                return caller_facts(reads, caller, since)

        return run() if self.inline_reads else await asyncio.to_thread(run)


REQUEST_TOPIC = IvrRequest.topic


class RequestWriter(TopicWorker):
    """Writes the voicemail / callback items the FastAGI route announced (off the call path)."""

    topic = REQUEST_TOPIC

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        super().__init__(bus)
        self.settings = settings

    async def handle(self, payload: dict[str, Any], sub: Subscription) -> None:
        item = await asyncio.to_thread(self._write, payload)
        log.info("out-of-hours %s from %s on %s: item %s", item.kind, item.caller or "?", item.did, item.id)
        added = IvrRequestAdded(id=item.id, kind=item.kind, did=item.did)
        await self.bus.publish(added.topic, added.to_json())

    def _write(self, payload: dict[str, Any]):
        request = IvrRequest.from_json(payload)
        with session_scope(self.settings) as s:
            return service.add_request(
                s,
                request.kind,
                linkedid=request.linkedid,
                caller=request.caller,
                caller_raw=request.caller_raw,
                resident_id=request.resident_id,
                did=request.did,
                recording=request.recording,
            )
