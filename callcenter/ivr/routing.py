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

from sqlalchemy import and_, bindparam, func, select
from sqlmodel import Session, col

from callcenter import topics
from callcenter.audit.service import record as audit
from callcenter.bus import EventBus, Subscription, TopicWorker
from callcenter.calls.models import CallRecord
from callcenter.clock import china_now
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import Query, Reads, get_engine, hot_reads, session_scope
from callcenter.ivr import service
from callcenter.ivr.models import CallerRequest, ServiceHours
from callcenter.ivr.voicemail import VOICEMAIL, voicemail_dir
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


def request_key(caller: str, caller_raw: str) -> str:
    """Whose share of out-of-hours items a request counts against: the normalised number, else
    the raw caller ID (printable, bounded), else one share for every anonymous caller."""
    return caller or "".join(ch for ch in caller_raw if ch.isprintable())[:40] or "anonymous"


def requests_today(session: Session, key: str) -> int:
    """Out-of-hours items (voicemail and callback) stored today for one caller."""
    since = day_start()
    query = select(func.count()).select_from(CallerRequest).where(col(CallerRequest.created_at) >= since)
    if key == "anonymous":
        query = query.where(col(CallerRequest.caller) == "", col(CallerRequest.caller_raw) == "")
    elif key.startswith("+"):
        query = query.where(col(CallerRequest.caller) == key)
    else:
        query = query.where(col(CallerRequest.caller) == "", col(CallerRequest.caller_raw) == key)
    return int(session.execute(query).scalar_one())


def day_start() -> datetime:
    """Midnight in China today, in UTC (the stored times are UTC)."""
    local = datetime.now(UTC).astimezone(CHINA_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


class RequestShares:
    """Out-of-hours items per caller today, for the FastAGI route's quick answer (no database
    on the call's path): read from the table at start, counted as requests arrive, forgotten
    when the China day changes. The writer's database count stays the last word."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._day = ""
        self._counts: dict[str, int] = {}

    @staticmethod
    def _today() -> str:
        return datetime.now(UTC).astimezone(CHINA_TZ).date().isoformat()

    def load(self) -> None:
        counts: dict[str, int] = {}
        with session_scope(self.settings) as s:
            rows = s.execute(
                select(col(CallerRequest.caller), col(CallerRequest.caller_raw)).where(
                    col(CallerRequest.created_at) >= day_start()
                )
            ).all()
        for caller, raw in rows:
            key = request_key(caller, raw)
            counts[key] = counts.get(key, 0) + 1
        self._counts, self._day = counts, self._today()

    def take(self, key: str) -> bool:
        """One more item for ``key`` today, if the cap allows it."""
        if self._day != self._today():
            self._counts, self._day = {}, self._today()
        if self._counts.get(key, 0) >= self.settings.caller_requests_daily_cap:
            return False
        self._counts[key] = self._counts.get(key, 0) + 1
        return True


class IvrRuntime:
    """Opening hours in memory, refreshed on every applied configuration; caller facts; each
    caller's share of out-of-hours items today."""

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self.hours: dict[str, ServiceHours] = {}
        self._task: asyncio.Task | None = None
        self.writer = RequestWriter(settings, bus)
        self.shares = RequestShares(settings)
        # The embedded file is read inline (microseconds); a networked database on a thread.
        self.inline_reads = get_engine(settings).dialect.name == "sqlite"

    async def start(self) -> None:
        self.hours = await asyncio.to_thread(_load_hours, self.settings)
        await asyncio.to_thread(self.shares.load)
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
        if item is None:
            return
        log.info("out-of-hours %s from %s on %s: item %s", item.kind, item.caller or "?", item.did, item.id)
        added = IvrRequestAdded(id=item.id, kind=item.kind, did=item.did)
        await self.bus.publish(added.topic, added.to_json())

    def _write(self, payload: dict[str, Any]) -> CallerRequest | None:
        request = IvrRequest.from_json(payload)
        key = request_key(request.caller, request.caller_raw)
        with session_scope(self.settings) as s:
            if requests_today(s, key) >= self.settings.caller_requests_daily_cap:
                # Over the caller's share: nothing is kept, not even a recording made anyway.
                if request.recording and VOICEMAIL.fullmatch(request.recording):
                    (voicemail_dir(self.settings) / request.recording).unlink(missing_ok=True)
                log.warning("out-of-hours %s from %r refused: today's share is used", request.kind, key)
                audit(s, "system", "caller_request.refused", target=key, kind=request.kind, did=request.did)
                s.commit()
                return None
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
