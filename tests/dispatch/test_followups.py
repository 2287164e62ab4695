"""A resolved order asks for its follow-up call in the same transaction; the keyed rating comes
back as the 回访, by the system, and counts as the order's satisfaction."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.callcontrol.callbacks import finish_task, waiting_callbacks
from callcenter.callcontrol.models import Callback, FollowUp
from callcenter.clock import utcnow
from callcenter.database import session_scope
from callcenter.messages import FollowUpResult
from dispatch import followups, transitions
from dispatch.models import OrderHistory, Status, WorkOrder
from tests.dispatch.test_service import NOW, actor, details, new_order


def resolved(settings, world, phone="+8613912345678") -> str:
    with session_scope(settings) as db:
        order = new_order(db, world, caller_phone=phone)
        for action, who, d in (
            ("派单", "seat", {"outlet": "a"}),
            ("签收", "outlet", {}),
            ("办结", "outlet", {"note": "修好了"}),
        ):
            transitions.transition(db, order, action, actor(world, who), now=NOW, **details(world, d))
        db.commit()
        return order.number


def test_resolving_requests_the_call_and_the_rating_becomes_the_follow_up(settings, world):
    number = resolved(settings, world)
    with session_scope(settings) as s:
        fu = s.exec(select(FollowUp)).one()
        assert (fu.reference, fu.phone, fu.status) == (f"order:{number}", "+8613912345678", "pending")

    assert followups.apply_result(
        settings, FollowUpResult.from_json({"reference": f"order:{number}", "status": "unreachable"})
    ) == ("rating asked by SMS")  # the resident's mobile: the rating is asked for by SMS
    result = {"reference": f"order:{number}", "status": "rated", "rating": 4}
    assert followups.apply_result(settings, FollowUpResult.from_json(result)) == "followed up"
    with session_scope(settings) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).one()
        assert (order.status, order.satisfaction) == (Status.FOLLOWED_UP, "不满意")
        last = s.exec(
            select(OrderHistory).where(OrderHistory.order_id == order.id).order_by(OrderHistory.id.desc())
        ).first()
        assert (last.action, last.actor) == ("回访", "followup-call")
    # A second result (a retried publish) changes nothing.
    assert (
        followups.apply_result(settings, FollowUpResult.from_json({**result, "rating": 1}))
        == "already followed up"
    )
    assert followups.apply_result(
        settings, FollowUpResult.from_json({"reference": "call:1.2", "status": "rated", "rating": 1})
    ) == ("not an order")
    assert followups.apply_result(
        settings, FollowUpResult.from_json({"reference": "order:GD0", "status": "rated", "rating": 1})
    ) == ("no such order")


def test_an_order_without_a_number_to_call_is_resolved_without_a_call(settings, world):
    resolved(settings, world, phone="")
    with session_scope(settings) as s:
        assert s.exec(select(FollowUp)).all() == []


def test_an_order_with_a_number_the_policy_refuses_is_resolved_without_a_call(settings, world):
    # A seat typed it, or Open311 sent any country's number: the order is resolved, nobody is called.
    for phone, reason in (
        ("110", "emergency"),
        ("+882164000000", "international"),
        ("+12125550100", "international"),
    ):
        number = resolved(settings, world, phone=phone)
        with session_scope(settings) as s:
            order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).one()
            hist = s.exec(
                select(OrderHistory).where(OrderHistory.order_id == order.id).order_by(OrderHistory.id.desc())
            ).first()
            assert order.status == Status.RESOLVED and hist.detail["followup_call"] is False
            audit = s.exec(
                select(AuditEntry).where(AuditEntry.action == "dialout.refused", AuditEntry.target == phone)
            ).one()
            assert audit.detail["purpose"] == "followup" and audit.detail["reason"] == reason
    with session_scope(settings) as s:
        assert s.exec(select(FollowUp)).all() == []


def _tasks(settings) -> list[Callback]:
    with session_scope(settings) as s:
        return list(s.exec(select(Callback).where(Callback.kind == "followup").order_by(Callback.id)).all())


def _unreachable_call(settings, number: str, at) -> None:
    """The follow-up worker gave up on the call at ``at`` (every attempt unanswered)."""
    with session_scope(settings) as s:
        fu = s.exec(select(FollowUp).where(FollowUp.reference == f"order:{number}")).one()
        fu.status, fu.attempts, fu.done_at = "unreachable", 3, at
        s.add(fu)
        s.commit()
    assert (
        followups.apply_result(
            settings, FollowUpResult.from_json({"reference": f"order:{number}", "status": "unreachable"})
        )
        != "no such order"
    )


def test_a_follow_up_neither_the_call_nor_the_sms_got_an_answer_to_becomes_a_seats_task(settings, world):
    number = resolved(settings, world)
    gave_up = utcnow()
    _unreachable_call(settings, number, gave_up)  # the rating is asked by SMS: no task yet
    assert _tasks(settings) == []
    wait = timedelta(hours=settings.resident_rating_reply_h)
    assert followups.unanswered_ratings(settings, gave_up + wait - timedelta(minutes=1)) == []
    assert followups.unanswered_ratings(settings, gave_up + wait + timedelta(minutes=1)) == [number]
    # Once: the next sweep finds the task there.
    assert followups.unanswered_ratings(settings, gave_up + wait + timedelta(hours=1)) == []
    [task] = _tasks(settings)
    assert (task.status, task.reference, task.outcome, task.phone) == (
        "task",
        number,
        "no_reply",
        "+8613912345678",
    )
    listed = [c for c in waiting_callbacks(settings) if c["id"] == task.id]
    assert listed and listed[0]["status"] == "task" and listed[0]["reference"] == number
    # A seat calls the resident by hand and records the 回访 on the order: the task is done.
    with session_scope(settings) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).one()
        transitions.transition(
            s, order, "回访", actor(world, "seat"), now=NOW, **details(world, {"satisfaction": "满意"})
        )
        s.commit()
    assert [t.status for t in _tasks(settings)] == ["done"]
    assert not [c for c in waiting_callbacks(settings) if c["id"] == task.id]


def test_no_sms_possible_makes_the_task_at_once_and_a_seat_marks_it_done(settings, world):
    number = resolved(settings, world, phone="+869318123456")  # a landline: no SMS
    _unreachable_call(settings, number, utcnow())
    [task] = _tasks(settings)
    assert (task.status, task.outcome) == ("task", "no_sms")
    with session_scope(settings) as s:
        assert finish_task(s, task.id, "1001", utcnow())
        assert not finish_task(s, task.id, "1001", utcnow())  # done already
        s.commit()
    [task] = _tasks(settings)
    assert (task.status, task.seat) == ("done", "1001")
    assert followups.unanswered_ratings(settings, utcnow() + timedelta(days=3)) == []
