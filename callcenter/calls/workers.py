"""The call workers: apply AMI events to the live model, push screen pops, record calls.

One consumer task applies events in order and only publishes; database work (the resident's
profile for the pop, call records, queue events) runs in worker tasks, on threads where it may
wait (writes, a networked database), so a slow database never delays the next event. The one
exception: on the embedded SQLite file the profile's prebuilt reads (a fraction of a millisecond)
run on the loop wherever they are called, so the consumer runs them as it applies the route's fact.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlmodel import col

from callcenter import topics
from callcenter.ami import events as ev
from callcenter.bus import EventBus, OutageLog, bus_unavailable
from callcenter.calls import notifier
from callcenter.calls.models import UNSETTLED, CallRecord, QueueEventRow
from callcenter.calls.notifier import Notifier
from callcenter.calls.service import ProfileExtras, build_profile, record_row
from callcenter.calls.state import DayFigures, Effect, Identified, LiveCall, LiveModel, seat_of
from callcenter.clock import china_day, seconds_to_china_midnight
from callcenter.config import Settings
from callcenter.database import database_unavailable, get_engine, session_scope, table_of
from callcenter.directory.service import QueueParams, queue_params
from callcenter.messages import CallRecorded, CallsResident, CallsResync, Clear, PageHello, WallboardSnapshot
from callcenter.phone import normalize
from callcenter.residents.service import find_resident_id

log = logging.getLogger(__name__)

RECORD_BATCH_S = 0.2  # s: call records that end this close together are written together
RECORD_ATTEMPTS = 5  # a call record the database refuses this often is dropped (and logged)


# s: a burst of events makes one wallboard update, not hundreds. Twice a second is live to a
# manager; five times (every seat's state each time) was 5 % of the engine's CPU per call at
# 20 calls/s with 124 seats.
WALLBOARD_INTERVAL = 0.5
# s: a seat's status bar (callers waiting in its queues) changes at most this often: one message
# per seat and change would be most of the engine's messages with a hundred seats in one queue.
SEAT_QUEUES_INTERVAL = 1.0
# In the events queue: the FastAGI route handed facts over (``CallService._handover``)
_FACTS = object()
PROFILES_AT_ONCE = 4  # the database threads' number: profiles built side by side


class Menu(Protocol):
    """What a caller's menu key means: (label, category), no category for a case without a key
    (``callcenter.ivr.service.MenuMeanings``)."""

    def meaning(self, did: str, key: str) -> tuple[str, str | None]: ...


class Presence(Protocol):
    """Static queue members' login / logout lines for queue_log, from the AMI events
    (``callcenter.statistics.presence.StaticPresence``)."""

    def observe(self, event: Any) -> list[dict[str, Any]]: ...


class Settled(Protocol):
    """What queue_log already says of calls the engine lost sight of, as call-record fields
    (``callcenter.statistics.follower.settled_call_records``)."""

    def __call__(self, conn: Any, linkedids: list[str]) -> dict[str, dict[str, Any]]: ...


def _nothing_settled(conn: Any, linkedids: list[str]) -> dict[str, dict[str, Any]]:
    return {}


SETTLE_RECHECK_S = 10.0  # an unsettled record is looked at once more (the follower may lag)
# Fields only queue_log knows for an unsettled call: never overwritten by the engine's guess.
_SETTLED_FIELDS = ("outcome", "seat", "queue", "ended_at", "wait_s", "ring_s", "talk_s")


def _recorded(row: dict[str, Any]) -> CallRecorded:
    """A call record's row as announced: times as ISO text."""
    return CallRecorded({k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()})


class _NoMenu:
    def meaning(self, did: str, key: str) -> tuple[str, str | None]:
        return "", None


class _NoPresence:
    def observe(self, event: Any) -> list[dict[str, Any]]:
        return []


def _no_figures(settings: Settings, day: str | None = None) -> DayFigures:
    return DayFigures(day=day or china_day())


RESEND_AFTER_OUTAGE_S = 2.0


class Unannounced(Exception):
    """Call records written whose announcement could not be sent (the bus is down)."""

    def __init__(self, calls: list[LiveCall], cause: Exception) -> None:
        super().__init__(f"{len(calls)} call records not announced: {cause!r}")
        self.calls = calls
        self.cause = cause


class CallService:
    """The menu's meanings, today's figures and the static members' presence belong to the IVR
    and the statistics, which read the call records: the composition root hands them in, so
    the calls package depends on neither (as wazo-calld's plugins get their dependencies)."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        events: asyncio.Queue[Any] | None = None,
        profile_extras: ProfileExtras | None = None,
        *,
        read_menu: Callable[[Settings], Menu] | None = None,
        read_today: Callable[[Settings, str | None], DayFigures] | None = None,
        presence: Presence | None = None,
        settled: Settled | None = None,
    ) -> None:
        self.settings = settings
        self._settled = settled or _nothing_settled
        self._read_menu = read_menu
        self._read_today = read_today or _no_figures
        self.profile_extras = profile_extras
        self.bus = bus
        self.notify = Notifier(bus)
        self.model = LiveModel()
        # AMI events and, handed over from the FastAGI route, who is calling (``_apply``'s input).
        # The queue is the AMI client's, which knows only its events: typed Any here.
        self.events: asyncio.Queue[Any] = events if events is not None else asyncio.Queue()
        self._loop = asyncio.get_running_loop()  # the engine's loop, which consumes ``events``
        self._handover: collections.deque[Identified] = collections.deque()  # from the FastAGI thread
        self._handover_lock = threading.Lock()
        self._handover_pending = False
        self._profiles: asyncio.Queue[str] = asyncio.Queue()
        self._profile_seq: dict[str, int] = {}  # linkedid -> the newest profile build asked for
        self._profile_builds = 0
        self._records: asyncio.Queue[LiveCall] = asyncio.Queue()
        self._taken: list[LiveCall] = []  # records the worker took and has not written yet
        self._shown: dict[str, str] = {}  # seat -> linkedid of the last pop sent, until cleared
        # Seats' presence lines for queue_log (bounded: a bus down for hours loses the oldest)
        self._queue_log_lines: deque[dict[str, Any]] = deque(maxlen=100_000)
        self._queue_log_outage = OutageLog("event bus (presence lines for queue_log)")
        self._record_failures: dict[str, int] = {}  # linkedid -> failed writes of its record
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="calls-db")
        self._inline_reads = get_engine(settings).dialect.name == "sqlite"
        self._tasks: list[asyncio.Task] = []
        self._wallboard_dirty = asyncio.Event()
        self._seat_queues_sent: dict[str, dict[str, int]] = {}
        self._seat_queues_at: dict[str, float] = {}  # seat -> when its status bar was last sent
        self._seat_queues_later: asyncio.TimerHandle | None = None
        self._seat_queues_counts: dict[str, int] | None = None  # callers waiting per queue, last looked at
        self._seat_queues_stale = False  # a seat's bar is due although no count changed
        self._seat_sent: dict[str, Any] = {}  # seat -> the state last sent (the same is not resent)
        self.today = DayFigures(day=china_day())
        self.queue_params: dict[str, QueueParams] = {}
        self.menu: Menu = _NoMenu()
        # Static members' login lines for queue_log (statistics/presence.py)
        self.presence: Presence = presence or _NoPresence()

    async def start(self) -> None:
        await self._load_config()
        self.today = await self._run_db(self._read_today, self.settings, None)
        applied = self.bus.subscribe(topics.CONFIG_APPLIED)
        await applied.ready.wait()
        hello = self.bus.subscribe(topics.CONSOLE_HELLO)
        wallboard_hello = self.bus.subscribe(topics.WALLBOARD_HELLO)
        resident_set = self.bus.subscribe(topics.CALLS_RESIDENT)
        await resident_set.ready.wait()
        await hello.ready.wait()
        await wallboard_hello.ready.wait()
        # Pages that missed messages while the bus was down get the whole state again.
        self.notify.on_back = lambda: self._tasks.append(
            asyncio.create_task(self._resend_pages(), name="calls-resend-pages")
        )
        self._tasks = [
            asyncio.create_task(self._consume(), name="calls-consume"),
            asyncio.create_task(self._profile_worker(), name="calls-profiles"),
            asyncio.create_task(self._record_worker(), name="calls-records"),
            asyncio.create_task(self._hello_worker(hello), name="calls-hello"),
            asyncio.create_task(self._wallboard_worker(wallboard_hello), name="calls-wallboard"),
            asyncio.create_task(self._resident_worker(resident_set), name="calls-resident"),
            asyncio.create_task(self._config_worker(applied), name="calls-config"),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self._flush_records()
        self._pool.shutdown(wait=True)

    def identified(self, info: Identified) -> None:
        """Called by the FastAGI route on the server's own loop; applied by the consumer on the
        engine's loop before the next AMI event it applies. A busy engine loop is woken once for
        every answer that came meanwhile (one per call would have the threads trade the GIL on
        every call)."""
        self._handover.append(info)
        with self._handover_lock:
            if self._handover_pending:
                return
            self._handover_pending = True
        self._loop.call_soon_threadsafe(self._take_handover)

    def _take_handover(self) -> None:
        with self._handover_lock:
            self._handover_pending = False
        self.events.put_nowait(_FACTS)  # wakes the consumer, which takes them from the deque

    async def _run_db(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _hot_read(self, fn, *args):
        """The pop's reads (``database.hot_reads``): on the embedded SQLite file they take a
        fraction of a millisecond and run here, as the FastAGI route's do; a thread hop cost more
        than the reads, and under load the threads queued for the interpreter's lock. A
        networked database's may wait on the network: a worker thread."""
        if self._inline_reads:
            return fn(*args)
        return await self._run_db(fn, *args)

    # -- the event path: no database work here ---------------------------------------------
    async def _consume(self) -> None:
        while True:
            item = await self.events.get()
            # The route's facts first: each was handed over before the route answered Asterisk,
            # so before any ringing of its call, yet uvloop may read that ringing off the socket
            # before it runs the callback that queues the facts (the pop then lacked the resident).
            while self._handover:
                await self._apply_logged(self._handover.popleft())
            if item is not _FACTS:
                await self._apply_logged(item)

    async def _apply_logged(self, item: ev.AmiEvent | Identified) -> None:
        try:
            await self._apply(item)
        except Exception:
            log.exception("applying %r failed", item)

    async def _apply(self, item: ev.AmiEvent | Identified) -> None:
        if isinstance(item, Identified):
            call = self.model.identify(item)
            call.profile_requested = True
            if self._inline_reads:
                # The reads run on this loop wherever they are called from: run now, before the
                # events queued behind this fact. Left to the profile worker, they waited until
                # the queue ran dry, and under load the call's AgentCalled, already in the queue,
                # popped first without the resident, and a second, complete pop followed.
                await self._build_profile(call.linkedid)
            else:
                self._profiles.put_nowait(call.linkedid)
            return
        if isinstance(item, ev.Resync):
            effects = self.model.resync(
                item.channels,
                item.members,
                item.entries,
                now=item.received,
                asterisk_restarted=item.asterisk_restarted,
            )
            for call in self.model.calls.values():
                if call.profile is None:
                    self._profiles.put_nowait(call.linkedid)
            await self.notify.send(CallsResync(at=item.received, calls=len(self.model.calls)))
        else:
            if isinstance(item, ev.QueueMemberStatus):
                seat = self.model.seats.get(seat_of(item.interface) or "")
                if seat is None or item.queue not in seat.queues:
                    self._seat_queues_stale = True  # a seat in a queue it was not in
            effects = self.model.apply(item)
            if isinstance(item, ev.QueueCallerJoin | ev.AgentCalled):
                self._profile_unrouted(item.linkedid)
        for effect in effects:
            await self._effect(effect)
        # Written by the engine's QueueLogWriter; kept here in order while the bus is down
        self._queue_log_lines.extend(self.presence.observe(item))
        if self._queue_log_lines:
            await self._send_queue_log()
        if isinstance(item, ev.Resync | ev.QueueMemberRemoved):
            self._seat_queues_stale = True  # a seat's queues changed: its status bar may have
        # Callers joining or leaving a queue change the wallboard without any other effect; the
        # wallboard worker coalesces, so marking it on every event costs one snapshot per interval.
        self._wallboard_dirty.set()

    async def _send_queue_log(self) -> None:
        while self._queue_log_lines:
            try:
                await self.bus.publish(topics.QUEUELOG, self._queue_log_lines[0])
            except Exception as exc:
                if not bus_unavailable(exc):
                    raise
                self._queue_log_outage.down(exc)  # sent with the next event once it is back
                return
            self._queue_log_outage.up()
            self._queue_log_lines.popleft()

    def _profile_unrouted(self, linkedid: str) -> None:
        """A call queued or ringing that the FastAGI route never identified (the route failed or
        timed out, a callback, a transfer): the profile worker identifies it from the caller ID,
        so the pop shows the resident, not the bare number."""
        call = self.model.calls.get(linkedid)
        if call is None or call.identified or call.profile is not None or call.profile_requested:
            return
        if call.caller is None:  # the pop about to go shows the number as the route would have
            call.caller = normalize(
                call.caller_raw, self.settings.default_region, self.settings.default_area_code
            )
        call.profile_requested = True
        self._profiles.put_nowait(linkedid)

    def _label(self, call: LiveCall) -> None:
        """What the caller's menu key means, from the menu in memory."""
        if call.ivr_choice and not call.ivr_label:
            call.ivr_label, category = self.menu.meaning(call.did, call.ivr_choice)
            if category is not None:
                call.ivr_category = category

    async def _effect(self, effect: Effect) -> None:
        if effect.call is not None:
            self._label(effect.call)
        if effect.kind == "pop" and effect.call is not None:
            await self._send_pop(effect.call, effect.ext)
        elif effect.kind == "clear" and effect.call is not None:
            sent = await self.notify.send(Clear(effect.ext, effect.call.linkedid, effect.reason))
            if sent and self._shown.get(effect.ext) == effect.call.linkedid:
                del self._shown[effect.ext]  # (not sent: cleared again once the bus is back)
        elif effect.kind == "record" and effect.call is not None:
            self._records.put_nowait(effect.call)
        elif effect.kind == "seat":
            # A call's events change a seat's state a few times over; the console hears changes.
            status = self.model.seat_status(effect.ext)
            if self._seat_sent.get(effect.ext) != status and await self.notify.send(status):
                self._seat_sent[effect.ext] = status

    async def _load_config(self) -> None:
        """What the configuration says about calls: queues' wrap-up and service-level thresholds,
        and what each menu key means."""
        self.queue_params = await self._run_db(queue_params, self.settings)
        self.model.wrapup_s = {name: p.wrapup_s for name, p in self.queue_params.items()}
        if self._read_menu is not None:
            self.menu = await self._run_db(self._read_menu, self.settings)

    async def _config_worker(self, sub) -> None:
        """The configuration was applied (queues, menus edited): read it again."""
        async for _topic, _payload in sub:
            try:
                await self._load_config()
            except Exception:
                log.exception("reloading the call configuration failed")
            self._seat_queues_stale = True
            self._wallboard_dirty.set()

    async def refresh_today(self, days: set[str] | None = None) -> None:
        """The queue_log follower finished calls: today's figures again from the roll-ups."""
        day = china_day()
        if days is None or day in days or day != self.today.day:
            self.today = await self._run_db(self._read_today, self.settings, day)
            self._wallboard_dirty.set()

    def wallboard(self) -> WallboardSnapshot:
        """The live snapshot with today's figures and the alert thresholds."""
        return notifier.wallboard(self.model, self.today, self.queue_params, self.settings)

    # -- workers ---------------------------------------------------------------------------
    async def _wallboard_worker(self, hello) -> None:
        """One snapshot per change, at most every WALLBOARD_INTERVAL, and on a wallboard's hello."""
        hello_task = asyncio.create_task(self._wallboard_hellos(hello))
        try:
            while True:
                # Midnight turns the board to the new day's figures even when nothing happens.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wallboard_dirty.wait(), seconds_to_china_midnight() + 0.5)
                self._wallboard_dirty.clear()
                if china_day() != self.today.day:  # midnight in Lanzhou: a new day's figures
                    await self.refresh_today()
                board = self.wallboard()
                await self.notify.send(board)
                await self._publish_seat_queues(board)
                await asyncio.sleep(WALLBOARD_INTERVAL)
        finally:
            hello_task.cancel()

    async def _publish_seat_queues(self, board: WallboardSnapshot) -> None:
        """Each seat's status bar: the callers waiting in its own queues, sent when they change,
        at most every SEAT_QUEUES_INTERVAL (a change held back is sent when the interval ends)."""
        counts = {q: v.get("waiting", 0) for q, v in board.queues.items()}
        if counts == self._seat_queues_counts and not self._seat_queues_stale:
            return  # no queue's count changed: no seat's bar did (most wallboard updates)
        self._seat_queues_counts, self._seat_queues_stale = counts, False
        now = time.monotonic()
        held = 0.0
        for message in notifier.seat_queues(board):
            if self._seat_queues_sent.get(message.ext) == message.waiting:
                continue
            wait = self._seat_queues_at.get(message.ext, -SEAT_QUEUES_INTERVAL) + SEAT_QUEUES_INTERVAL - now
            if wait > 0 and message.ext in self._seat_queues_sent:
                held = max(held, wait)
                continue
            self._seat_queues_sent[message.ext] = message.waiting
            self._seat_queues_at[message.ext] = now
            await self.notify.send(message)
        if held and self._seat_queues_later is None:
            self._seat_queues_later = self._loop.call_later(held, self._seat_queues_due)

    def _seat_queues_due(self) -> None:
        self._seat_queues_later = None
        self._seat_queues_stale = True
        self._wallboard_dirty.set()

    async def _wallboard_hellos(self, sub) -> None:
        async for _topic, _payload in sub:
            self._wallboard_dirty.set()

    async def _profile_worker(self) -> None:
        """Several profiles at once: one slow read (a busy disk, the threads waiting on the
        interpreter's lock) must not hold up the pops of every call ringing after it."""
        slots = asyncio.Semaphore(PROFILES_AT_ONCE)
        building: set[asyncio.Task] = set()
        while True:
            linkedid = await self._profiles.get()
            await slots.acquire()
            task = asyncio.create_task(self._build_profile(linkedid))
            building.add(task)
            task.add_done_callback(building.discard)
            task.add_done_callback(lambda _t: slots.release())

    async def _build_profile(self, linkedid: str) -> None:
        call = self.model.calls.get(linkedid)
        if call is None:
            return
        # A newer request for the same call (a seat linked another resident) wins over this one.
        self._profile_builds += 1
        seq = self._profile_seq[linkedid] = self._profile_builds
        try:
            try:
                if not call.identified:
                    # Re-synced or un-routed calls (or the route ran out of time): identify from
                    # the caller ID.
                    if call.caller is None:
                        call.caller = normalize(
                            call.caller_raw, self.settings.default_region, self.settings.default_area_code
                        )
                    if call.resident_id is None:
                        call.resident_id = await self._hot_read(find_resident_id, self.settings, call.caller)
                profile = await self._hot_read(
                    build_profile, self.settings, call.resident_id, call.caller, self.profile_extras
                )
            except Exception:
                log.exception("building the profile of %s failed", linkedid)
                return
            if self._profile_seq.get(linkedid) != seq:
                return
            call.profile = profile
            # A pop already sent without the profile is sent again, complete.
            for ext in list(call.ringing) + ([call.seat] if call.seat and call.talk_end is None else []):
                await self._send_pop(call, ext)
        finally:
            if self._profile_seq.get(linkedid) == seq:
                del self._profile_seq[linkedid]

    async def _resident_worker(self, sub) -> None:
        """A seat registered or linked the caller: rebuild the pop with the resident."""
        async for _topic, payload in sub:
            linked = CallsResident.from_json(payload)
            call = self.model.calls.get(linked.linkedid)
            if call is not None and linked.resident_id is not None:
                call.resident_id = linked.resident_id
                self._profiles.put_nowait(call.linkedid)

    async def _hello_worker(self, sub) -> None:
        async for _topic, payload in sub:
            await self._send_seat_page(PageHello.from_json("console", payload).ext)

    async def _send_seat_page(self, ext: str) -> None:
        """What a seat's console shows, sent whole: its state, and the pop of its call, or the
        clearing of the last call popped (a page that kept it over a reconnect, or missed its
        clear while the bus was down, must not show an ended call)."""
        if ext in self.model.seats:
            status = self.model.seat_status(ext)
            if await self.notify.send(status):
                self._seat_sent[ext] = status
            self._seat_queues_sent.pop(ext, None)  # the new page gets its queues line too
            self._seat_queues_stale = True
            self._wallboard_dirty.set()
        call = self.model.pop_for(ext)
        if call is not None:
            await self._send_pop(call, ext)
        elif (shown := self._shown.pop(ext, None)) is not None:
            await self.notify.send(Clear(ext, shown, "hangup"))

    async def _send_pop(self, call: LiveCall, ext: str) -> None:
        self._shown[ext] = call.linkedid
        await self.notify.send(notifier.pop_message(call, ext))

    async def _resend_pages(self) -> None:
        """The bus is back after an outage: what the pages missed meanwhile is sent again, once
        the web workers' readers, retrying every half second, are subscribed again."""
        await asyncio.sleep(RESEND_AFTER_OUTAGE_S)
        seats = sorted(set(self.model.seats) | set(self._shown))
        log.warning("the bus is back: sending %d seats' consoles their state again", len(seats))
        for ext in seats:
            await self._send_seat_page(ext)

    async def _record_worker(self) -> None:
        down_since: float | None = None  # the database stopped answering (said once, and once back)
        while True:
            call = await self._records.get()
            # The calls ending meanwhile are written with it: one transaction for several calls
            # under load (a record is wanted within a second, not within a millisecond).
            self._taken = [call]
            await asyncio.sleep(RECORD_BATCH_S)
            batch = self._taken
            while not self._records.empty() and len(batch) < 200:
                batch.append(self._records.get_nowait())
            self._taken = []
            try:
                await self._write_and_announce(batch)
            except Exception as exc:
                if isinstance(exc, Unannounced):
                    batch = exc.calls  # on file: only their announcements are still due
                    exc = exc.cause
                if database_unavailable(exc) or bus_unavailable(exc):
                    # Not the records' fault: keep every one and try again until it is back (a
                    # record written before the bus failed is written again: an update).
                    if down_since is None:
                        down_since = time.monotonic()
                        log.error("database or bus unavailable (%s): call records wait in memory", exc)
                    for c in batch:
                        self._records.put_nowait(c)
                    await asyncio.sleep(min(5.0, 0.5 + (time.monotonic() - down_since) / 10))
                    continue
                log.exception("writing %d call records failed; trying them one by one", len(batch))
                await asyncio.sleep(1)
                # One record the database refuses must not hold up every later one: each is
                # tried on its own, and one that keeps failing is dropped (logged in full).
                for c in batch:
                    try:
                        await self._write_and_announce([c])
                        self._record_failures.pop(c.linkedid, None)
                    except Exception as exc:
                        # down again: not its fault
                        counted = 0 if database_unavailable(exc) or bus_unavailable(exc) else 1
                        tries = self._record_failures.get(c.linkedid, 0) + counted
                        if tries >= RECORD_ATTEMPTS:
                            self._record_failures.pop(c.linkedid, None)
                            log.error(
                                "call record %s dropped after %d attempts (%r): %r", c.linkedid, tries, exc, c
                            )
                        else:
                            self._record_failures[c.linkedid] = tries
                            self._records.put_nowait(c)
                continue
            if down_since is not None:
                log.warning(
                    "database and bus answer again after %.0f s: the waiting call records are written",
                    time.monotonic() - down_since,
                )
                down_since = None

    async def announce_records(self, linkedids: list[str]) -> None:
        """Records written after the call (settled from queue_log): announced as the engine
        announces its own, so the missed-call list and the consoles learn how they ended."""

        def read() -> list[dict[str, Any]]:
            with session_scope(self.settings) as s:
                rows = s.scalars(select(CallRecord).where(col(CallRecord.linkedid).in_(linkedids)))
                return [r.model_dump(exclude={"id"}) for r in rows]

        for row in await self._run_db(read):
            await self.notify.send(_recorded(row))

    def _recheck(self, call: LiveCall) -> None:
        """Write an unsettled record once more in a while: the follower may have closed the call
        meanwhile in a transaction this one did not see."""
        self._loop.call_later(SETTLE_RECHECK_S, self._records.put_nowait, call)

    async def _write_and_announce(self, batch: list[LiveCall]) -> None:
        await self._run_db(self._write, batch)
        for i, c in enumerate(batch):
            # Announced for the missed-call list and the consoles: it must arrive.
            try:
                await self.notify.send(_recorded(record_row(c)), must_arrive=True)
            except Exception as exc:
                raise Unannounced(batch[i:], exc) from exc

    async def _flush_records(self) -> None:
        batch, self._taken = self._taken, []  # taken by the worker, which was stopped before writing
        while not self._records.empty():
            batch.append(self._records.get_nowait())
        if batch:
            self._write(batch)

    def _write(self, calls: list[LiveCall]) -> None:
        """One transaction per batch: the calls already on file in one read, the new ones and the
        queue events as two multi-row inserts, in SQLAlchemy Core (ORM objects cost the engine's
        process several ms a call under load, CPU its event loop then waited for)."""
        records, queue_events = table_of(CallRecord), table_of(QueueEventRow)
        with session_scope(self.settings) as s:
            ids = list({c.linkedid for c in calls})
            found = s.execute(
                select(records.c.linkedid, records.c.outcome).where(records.c.linkedid.in_(ids))
            )
            existing: dict[str, str] = {linkedid: outcome for linkedid, outcome in found}
            unsettled = [c.linkedid for c in calls if c.outcome == UNSETTLED]
            settled = self._settled(s.connection(), unsettled) if unsettled else {}
            new: dict[str, dict[str, Any]] = {}
            changed: dict[str, dict[str, Any]] = {}
            events: list[dict[str, Any]] = []
            for call in calls:
                row = record_row(call)
                on_file = existing.get(call.linkedid)
                if call.outcome == UNSETTLED:
                    if call.linkedid in settled:
                        row.update(settled[call.linkedid])
                        call.outcome, call.seat = row["outcome"], row["seat"]  # as announced
                    elif on_file is not None and on_file not in ("", UNSETTLED):
                        row = {k: v for k, v in row.items() if k not in _SETTLED_FIELDS}  # settled
                    elif not call.settle_rechecked:
                        call.settle_rechecked = True
                        self._loop.call_soon_threadsafe(self._recheck, call)
                values = {k: v for k, v in row.items() if v not in (None, "")}
                if on_file is not None:
                    # A call seen again after a re-sync: update, never count twice.
                    changed.setdefault(call.linkedid, {}).update(values)
                elif call.linkedid in new:  # twice in one batch: the later values win
                    new[call.linkedid].update(values)
                else:
                    new[call.linkedid] = row
                for e in call.events:
                    events.append(
                        {
                            "at": datetime.fromtimestamp(e["at"], UTC),
                            "linkedid": call.linkedid,
                            "event": e["event"],
                            "queue": str(e.get("queue", "")),
                            "interface": str(e.get("interface", "")),
                            "data": {k: v for k, v in e.items() if k not in ("at", "event")},
                        }
                    )
                call.events = []
            if new:
                s.execute(insert(records), list(new.values()))
            for linkedid, values in changed.items():
                if values:
                    s.execute(update(records).where(records.c.linkedid == linkedid).values(**values))
            if events:
                s.execute(insert(queue_events), events)
            s.commit()
