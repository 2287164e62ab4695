"""Missed calls (漏接回拨) as items: which call records make one, merging per number, closing
when the resident is answered, opening hours on an injected clock, the 15-minute share."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import select

from callcenter.bus import InProcessBus
from callcenter.callcontrol.callbacks import (
    CallbackWorker,
    missed_callback_figures,
    missed_kind,
    waiting_callbacks,
)
from callcenter.callcontrol.models import Callback
from callcenter.calls.models import CallRecord
from callcenter.calls.state import LiveModel
from callcenter.clock import utcnow
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ivr.models import ServiceHours
from tests.callcenter.test_callcontrol import FakeAmi, FakeDirectory

RESIDENT = "+8613912345678"


def row(**over) -> dict:
    base = {
        "linkedid": "100.1",
        "caller": RESIDENT,
        "did": "96345",
        "source": "carrier",
        "queue": "hotline",
        "seat": "",
        "outcome": "abandoned",
    }
    return {**base, **over}


def worker(settings) -> CallbackWorker:
    return CallbackWorker(settings, InProcessBus(), FakeAmi(), LiveModel(), FakeDirectory())


def items(settings) -> list[Callback]:
    with session_scope(settings) as s:
        return list(s.exec(select(Callback).order_by(Callback.id)).all())


def test_which_records_are_missed_calls():
    assert missed_kind(row(), closed=False) == "abandoned"
    assert missed_kind(row(outcome="timeout"), closed=False) == "abandoned"
    assert missed_kind(row(outcome="failed"), closed=False) == "abandoned"  # cut off by a fault
    assert missed_kind(row(outcome="answered", seat="1001"), closed=False) is None
    assert missed_kind(row(source="12345"), closed=False) is None  # 12345 follows up itself
    assert missed_kind(row(caller="13912345678"), closed=False) is None  # never the raw caller ID
    assert missed_kind(row(queue="", outcome="ivr"), closed=True) == "closed"
    assert missed_kind(row(outcome="ivr"), closed=True) == "closed"
    assert missed_kind(row(queue="", outcome="ivr"), closed=False) is None


def test_missed_calls_merge_per_number_and_an_answered_call_closes_them(settings):
    w = worker(settings)
    assert w.record_seen(row())
    assert w.record_seen(row(linkedid="100.2"))
    assert w.record_seen(row())  # the same call seen again counts once
    [item] = items(settings)
    assert (item.kind, item.phone, item.queue, item.missed_count, item.status) == (
        "abandoned",
        RESIDENT,
        "hotline",
        2,
        "waiting",
    )
    # Numbers the dial-out policy refuses are no one to call back: nothing is kept.
    assert not w.record_seen(row(caller="+8612345", linkedid="100.3"))
    assert not w.record_seen(row(caller="+861100000000", linkedid="100.4"))
    # The resident called again and a seat answered: the item is done.
    assert w.record_seen(row(linkedid="100.5", outcome="answered", seat="1001"))
    [item] = items(settings)
    assert (item.status, item.outcome) == ("done", "called_again")


def test_records_read_together_keep_their_order(settings):
    w = worker(settings)
    other = "+8613900000002"
    # An answered call before a later missed one leaves that one waiting; answered calls of two
    # numbers after their missed calls close both, in one query.
    assert w.records_seen([row(linkedid="1.1", outcome="answered", seat="1001"), row(linkedid="1.2")])
    assert [(i.phone, i.status) for i in items(settings)] == [(RESIDENT, "waiting")]
    assert w.records_seen([row(caller=other, linkedid="1.3")])
    assert w.records_seen(
        [
            row(linkedid="1.4", outcome="answered", seat="1001"),
            row(caller=other, linkedid="1.5", outcome="answered", seat="1002"),
        ]
    )
    assert [(i.phone, i.status) for i in items(settings)] == [(RESIDENT, "done"), (other, "done")]
    assert not w.records_seen([row(linkedid="1.6", outcome="answered", seat="1001")])


def test_out_of_hours_calls_wait_for_opening_time(settings):
    with session_scope(settings) as s:
        s.add(CallQueue(name="hotline", title="热线"))
        s.add(ServiceNumber(number="96346", title="导航", queue_name="hotline"))
        s.add(ServiceHours(number="96346", schedule="daily", open_time="08:30", close_time="17:30"))
        s.commit()
    night = settings.model_copy(update={"clock": "2026-12-07T22:00:00"})
    w = worker(night)
    assert w.record_seen(row(did="96346", queue="", outcome="ivr"))
    [item] = items(settings)
    assert (item.kind, item.queue, item.did) == ("closed", "hotline", "96346")
    assert w._due() == []  # closed: nobody is called at night
    morning = worker(settings.model_copy(update={"clock": "2026-12-08T08:31:00"}))
    assert [c.id for c in morning._due()] == [item.id]
    off = worker(settings.model_copy(update={"clock": "2026-12-08T08:31:00", "missed_callbacks_auto": False}))
    assert off._due() == []  # listed for the seats, not dialled


def test_the_share_called_back_within_15_minutes(settings):
    now = utcnow()
    with session_scope(settings) as s:
        for i, delay in enumerate((30, 600, 1200, None)):
            s.add(
                Callback(
                    linkedid=f"200.{i}",
                    phone=f"+86139000000{i:02d}",
                    queue="hotline",
                    kind="abandoned",
                    requested_at=now - timedelta(hours=1),
                    first_dialled_at=None
                    if delay is None
                    else now - timedelta(hours=1) + timedelta(seconds=delay),
                )
            )
        s.commit()
        figures = missed_callback_figures(s, now - timedelta(hours=2), now)
    assert figures["missed"] == 4 and figures["called_back"] == 3 and figures["called_back_15min"] == 2
    assert figures["ratio_15min"] == 0.5 and figures["delays_s"] == [30.0, 600.0, 1200.0]


async def test_a_missed_call_no_attempt_reached_becomes_a_seats_task(settings):
    """Every attempt rang the seat, then the resident, who never answered: a seat's task,
    listed with the call back's call record, closed when the resident calls again."""
    one_try = settings.model_copy(update={"callback_attempts": 1, "outbound_contact": "sip:127.0.0.1:5070"})
    w = worker(one_try)
    assert w.record_seen(row())
    [item] = items(settings)
    call = asyncio.create_task(w._call_missed(item, "1001"))
    sent = w.originator.ami.sent
    while not [a for a in sent if a.get("Action") == "Originate"] or item.id not in w._dialled:
        await asyncio.sleep(0.01)
    [originate] = [a for a in sent if a.get("Action") == "Originate"]
    assert originate["Channel"] == "PJSIP/seat1001" and originate["Exten"] == "13912345678"
    assert w.dialled(str(item.id), "NOANSWER")
    await call
    [item] = items(settings)
    assert (item.status, item.outcome, item.attempts, item.seat) == ("task", "noanswer", 1, "1001")
    # The call back's own call record shows on the item.
    with session_scope(settings) as s:
        s.add(
            CallRecord(
                linkedid=item.call_linkedid,
                caller="1001",
                source="internal",
                seat="1001",
                started_at=utcnow(),
                talk_s=0.0,
                outcome="failed",
            )
        )
        s.commit()
    [listed] = [c for c in waiting_callbacks(settings) if c["id"] == item.id]
    assert listed["status"] == "task" and listed["call"]["linkedid"] == item.call_linkedid
    assert listed["call"]["seat"] == "1001" and listed["call"]["outcome"] == "failed"
    assert w._due() == []  # a task is not dialled again
    # The resident calls again and is answered: the task is done.
    assert w.record_seen(row(linkedid="100.9", outcome="answered", seat="1002"))
    [item] = items(settings)
    assert (item.status, item.outcome) == ("done", "called_again")
