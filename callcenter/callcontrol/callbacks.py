"""Callback instead of waiting, and follow-up calls (回访), both placed by AMI Originate.

Callbacks: a caller waiting in a queue presses the callback key (queues.conf ``context``); the
FastAGI route ``callback`` asks :meth:`CallbackWorker.accept` (the live model says how long the
caller has waited and which number they called from) and the request is stored by the worker,
never in the route. When a seat of that queue is free, the worker calls the resident back
(Originate into ``cc-callback``, which queues them at the front); a failed attempt is tried again
``callback_attempts`` times, ``callback_retry_s`` apart.

Follow-ups: anyone (the dispatch branch, when an order is resolved) publishes
``followup.request`` ``{"phone": ..., "reference": ...}``; the worker calls the resident
(Originate into ``cc-followup``), the FastAGI route ``followup`` hands over the digit, and the
result is stored keyed by the reference and published as ``followup.result``
``{"reference", "status": rated|unreachable, "rating"}``. No answer or no digit: tried again,
then ``unreachable``.

Both dial only what the dial-out policy allows (callcenter/dialout/policy.py): the number is
checked when the request arrives and again before each call, never the raw caller ID, and
automatic calls to one number are capped per China day (:class:`DailyCalls`, counted from this
module's tables, so a restart forgets nothing). A refused callback is kept as ``refused`` with
the policy's reason, so the seats see why nobody will call that caller back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from callcenter import topics
from callcenter.ami import actions
from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus
from callcenter.callcontrol.models import Callback, FollowUp
from callcenter.callcontrol.service import LINKEDID, QUEUE, Directory, new_channel_id
from callcenter.calls.state import LiveModel
from callcenter.clock import aware, utcnow
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import saved_id, session_scope
from callcenter.dialout import policy
from callcenter.dialout.service import note_refusal, shown
from callcenter.messages import CallbackRequest, CallbacksChanged, FollowUpRequest, FollowUpResult
from callcenter.text import is_digits

log = logging.getLogger(__name__)

CALLBACK_TOPIC = topics.CALLBACK_REQUEST
CALLBACKS_CHANGED = topics.CALLBACKS_CHANGED
FOLLOWUP_REQUEST = topics.FOLLOWUP_REQUEST
FOLLOWUP_RATED = topics.FOLLOWUP_RATED
FOLLOWUP_RESULT = topics.FOLLOWUP_RESULT
REFERENCE = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")
REFUSED = "refused"  # a callback the dial-out policy refused (its reason in ``outcome``)
POLL_S = 1.0


def day_start(now: datetime | None = None) -> datetime:
    """Midnight in China today, in UTC (the stored times are UTC)."""
    local = (now or utcnow()).astimezone(CHINA_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def automatic_calls_today(session: Session, number: str) -> int:
    """Callbacks and follow-ups booked today for ``number`` (E.164), refused ones not counted."""
    since = day_start()
    callbacks = session.exec(
        select(func.count())
        .select_from(Callback)
        .where(Callback.phone == number, Callback.requested_at >= since, Callback.status != REFUSED)
    ).one()
    followups = session.exec(
        select(func.count())
        .select_from(FollowUp)
        .where(FollowUp.phone == number, FollowUp.requested_at >= since)
    ).one()
    return int(callbacks) + int(followups)


class DailyCalls:
    """Automatic calls booked today per number, for the FastAGI route's quick answer (no
    database on the call's path): read from the tables at start, counted up as calls are booked,
    forgotten when the China day changes. The database count stays the last word."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._day = ""
        self._counts: dict[str, int] = {}

    @staticmethod
    def _today() -> str:
        return utcnow().astimezone(CHINA_TZ).date().isoformat()

    def load(self) -> None:
        since = day_start()
        counts: dict[str, int] = {}
        with session_scope(self.settings) as s:
            for table in (Callback, FollowUp):
                query = select(table.phone, func.count()).where(table.requested_at >= since)
                if table is Callback:
                    query = query.where(Callback.status != REFUSED)
                for phone, n in s.exec(query.group_by(table.phone)).all():
                    counts[phone] = counts.get(phone, 0) + int(n)
        self._counts, self._day = counts, self._today()

    def count(self, number: str) -> int:
        if self._day != self._today():
            self._counts, self._day = {}, self._today()
        return self._counts.get(number, 0)

    def add(self, number: str) -> None:
        self._counts[number] = self.count(number) + 1


def request_followup(session: Session, phone: str, reference: str, settings: Settings | None = None) -> bool:
    """A follow-up call, added to the caller's transaction (the worker polls for pending ones):
    an order resolved and its follow-up requested commit together. False: a bad reference, or a
    number the dial-out policy refuses (the refusal is audited in the same transaction)."""
    if not REFERENCE.fullmatch(reference):
        return False
    decision = policy.check(phone, settings, calls_today=lambda n: automatic_calls_today(session, n))
    if not decision.allowed:
        note_refusal(session, decision, "followup", phone, reference=reference)
        return False
    session.add(FollowUp(reference=reference, phone=decision.number))
    return True


def waiting_callbacks(settings: Settings) -> list[dict[str, Any]]:
    """Callbacks not yet done, oldest first (what the seats' list shows), and today's refused
    ones with the reason (the seat may call the caller back by hand if it is a real number)."""
    with session_scope(settings) as s:
        rows = s.exec(
            select(Callback)
            .where(
                col(Callback.status).in_(("waiting", "calling"))
                | ((Callback.status == REFUSED) & (Callback.requested_at >= day_start()))
            )
            .order_by(col(Callback.requested_at), col(Callback.id))
            .limit(200)
        ).all()
    return [
        {
            "id": r.id,
            "phone": r.phone,
            "queue": r.queue,
            "requested_at": aware(r.requested_at).isoformat(timespec="seconds"),
            "status": r.status,
            "attempts": r.attempts,
            **({"reason": r.outcome} if r.status == REFUSED else {}),
        }
        for r in rows
    ]


class _Originator:
    """One Originate to an outside number into a dialplan context; True when it was answered."""

    def __init__(self, settings: Settings, ami: AmiClient, directory: Directory) -> None:
        self.settings = settings
        self.ami = ami
        self.directory = directory

    async def originate(self, number: str, context: str, variables: dict[str, str]) -> tuple[bool, str]:
        # Checked again before every call: the policy may have changed since the booking.
        decision = policy.check(number, self.settings)
        if not decision.allowed or not self.settings.outbound_contact:
            return False, f"refused: {decision.reason}" if not decision.allowed else "no outside line"
        digits = decision.digits
        channel_id = new_channel_id()
        clid = await self.directory.caller_id()
        # Not async: the reply comes when the resident answers (Success) or not (Error).
        action = actions.originate(
            f"PJSIP/{digits}@cc-outbound", context, "s", clid, variables, channel_id, asynchronous=False
        )
        if action is None:  # names and values are ours; still, nothing odd passes
            return False, "bad variable"
        try:
            reply = await self.ami.held_action(action, timeout=45)
        except Exception as exc:
            return False, f"originate failed: {exc!r}"[:64]
        if reply.ok:
            return True, channel_id
        return False, str(reply.message if reply.message is not None else "no answer")[:64]


class _Worker:
    """Tasks that end with the worker: its loops, and the calls it has in flight."""

    _tasks: list[asyncio.Task]
    settings: Settings
    bus: EventBus
    # What a worker keeps in its table and listens for (set by each kind).
    table: Any
    idle_status: str
    topic: str
    name: str

    def _reset(self) -> None:
        """Attempts cut short by an engine restart are due again."""
        with session_scope(self.settings) as s:
            for row in s.exec(select(self.table).where(self.table.status == "calling")).all():
                row.status = self.idle_status
                s.add(row)
            s.commit()

    async def start(self) -> None:
        await asyncio.to_thread(self._reset)
        sub = self.bus.subscribe(self.topic)
        await sub.ready.wait()
        self._tasks = [
            asyncio.create_task(self._store(sub), name=f"{self.name}-store"),
            asyncio.create_task(self._loop(), name=f"{self.name}-loop"),
        ]

    async def _store(self, sub) -> None:
        raise NotImplementedError

    def _due(self) -> list[Any]:
        raise NotImplementedError

    def _start_due(self, due: list[Any]) -> None:
        """Start the calls that are due now (each kind has its own limits)."""
        raise NotImplementedError

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                due = await asyncio.to_thread(self._due)
            except Exception:
                log.exception("reading %s failed", self.name)
                continue
            self._start_due(due)

    def _update(self, row_id: int, **values: Any) -> None:
        with session_scope(self.settings) as s:
            row = s.get(self.table, row_id)
            for k, v in values.items():
                setattr(row, k, v)
            s.add(row)
            s.commit()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks), []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


class CallbackWorker(_Worker):
    table, idle_status, topic, name = Callback, "waiting", CALLBACK_TOPIC, "callbacks"

    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        ami: AmiClient,
        model: LiveModel,
        directory: Directory,
        daily: DailyCalls | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.model = model
        self.originator = _Originator(settings, ami, directory)
        self.daily = daily or DailyCalls(settings)
        self._tasks: list[asyncio.Task] = []
        self._calling: set[int] = set()

    async def start(self) -> None:
        await asyncio.to_thread(self.daily.load)
        await super().start()

    # -- the FastAGI route's question: quick, no database -----------------------------------
    def accept(self, linkedid: str) -> tuple[bool, str]:
        """May this waiting caller be called back? Returns (ok, queue); the request is stored by
        the worker (a bus message), not here. Only the caller's number as normalised (E.164) is
        ever called, never the raw caller ID; a number the policy refuses is not booked (the
        caller keeps their place in the queue) but stored as refused, so a seat sees why."""
        call = self.model.calls.get(linkedid) if LINKEDID.fullmatch(linkedid or "") else None
        if call is None or not QUEUE.fullmatch(call.queue or ""):
            return False, ""
        waited = time.time() - call.queued_at if call.queued_at else 0.0
        if waited < self.settings.callback_offer_after_s:
            return False, call.queue
        number = call.caller or ""
        decision = policy.check(number or call.caller_raw, self.settings, calls_today=self.daily.count)
        ok = decision.allowed and decision.number == number
        if ok:
            self.daily.add(number)
        # Refused ones go to the worker too: it stores and audits the refusal (once per call).
        request = CallbackRequest(linkedid=linkedid, phone=number or call.caller_raw[:40], queue=call.queue)
        asyncio.get_running_loop().create_task(self.bus.publish(request.topic, request.to_json()))
        return ok, call.queue

    # -- the worker ---------------------------------------------------------------------------
    async def _store(self, sub) -> None:
        async for _topic, payload in sub:
            request = CallbackRequest.from_json(payload)
            phone, queue, linkedid = request.phone[:40], request.queue, request.linkedid
            if not QUEUE.fullmatch(queue):
                continue
            try:
                await asyncio.to_thread(self._insert, linkedid[:64], phone, queue)
                await self.bus.publish(CALLBACKS_CHANGED, CallbacksChanged().to_json())
            except Exception:
                log.exception("storing a callback for %s failed", linkedid)

    def _insert(self, linkedid: str, phone: str, queue: str) -> None:
        with session_scope(self.settings) as s:
            if linkedid and s.exec(select(Callback).where(Callback.linkedid == linkedid)).first():
                return  # the same call asked twice
            decision = policy.check(phone, self.settings, calls_today=lambda n: automatic_calls_today(s, n))
            if decision.allowed and decision.number != phone:
                # Only the normalised caller number is booked: anything else is the raw caller ID.
                decision = policy.Decision(False, policy.NOT_A_NUMBER)
            if decision.allowed:
                s.add(Callback(linkedid=linkedid, phone=decision.number, queue=queue))
            else:
                note_refusal(s, decision, "callback", phone, linkedid=linkedid, queue=queue)
                s.add(
                    Callback(
                        linkedid=linkedid,
                        phone=shown(phone),
                        queue=queue,
                        status=REFUSED,
                        outcome=decision.reason,
                        done_at=utcnow(),
                    )
                )
            s.commit()

    def _due(self) -> list[Callback]:
        retry = timedelta(seconds=self.settings.callback_retry_s)
        now = utcnow()
        with session_scope(self.settings) as s:
            rows = s.exec(
                select(Callback)
                .where(Callback.status == "waiting")
                .order_by(col(Callback.requested_at), col(Callback.id))
            ).all()
        return [r for r in rows if r.last_attempt_at is None or aware(r.last_attempt_at) + retry <= now]

    def free_seat(self, queue: str) -> str | None:
        for ext, seat in sorted(self.model.seats.items()):
            if queue in seat.queues and seat.state == "available" and not seat.linkedid:
                return ext
        return None

    def _start_due(self, due: list[Callback]) -> None:
        busy_queues: set[str] = set()
        for cb in due:
            if saved_id(cb) in self._calling or cb.queue in busy_queues:
                continue
            if self.free_seat(cb.queue) is None:
                continue
            busy_queues.add(cb.queue)  # one callback per queue at a time: one free seat
            self._calling.add(saved_id(cb))
            self._spawn(self._call(cb))

    async def _call(self, cb: Callback) -> None:
        cb_id = saved_id(cb)
        try:
            attempts = cb.attempts + 1
            await asyncio.to_thread(
                self._update, cb_id, status="calling", attempts=attempts, last_attempt_at=utcnow()
            )
            await self.bus.publish(CALLBACKS_CHANGED, CallbacksChanged().to_json())
            variables = {"CC_CB_QUEUE": cb.queue, "CC_CB_ID": str(cb_id)}
            if LINKEDID.fullmatch(cb.linkedid or ""):
                variables["CC_CB_FOR"] = cb.linkedid  # statistics: the booking, in queue_log
            ok, detail = await self.originator.originate(cb.phone, "cc-callback", variables)
            if ok:
                seat = await self._answered_by(detail)
                await asyncio.to_thread(
                    self._update, cb_id, status="done", outcome="answered", seat=seat, done_at=utcnow()
                )
            elif attempts >= self.settings.callback_attempts:
                await asyncio.to_thread(
                    self._update, cb_id, status="failed", outcome=detail, done_at=utcnow()
                )
                await self._log_failed(cb)
            else:
                await asyncio.to_thread(self._update, cb_id, status="waiting", outcome=detail)
            log.info("callback %s attempt %d: %s %s", cb_id, attempts, "answered" if ok else "failed", detail)
            await self.bus.publish(CALLBACKS_CHANGED, CallbacksChanged().to_json())
        except Exception:
            log.exception("callback %s failed", cb_id)
        finally:
            self._calling.discard(cb_id)

    async def _log_failed(self, cb: Callback) -> None:
        """statistics: a callback given up, in queue_log (the reconciler counts it failed)."""
        action = actions.queue_log(cb.queue, "CALLBACKFAIL", cb.linkedid, "NONE", cb.linkedid)
        if action is None:
            return
        try:
            await self.originator.ami.action(action)
        except Exception:
            log.exception("writing callback %s's failure into queue_log failed", cb.id)

    async def _answered_by(self, linkedid: str, timeout: float = 60) -> str:
        """The seat the called-back resident was put through to (from the live model)."""
        deadline = time.monotonic() + timeout
        seen = False
        while time.monotonic() < deadline:
            call = self.model.calls.get(linkedid)
            if call is not None:
                seen = True
                if call.seat:
                    return call.seat
            elif seen:
                break  # the call is over before a seat answered
            await asyncio.sleep(0.2)
        return ""


class FollowUpWorker(_Worker):
    table, idle_status, topic, name = FollowUp, "pending", FOLLOWUP_REQUEST, "followup"

    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        ami: AmiClient,
        directory: Directory,
        daily: DailyCalls | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.originator = _Originator(settings, ami, directory)
        self.daily = daily or DailyCalls(settings)
        self._tasks: list[asyncio.Task] = []
        self._calling: set[int] = set()
        self._ratings: dict[int, asyncio.Future] = {}

    # -- the FastAGI route's message: quick, no database --------------------------------------
    def rated(self, followup_id: str, digit: str) -> bool:
        """The digit the resident pressed (or nothing). True when it is a valid rating."""
        if not is_digits(followup_id):
            return False
        rating = int(digit) if digit in ("1", "2", "3", "4", "5") else None
        future = self._ratings.get(int(followup_id))
        if future is not None and not future.done():
            future.set_result(rating)
        return rating is not None

    async def start(self) -> None:
        await super().start()
        if self.settings.followup_after_call:
            recorded = self.bus.subscribe(topics.CALLS_RECORDED)
            await recorded.ready.wait()
            self._tasks.append(asyncio.create_task(self._after_calls(recorded), name="followup-after-call"))

    async def _after_calls(self, sub) -> None:
        """``followup_after_call``: every answered hotline call gets a follow-up, keyed by the call."""
        async for _topic, row in sub:
            # Only a caller number that was normalised (E.164), never the raw caller ID.
            if (
                row.get("outcome") == "answered"
                and row.get("queue")
                and str(row.get("caller", "")).startswith("+")
            ):
                reference = f"call:{row.get('linkedid', '')}"
                if REFERENCE.fullmatch(reference):
                    request = FollowUpRequest(phone=row["caller"], reference=reference)
                    await self.bus.publish(request.topic, request.to_json())

    async def _store(self, sub) -> None:
        async for _topic, payload in sub:
            request = FollowUpRequest.from_json(payload)
            phone, reference = request.phone[:40], request.reference
            if not REFERENCE.fullmatch(reference):
                log.warning("follow-up request refused: bad reference %r", reference[:64])
                continue
            try:
                await asyncio.to_thread(self._insert, reference, phone)
            except Exception:
                log.exception("storing a follow-up for %s failed", reference)

    def _insert(self, reference: str, phone: str) -> None:
        with session_scope(self.settings) as s:
            if request_followup(s, phone, reference, self.settings):
                self.daily.add(policy.check(phone, self.settings).number)
            s.commit()

    def _due(self) -> list[FollowUp]:
        retry = timedelta(seconds=self.settings.followup_retry_s)
        now = utcnow()
        with session_scope(self.settings) as s:
            rows = s.exec(
                select(FollowUp).where(FollowUp.status == "pending").order_by(col(FollowUp.id))
            ).all()
        return [r for r in rows if r.last_attempt_at is None or aware(r.last_attempt_at) + retry <= now]

    def _start_due(self, due: list[FollowUp]) -> None:
        for fu in due:
            if saved_id(fu) not in self._calling and len(self._calling) < 4:
                self._calling.add(saved_id(fu))
                self._spawn(self._call(fu))

    async def _call(self, fu: FollowUp) -> None:
        fu_id = saved_id(fu)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._ratings[fu_id] = future
        try:
            attempts = fu.attempts + 1
            await asyncio.to_thread(
                self._update, fu_id, status="calling", attempts=attempts, last_attempt_at=utcnow()
            )
            ok, detail = await self.originator.originate(fu.phone, "cc-followup", {"CC_FU_ID": str(fu_id)})
            rating = None
            if ok:
                # The prompt, the wait for a digit (twice) and the route: well under a minute.
                with contextlib.suppress(TimeoutError):
                    rating = await asyncio.wait_for(future, 90)
            if rating is not None:
                await asyncio.to_thread(self._update, fu_id, status="rated", rating=rating, done_at=utcnow())
                result = {"reference": fu.reference, "status": "rated", "rating": rating}
            elif attempts >= self.settings.followup_attempts:
                await asyncio.to_thread(self._update, fu_id, status="unreachable", done_at=utcnow())
                result = {"reference": fu.reference, "status": "unreachable", "rating": None}
            else:
                await asyncio.to_thread(self._update, fu_id, status="pending")
                result = None
            log.info("follow-up %s (%s) attempt %d: %s", fu_id, fu.reference, attempts, result or detail)
            if result is not None:
                done = FollowUpResult(
                    reference=result["reference"],
                    status=result["status"],
                    rating=result["rating"],
                    attempts=attempts,
                )
                await self.bus.publish(done.topic, done.to_json())
        except Exception:
            log.exception("follow-up %s failed", fu_id)
        finally:
            self._ratings.pop(fu_id, None)
            self._calling.discard(fu_id)
