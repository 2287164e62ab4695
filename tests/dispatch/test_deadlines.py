"""Deadlines in working days across the National Day holiday and its make-up working day, and the
scheduler's 催办 / 督办 with an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from callcenter.config import CHINA_TZ
from callcenter.database import session_scope
from dispatch import deadlines, service, transitions
from dispatch.models import OrderHistory, WorkOrder
from dispatch.scheduler import DeadlineScheduler


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # Wednesday 30 Sept 2026, then 1-7 Oct off: the 1st working day after is Thursday 8 Oct.
        (date(2026, 9, 30), 1, date(2026, 10, 8)),
        # Saturday 10 Oct is a make-up working day (调休上班): it counts.
        (date(2026, 9, 30), 3, date(2026, 10, 10)),
        (date(2026, 9, 30), 4, date(2026, 10, 12)),  # Sunday 11 Oct does not
        (date(2026, 10, 1), 1, date(2026, 10, 8)),  # taken during the holiday
        # Sunday 20 Sept is the other make-up day.
        (date(2026, 9, 18), 1, date(2026, 9, 20)),
        (date(2026, 11, 27), 1, date(2026, 11, 30)),  # an ordinary weekend
    ],
)
def test_add_workdays(start, n, expected):
    assert deadlines.add_workdays(start, n) == expected


def test_deadline_across_national_day():
    # A help request (3 working days) dispatched on 29 Sept 2026 at 15:00 in Lanzhou.
    due, remind = deadlines.deadline(cst(2026, 9, 29, 15, 0), "求助", "normal")
    assert due == cst(2026, 10, 9, 18, 0).astimezone(UTC)  # 30 Sept, 8 Oct, 9 Oct
    assert remind == cst(2026, 10, 8, 18, 0).astimezone(UTC)  # one working day before
    # A complaint (5 working days) on 30 Sept: 8, 9, 10 (make-up Saturday), 12, 13 Oct.
    due, remind = deadlines.deadline(cst(2026, 9, 30, 9, 0), "投诉", "normal")
    assert due == cst(2026, 10, 13, 18, 0).astimezone(UTC)
    assert remind == cst(2026, 10, 12, 18, 0).astimezone(UTC)
    # An inquiry (1 working day) on 30 Sept: due 8 Oct, reminded the evening before the holiday.
    due, remind = deadlines.deadline(cst(2026, 9, 30, 9, 0), "咨询", "normal")
    assert due == cst(2026, 10, 8, 18, 0).astimezone(UTC)
    assert remind == cst(2026, 9, 30, 18, 0).astimezone(UTC)
    # Taken after the close of business: reminded at noon of the last day.
    due, remind = deadlines.deadline(cst(2026, 9, 30, 19, 0), "咨询", "normal")
    assert due == cst(2026, 10, 8, 18, 0).astimezone(UTC)
    assert remind == cst(2026, 10, 8, 12, 0).astimezone(UTC)


def test_urgent_orders_count_hours_even_on_holidays():
    due, remind = deadlines.deadline(cst(2026, 10, 1, 20, 0), "求助", "urgent")
    assert due == cst(2026, 10, 1, 22, 0).astimezone(UTC)
    assert remind == cst(2026, 10, 1, 21, 30).astimezone(UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_scheduler_reminds_then_supervises(settings, world):
    dispatched = cst(2026, 9, 29, 15, 0).astimezone(UTC)
    with session_scope(settings) as s:
        order = service.create_order(
            s,
            world.seat,
            order_type="求助",
            summary="独居老人家中停电",
            category_id=world.cat_elder,
            community_id=world.community,
            resident_id=world.resident,
            now=dispatched,
        )
        transitions.transition(s, order, "派单", world.seat, now=dispatched, outlet_id=world.outlet_a)
        transitions.transition(s, order, "签收", world.outlet, now=dispatched + timedelta(minutes=10))
        s.commit()
        order_id = order.id
    clock = Clock(cst(2026, 10, 5, 12, 0))  # in the holiday: nothing is due yet
    sched = DeadlineScheduler(settings, clock=clock)
    assert sched.tick() == []
    clock.now = cst(2026, 10, 8, 18, 1).astimezone(UTC)  # after the reminder time
    assert [a for _, a in sched.tick()] == ["催办"]
    assert sched.tick() == []  # once
    clock.now = cst(2026, 10, 9, 18, 0, 1).astimezone(UTC)  # past the deadline
    assert [a for _, a in sched.tick()] == ["督办"]
    assert sched.tick() == []
    with session_scope(settings) as s:
        rows = s.exec(select(OrderHistory).where(OrderHistory.order_id == order_id)).all()
        assert [r.action for r in rows] == ["受理", "派单", "签收", "催办", "督办"]
        assert rows[-1].actor == "scheduler" and rows[-1].role == "system"
        o = s.get(WorkOrder, order_id)
        assert o.reminded_at is not None and o.supervised_at is not None


def test_scheduler_skips_resolved_orders(settings, world):
    t0 = cst(2026, 11, 23, 10, 0).astimezone(UTC)
    with session_scope(settings) as s:
        order = service.create_order(s, world.seat, order_type="咨询", summary="问询", now=t0)
        transitions.transition(s, order, "派单", world.seat, now=t0, outlet_id=world.outlet_a)
        transitions.transition(s, order, "签收", world.outlet, now=t0)
        transitions.transition(s, order, "办结", world.outlet, now=t0, note="已答复")
        s.commit()
    sched = DeadlineScheduler(settings, clock=Clock(t0 + timedelta(days=10)))
    assert sched.tick() == []


def test_supervision_texts_the_supervisors(settings, world):
    from sms.models import SmsMessage

    settings.supervisor_phones = ["13900009999"]
    t0 = cst(2026, 11, 23, 10, 0).astimezone(UTC)
    with session_scope(settings) as s:
        order = service.create_order(s, world.seat, order_type="咨询", summary="问询", now=t0)
        transitions.transition(s, order, "派单", world.seat, now=t0, outlet_id=world.outlet_a)
        s.commit()
    assert [a for _, a in DeadlineScheduler(settings, clock=Clock(t0 + timedelta(days=5))).tick()] == ["督办"]
    with session_scope(settings) as s:
        to = [m.to for m in s.exec(select(SmsMessage).where(SmsMessage.order_id == order.id))]
    # The outlet's dispatch and 督办 SMS, and the supervisor's.
    assert to.count("+8613900000001") == 2 and to.count("+8613900009999") == 1
