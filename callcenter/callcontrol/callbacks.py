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

Missed calls (漏接回拨): every call record the call workers publish is read here. A resident who
hung up while waiting in a queue (``abandoned``), or who called out of hours (``closed``), from a
number the dial-out policy allows, gets a callback item; several missed calls from one number
merge into one item, and a call of theirs that a seat answers closes it. During the number's
opening hours, when a seat of the queue is free, the seat's phone rings first (Originate into
``cc-missed-callback``); when the seat answers the resident is dialled and hears who is calling
and why before being put through. The route ``missed_callback`` hands over how the resident's
leg ended (Dial's status), stored as the attempt's outcome.

When the automatic calls end without reaching the resident (every attempt of a callback or a
missed-call callback unanswered; a follow-up neither the call nor its SMS got an answer to), the
item becomes a seat's ``task`` in the seats' callbacks list until a seat marks it done
(:func:`finish_task`), the resident calls again (missed calls) or the order gets its 回访 some
other way (:func:`close_followup_tasks`).

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
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from callcenter import topics
from callcenter.ami import actions
from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus
from callcenter.callcontrol.models import Callback, FollowUp
from callcenter.callcontrol.service import LINKEDID, QUEUE, Directory, new_channel_id
from callcenter.calls.models import CallRecord
from callcenter.calls.state import LiveModel
from callcenter.clock import aware, china_now, utcnow
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import saved_id, session_scope
from callcenter.dialout import policy
from callcenter.dialout.service import note_refusal, shown
from callcenter.directory.models import ServiceNumber
from callcenter.ivr.models import ServiceHours
from callcenter.ivr.service import is_open
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
MISSED_KINDS = ("abandoned", "closed")
MISSED_CONTEXT = "cc-missed-callback"
OPEN = ("waiting", "calling")
TASK = "task"  # the automatic calls did not reach the resident: a seat's to do
FOLLOWUP_TASK = "followup"  # a task's kind: a 回访 nobody answered (the order in ``reference``)
DIAL_STATUSES = frozenset({"ANSWER", "BUSY", "NOANSWER", "CANCEL", "CONGESTION", "CHANUNAVAIL"})
# The share of missed calls called back within this time (the statistics' 15-minute figure).
CALLED_BACK_WITHIN_S = 15 * 60


def missed_kind(row: dict[str, Any], closed: bool) -> str | None:
    """What a published call record says about a missed call: ``abandoned`` (hung up while
    waiting in a queue), ``closed`` (called out of hours), or None (answered, or not a
    resident's call to the hotline: 12345 transfers and our own calls out are not counted)."""
    if row.get("source") != "carrier" or row.get("outcome") == "answered" or row.get("seat"):
        return None
    if not str(row.get("caller", "")).startswith("+"):
        return None  # only a number that was normalised (E.164), never the raw caller ID
    if closed:
        return "closed"  # out of hours (the record still names the number's queue)
    # failed: cut off by a fault of ours (Asterisk went away) while waiting: called back too.
    if row.get("queue") and row.get("outcome") in ("abandoned", "timeout", "failed"):
        return "abandoned"
    return None


def note_missed(
    session: Session, settings: Settings, row: dict[str, Any], kind: str, queue: str, now: datetime
) -> Callback | None:
    """Add a missed call to its number's open item, or open one (no commit); None when the
    dial-out policy refuses the number (nothing is kept: a withheld number is no one to call)."""
    number = str(row.get("caller", ""))
    decision = policy.check(number, settings, calls_today=lambda n: automatic_calls_today(session, n))
    if not decision.allowed or decision.number != number or not QUEUE.fullmatch(queue):
        return None
    linkedid = str(row.get("linkedid", ""))[:64]
    item = session.exec(
        select(Callback)
        .where(Callback.phone == number, col(Callback.status).in_(OPEN))
        .order_by(col(Callback.id))
    ).first()
    if item is not None:
        if item.linkedid != linkedid:
            item.missed_count += 1
            item.last_missed_at = now
        session.add(item)
        return item
    item = Callback(
        linkedid=linkedid,
        phone=number,
        queue=queue,
        kind=kind,
        did=str(row.get("did", ""))[:32],
        requested_at=now,
        last_missed_at=now,
    )
    session.add(item)
    return item


def close_on_return(session: Session, numbers: list[str], now: datetime) -> int:
    """The residents' own calls reached a seat: their missed-call items are done (no commit)."""
    # Most answered calls have no item: only ids are read, and items loaded when there are some.
    ids = session.exec(
        select(Callback.id).where(
            col(Callback.phone).in_(numbers),
            col(Callback.status).in_(("waiting", TASK)),
            col(Callback.kind).in_(MISSED_KINDS),
        )
    ).all()
    if not ids:
        return 0
    rows = session.exec(select(Callback).where(col(Callback.id).in_(ids))).all()
    for item in rows:
        item.status, item.outcome, item.done_at = "done", "called_again", now
        session.add(item)
    return len(rows)


def add_followup_task(session: Session, number: str, reference: str, reason: str) -> Callback | None:
    """A 回访 the automatic chain could not complete, for a seat (no commit): one open task per
    reference. ``reason`` says why (``no_reply``: the SMS got no answer; ``no_sms``: no mobile
    number, or the resident unsubscribed)."""
    if not REFERENCE.fullmatch(reference):
        return None
    open_task = session.exec(
        select(Callback).where(Callback.reference == reference, Callback.status == TASK)
    ).first()
    if open_task is not None:
        return open_task
    task = Callback(
        phone=shown(number),
        kind=FOLLOWUP_TASK,
        status=TASK,
        reference=reference,
        outcome=reason[:32],
        missed_count=0,
    )
    session.add(task)
    return task


def close_followup_tasks(session: Session, reference: str, now: datetime) -> int:
    """The 回访 is recorded (by a seat, by SMS, on the resident's page): its task is done."""
    rows = session.exec(
        select(Callback).where(Callback.reference == reference, Callback.status == TASK)
    ).all()
    for task in rows:
        task.status, task.done_at = "done", now
        session.add(task)
    return len(rows)


def finish_task(session: Session, item_id: int, seat: str, now: datetime) -> bool:
    """A seat has dealt with a task (called the resident by hand, or gave up): done (no commit).
    False when there is no such open task."""
    task = session.get(Callback, item_id)
    if task is None or task.status != TASK:
        return False
    task.status, task.done_at, task.seat = "done", now, seat[:16]
    task.outcome = (task.outcome + "; by seat")[-32:] if task.outcome else "by seat"
    session.add(task)
    return True


def missed_callback_figures(session: Session, since: datetime, until: datetime) -> dict[str, Any]:
    """Calls abandoned in queue between ``since`` and ``until``: how many, how many were called
    back (the resident's phone dialled) within 15 minutes, the share, and the seconds from the
    miss to the first dial back, sorted (out-of-hours calls are counted from opening: not here)."""
    rows = session.exec(
        select(Callback).where(
            Callback.kind == "abandoned", Callback.requested_at >= since, Callback.requested_at < until
        )
    ).all()
    delays = sorted(
        (aware(r.first_dialled_at) - aware(r.requested_at)).total_seconds()
        for r in rows
        if r.first_dialled_at is not None
    )
    within = sum(1 for d in delays if d <= CALLED_BACK_WITHIN_S)
    return {
        "missed": len(rows),
        "called_back": len(delays),
        "called_back_15min": within,
        "ratio_15min": round(within / len(rows), 4) if rows else None,
        "delays_s": delays,
    }


def missed_callback_report(settings: Settings, start: str, end: str) -> dict[str, Any]:
    """The statistics' figures for China days ``start``..``end`` (YYYY-MM-DD, both included):
    calls abandoned in queue, how many were called back, within 15 minutes and the share, the
    median and 95th percentile of the delay; and the out-of-hours calls (called back from
    opening time, so not in the 15-minute share)."""
    since = datetime.combine(date.fromisoformat(start), datetime.min.time(), CHINA_TZ).astimezone(UTC)
    until = datetime.combine(date.fromisoformat(end), datetime.min.time(), CHINA_TZ).astimezone(UTC)
    until += timedelta(days=1)
    with session_scope(settings) as s:
        figures = missed_callback_figures(s, since, until)
        closed = s.exec(
            select(Callback).where(
                Callback.kind == "closed", Callback.requested_at >= since, Callback.requested_at < until
            )
        ).all()
    delays = figures.pop("delays_s")

    def pct(q: float) -> float | None:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))], 1) if delays else None

    return {
        **figures,
        "delay_p50_s": pct(0.5),
        "delay_p95_s": pct(0.95),
        "closed": len(closed),
        "closed_called_back": sum(1 for r in closed if r.first_dialled_at is not None),
    }


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


def _call_summary(record: CallRecord | None) -> dict[str, Any] | None:
    """The call back as its call record tells it (shown on the item it called back)."""
    if record is None:
        return None
    return {
        "linkedid": record.linkedid,
        "started_at": aware(record.started_at).isoformat(timespec="seconds"),
        "seat": record.seat,
        "talk_s": round(record.talk_s, 1) if record.talk_s is not None else None,
        # The whole call (the seat's leg included): a call back placed from a seat has no queue
        # wait, so no queue talk time either.
        "duration_s": (
            round((aware(record.ended_at) - aware(record.started_at)).total_seconds(), 1)
            if record.ended_at is not None
            else None
        ),
        "outcome": record.outcome,
    }


def waiting_callbacks(settings: Settings) -> list[dict[str, Any]]:
    """What the seats' list shows, oldest first: callbacks not yet done, the seats' open tasks
    (whatever their day), today's refused ones with the reason (the seat may call the caller back
    by hand if it is a real number), and today's missed calls called back, each with the call
    record of its call back."""
    today = day_start()
    with session_scope(settings) as s:
        rows = s.exec(
            select(Callback)
            .where(
                col(Callback.status).in_(("waiting", "calling", TASK))
                | ((Callback.status == REFUSED) & (Callback.requested_at >= today))
                | (
                    col(Callback.status).in_(("done", "failed"))
                    & col(Callback.kind).in_(MISSED_KINDS)
                    & (Callback.requested_at >= today)
                )
            )
            .order_by(col(Callback.requested_at), col(Callback.id))
            .limit(200)
        ).all()
        linked = [r.call_linkedid for r in rows if r.call_linkedid]
        records = {
            c.linkedid: c
            for c in (
                s.exec(select(CallRecord).where(col(CallRecord.linkedid).in_(linked))).all() if linked else []
            )
        }
    return [
        {
            "id": r.id,
            "phone": r.phone,
            "queue": r.queue,
            "requested_at": aware(r.requested_at).isoformat(timespec="seconds"),
            "status": r.status,
            "attempts": r.attempts,
            "kind": r.kind,
            "missed_count": r.missed_count,
            "outcome": r.outcome,
            "reference": r.reference,
            "seat": r.seat,
            "call": _call_summary(records.get(r.call_linkedid)) if r.call_linkedid else None,
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

    async def originate_seat_first(
        self, ext: str, number: str, context: str, variables: dict[str, str]
    ) -> tuple[bool, str]:
        """Ring the seat's phone; when it answers, ``context`` dials ``number`` (the digits the
        dial-out policy gives, as the extension). (True, the call's id) when the seat answered."""
        decision = policy.check(number, self.settings)
        if not decision.allowed or not self.settings.outbound_contact:
            return False, f"refused: {decision.reason}" if not decision.allowed else "no outside line"
        channel_id = new_channel_id()
        clid = await self.directory.caller_id()
        action = actions.originate(
            f"PJSIP/seat{ext}",
            context,
            decision.digits,
            clid,
            {**variables, "CC_CLID": clid},
            channel_id,
            asynchronous=False,
        )
        if action is None:
            return False, "bad variable"
        try:
            reply = await self.ami.held_action(action, timeout=45)
        except Exception as exc:
            return False, f"originate failed: {exc!r}"[:64]
        if reply.ok:
            return True, channel_id
        return False, "seat: " + str(reply.message if reply.message is not None else "no answer")[:56]


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
        self._seats: set[str] = set()  # seats a missed-call callback is ringing or talking on
        self._dialled: dict[int, asyncio.Future] = {}

    async def start(self) -> None:
        await asyncio.to_thread(self.daily.load)
        await super().start()
        records = self.bus.subscribe(topics.CALLS_RECORDED)
        await records.ready.wait()
        self._tasks.append(asyncio.create_task(self._missed_calls(records), name="callbacks-missed"))

    # -- missed calls ---------------------------------------------------------------------------
    async def _missed_calls(self, sub) -> None:
        async for _topic, payload in sub:
            # The records that came meanwhile are read together: answered calls (most of them)
            # close their numbers' items in one query, not one transaction a call.
            rows = [payload]
            while len(rows) < 200 and not sub.queue.empty():
                rows.append(sub.queue.get_nowait()[1])
            try:
                changed = await asyncio.to_thread(self.records_seen, rows)
                if changed:
                    await self.bus.publish(CALLBACKS_CHANGED, CallbacksChanged().to_json())
            except Exception:
                log.exception("reading %d call records for missed calls failed", len(rows))

    def records_seen(self, rows: list[dict[str, Any]]) -> bool:
        """Call records, in order: True when the list changed."""
        returned: list[str] = []
        changed = False
        for row in rows:
            number = str(row.get("caller", ""))
            if row.get("outcome") == "answered" and row.get("source") == "carrier" and number.startswith("+"):
                returned.append(number)
                continue
            if returned:  # in order: a return before a later missed call of the same number
                changed |= self._returned(returned)
                returned = []
            changed |= self.record_seen(row)
        if returned:
            changed |= self._returned(returned)
        return changed

    def _returned(self, numbers: list[str]) -> bool:
        with session_scope(self.settings) as s:
            closed_items = close_on_return(s, sorted(set(numbers)), utcnow())
            s.commit()
        return closed_items > 0

    def record_seen(self, row: dict[str, Any]) -> bool:
        """A call record: a missed call becomes (or joins) an item; an answered call of the same
        number closes its items. True when the list changed."""
        now = utcnow()
        number = str(row.get("caller", ""))
        if row.get("outcome") == "answered" and row.get("source") == "carrier" and number.startswith("+"):
            return self._returned([number])
        with session_scope(self.settings) as s:
            did = str(row.get("did", ""))[:32]
            hours = s.exec(select(ServiceHours).where(ServiceHours.number == did)).first() if did else None
            kind = missed_kind(row, closed=not is_open(hours, china_now(self.settings)))
            if kind is None:
                return False
            queue = str(row.get("queue", "") or "")
            if not queue:
                sn = s.exec(select(ServiceNumber).where(ServiceNumber.number == did)).first()
                queue = sn.queue_name if sn else ""
            item = note_missed(s, self.settings, row, kind, queue, now)
            s.commit()
            return item is not None

    def dialled(self, callback_id: str, status: str) -> bool:
        """The FastAGI route's message: how the resident's leg of a missed-call callback ended
        (Dial's status, untrusted: only known words count)."""
        if not is_digits(callback_id):
            return False
        word = status if status in DIAL_STATUSES else ""
        future = self._dialled.get(int(callback_id))
        if future is not None and not future.done():
            future.set_result(word or "UNKNOWN")
        return bool(word)

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
            hours = {h.number: h for h in s.exec(select(ServiceHours)).all()}
        due = [r for r in rows if r.last_attempt_at is None or aware(r.last_attempt_at) + retry <= now]
        # A missed call is called back during its number's opening hours only.
        business_now = china_now(self.settings)
        return [
            r
            for r in due
            if r.kind not in MISSED_KINDS
            or (self.settings.missed_callbacks_auto and is_open(hours.get(r.did), business_now))
        ]

    def free_seat(self, queue: str) -> str | None:
        for ext, seat in sorted(self.model.seats.items()):
            if ext in self._seats:
                continue
            if queue in seat.queues and seat.state == "available" and not seat.linkedid:
                return ext
        return None

    def _start_due(self, due: list[Callback]) -> None:
        busy_queues: set[str] = set()
        for cb in due:
            if saved_id(cb) in self._calling or cb.queue in busy_queues:
                continue
            ext = self.free_seat(cb.queue)
            if ext is None:
                continue
            busy_queues.add(cb.queue)  # one callback per queue at a time: one free seat
            self._calling.add(saved_id(cb))
            if cb.kind in MISSED_KINDS:
                self._seats.add(ext)
                self._spawn(self._call_missed(cb, ext))
            else:
                self._spawn(self._call(cb))

    async def _call_missed(self, cb: Callback, ext: str) -> None:
        """The seat's phone first; when it answers, the resident's (cc-missed-callback)."""
        cb_id = saved_id(cb)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._dialled[cb_id] = future
        try:
            await asyncio.to_thread(self._update, cb_id, status="calling", last_attempt_at=utcnow())
            await self.bus.publish(CALLBACKS_CHANGED, CallbacksChanged().to_json())
            variables = {"CC_CB_ID": str(cb_id), "CC_CB_QUEUE": cb.queue}
            if LINKEDID.fullmatch(cb.linkedid or ""):
                variables["CC_CB_FOR"] = cb.linkedid
            ok, detail = await self.originator.originate_seat_first(ext, cb.phone, MISSED_CONTEXT, variables)
            if not ok:
                # The seat did not take it (or the number is refused now): not the resident's attempt.
                final = detail.startswith("refused")
                await asyncio.to_thread(
                    self._update,
                    cb_id,
                    status="failed" if final else "waiting",
                    outcome=detail[:32],
                    **({"done_at": utcnow()} if final else {}),
                )
                log.info("missed-call callback %s: seat %s did not take it (%s)", cb_id, ext, detail)
                return
            attempts = cb.attempts + 1
            first = cb.first_dialled_at or utcnow()
            await asyncio.to_thread(
                self._update, cb_id, attempts=attempts, first_dialled_at=first, call_linkedid=detail, seat=ext
            )
            status = "UNKNOWN"
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(future, self.settings.missed_callback_max_s)
            if status == "ANSWER":
                await asyncio.to_thread(
                    self._update, cb_id, status="done", outcome="answered", done_at=utcnow()
                )
            elif attempts >= self.settings.callback_attempts:
                # No attempt reached the resident: a seat takes it over (the list shows it).
                await asyncio.to_thread(self._update, cb_id, status=TASK, outcome=status.lower())
            else:
                await asyncio.to_thread(self._update, cb_id, status="waiting", outcome=status.lower())
            log.info("missed-call callback %s attempt %d via seat %s: %s", cb_id, attempts, ext, status)
        except Exception:
            log.exception("missed-call callback %s failed", cb_id)
        finally:
            self._dialled.pop(cb_id, None)
            self._seats.discard(ext)
            self._calling.discard(cb_id)
            await self.bus.publish(CALLBACKS_CHANGED, CallbacksChanged().to_json())

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
                # Every attempt unanswered: a seat's task now (statistics count it failed).
                await asyncio.to_thread(self._update, cb_id, status=TASK, outcome=detail[:32])
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
