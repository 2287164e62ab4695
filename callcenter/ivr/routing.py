"""What the FastAGI route needs to route a call, kept in memory: opening hours per service
number (re-read when the configuration is applied) and, per caller, one indexed read for the
priority flags and the seat who handled them last.

Reads run inline on a SQLite connection kept open for them, like the resident lookup (see
``Engine.find_resident_id``); a networked database goes through a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select
from sqlmodel import Session

from callcenter.bus import EventBus, Subscription, TopicWorker
from callcenter.calls.models import CallRecord
from callcenter.config import Settings
from callcenter.database import get_engine
from callcenter.ivr import service
from callcenter.ivr.models import ServiceHours
from callcenter.residents.models import Resident

log = logging.getLogger(__name__)

APPLIED_TOPIC = "engine.config.applied"  # asterisk_conf.apply publishes it after each reload


@dataclass(frozen=True)
class CallerFacts:
    priority: bool = False  # elderly living alone, or marked vulnerable
    last_seat: str = ""  # the seat who answered this caller within the window


# Built once (the route runs them on every call). The last answered call uses the index on
# (caller, started_at): with the caller index alone SQLite may walk every call of the day.
_FLAGS = select(Resident.elderly, Resident.lives_alone, Resident.vulnerable).where(
    Resident.id == bindparam("rid")
)
_LAST_SEAT = (
    select(CallRecord.seat)
    .where(and_(CallRecord.caller == bindparam("caller"), CallRecord.started_at >= bindparam("since")))
    .where(CallRecord.seat != "")
    .order_by(CallRecord.started_at.desc())
    .limit(1)
)


def caller_facts(
    conn: Connection, resident_id: int | None, caller: str | None, since: datetime
) -> CallerFacts:
    priority = False
    if resident_id is not None:
        row = conn.execute(_FLAGS, {"rid": resident_id}).first()
        if row:
            elderly, alone, vulnerable = row
            priority = bool(vulnerable or (elderly and alone))
    last_seat = ""
    if caller:
        row = conn.execute(_LAST_SEAT, {"caller": caller, "since": since}).first()
        if row and row[0].isdigit():
            last_seat = row[0]
    return CallerFacts(priority=priority, last_seat=last_seat)


def _load_hours(settings: Settings) -> dict[str, ServiceHours]:
    with Session(get_engine(settings), expire_on_commit=False) as s:
        return {h.number: h for h in s.exec(select(ServiceHours)).scalars()}


class IvrRuntime:
    """Opening hours in memory, refreshed on every applied configuration; caller facts."""

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self.hours: dict[str, ServiceHours] = {}
        self._task: asyncio.Task | None = None
        self.writer = RequestWriter(settings, bus)
        self._reader: Connection | None = None
        if settings.resolved_database_url().startswith("sqlite"):
            self._reader = get_engine(settings).connect().execution_options(isolation_level="AUTOCOMMIT")

    async def start(self) -> None:
        self.hours = await asyncio.to_thread(_load_hours, self.settings)
        sub = self.bus.subscribe(APPLIED_TOPIC)
        await sub.ready.wait()
        self._task = asyncio.create_task(self._refresh(sub), name="ivr-hours")
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def _refresh(self, sub) -> None:
        async for _topic, _payload in sub:
            try:
                self.hours = await asyncio.to_thread(_load_hours, self.settings)
            except Exception:
                log.exception("reloading the opening hours failed; keeping the old ones")

    def is_open(self, did: str) -> bool:
        return service.is_open(self.hours.get(did), service.now(self.settings))

    async def facts(self, resident_id: int | None, caller: str | None) -> CallerFacts:
        since = datetime.now(UTC) - timedelta(hours=self.settings.preferred_seat_window_h)
        if self._reader is not None:
            return caller_facts(self._reader, resident_id, caller, since)

        def run() -> CallerFacts:
            with get_engine(self.settings).connect() as conn:
                return caller_facts(conn, resident_id, caller, since)

        return await asyncio.to_thread(run)


REQUEST_TOPIC = "ivr.request"


class RequestWriter(TopicWorker):
    """Writes the voicemail / callback items the FastAGI route announced (off the call path)."""

    topic = REQUEST_TOPIC

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        super().__init__(bus)
        self.settings = settings

    async def handle(self, payload: dict[str, Any], sub: Subscription) -> None:
        item = await asyncio.to_thread(self._write, payload)
        log.info("out-of-hours %s from %s on %s: item %s", item.kind, item.caller or "?", item.did, item.id)
        await self.bus.publish("ivr.request.added", {"id": item.id, "kind": item.kind, "did": item.did})

    def _write(self, p: dict[str, Any]):
        from callcenter.database import session_scope

        with session_scope(self.settings) as s:
            return service.add_request(
                s,
                str(p.get("kind", "")),
                linkedid=str(p.get("linkedid", "")),
                caller=str(p.get("caller", "")),
                caller_raw=str(p.get("caller_raw", "")),
                resident_id=p.get("resident_id") if isinstance(p.get("resident_id"), int) else None,
                did=str(p.get("did", "")),
                recording=str(p.get("recording", "")),
            )
