"""The order state machine: every transition, allowed and refused, by role and by status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from callcenter.residents.models import ServiceArchive
from dispatch import service, transitions
from dispatch.models import OrderCall, OrderHistory, Status, WorkOrder
from dispatch.service import Actor, DispatchError
from dispatch.transitions import transition

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Lanzhou


def new_order(db, world, order_type="求助", **kw) -> WorkOrder:
    fields = dict(
        order_type=order_type,
        summary="厨房水管漏水",
        category_id=world.cat_water,
        community_id=world.community,
        resident_id=world.resident,
        address="十里店南街1号",
        now=NOW,
    )
    fields.update(kw)
    return service.create_order(db, world.seat, **fields)


# How to bring a fresh order to each status (actions in order).
PATHS: dict[str, list[tuple[str, str, dict]]] = {
    Status.RECEIVED: [],
    Status.DISPATCHED: [("派单", "seat", {"outlet": "a"})],
    Status.ACCEPTED: [("派单", "seat", {"outlet": "a"}), ("签收", "outlet", {})],
    Status.IN_PROGRESS: [
        ("派单", "seat", {"outlet": "a"}),
        ("签收", "outlet", {}),
        ("办理", "outlet", {"note": "已联系"}),
    ],
    Status.RESOLVED: [
        ("派单", "seat", {"outlet": "a"}),
        ("签收", "outlet", {}),
        ("办结", "outlet", {"note": "修好了"}),
    ],
    Status.FOLLOWED_UP: [
        ("派单", "seat", {"outlet": "a"}),
        ("签收", "outlet", {}),
        ("办结", "outlet", {"note": "修好了"}),
        ("回访", "seat", {"satisfaction": "满意"}),
    ],
    Status.RETURNED: [("派单", "seat", {"outlet": "a"}), ("退单", "outlet", {"reason": "不属本站片区"})],
    Status.CLOSED: [("直接答复", "seat", {"note": "已电话答复"})],
}


def actor(world, name: str) -> Actor:
    return {
        "seat": world.seat,
        "supervisor": world.supervisor,
        "admin": Actor("admin", "admin"),
        "outlet": world.outlet,
        "other_outlet": world.other_outlet,
        "system": Actor.system(),
    }[name]


def details(world, d: dict) -> dict:
    d = dict(d)
    if "outlet" in d:
        d["outlet_id"] = {"a": world.outlet_a, "b": world.outlet_b}[d.pop("outlet")]
    return d


def order_in(db, world, status: str, order_type="求助") -> WorkOrder:
    order = new_order(db, world, order_type=order_type)
    at = NOW
    for action, who, d in PATHS[status]:
        at += timedelta(minutes=5)
        transition(db, order, action, actor(world, who), now=at, **details(world, d))
    assert order.status == status
    return order


# (status, action, actor, details, expected status or error code)
CASES = [
    (Status.RECEIVED, "派单", "seat", {"outlet": "a"}, Status.DISPATCHED),
    (Status.RECEIVED, "派单", "supervisor", {"outlet": "b"}, Status.DISPATCHED),
    (Status.RECEIVED, "派单", "outlet", {"outlet": "a"}, "role"),
    (Status.RECEIVED, "派单", "seat", {}, "invalid"),
    (Status.RECEIVED, "直接答复", "seat", {"note": "已答复"}, Status.CLOSED),
    (Status.RECEIVED, "签收", "outlet", {}, "outlet"),  # not dispatched to anyone yet
    (Status.RECEIVED, "并单", "seat", {}, "invalid"),
    (Status.DISPATCHED, "签收", "outlet", {}, Status.ACCEPTED),
    (Status.DISPATCHED, "签收", "other_outlet", {}, "outlet"),
    (Status.DISPATCHED, "签收", "seat", {}, "role"),
    (Status.DISPATCHED, "退单", "outlet", {"reason": "不属本站"}, Status.RETURNED),
    (Status.DISPATCHED, "退单", "outlet", {}, "invalid"),
    (Status.DISPATCHED, "办结", "outlet", {"note": "x"}, "state"),
    (Status.DISPATCHED, "改派", "seat", {"outlet": "b"}, Status.DISPATCHED),
    (Status.DISPATCHED, "改派", "seat", {"outlet": "a"}, "invalid"),  # to the same outlet
    (Status.DISPATCHED, "催办", "seat", {}, Status.DISPATCHED),
    (Status.DISPATCHED, "催办", "system", {}, Status.DISPATCHED),
    (Status.DISPATCHED, "催办", "outlet", {}, "role"),
    (Status.DISPATCHED, "督办", "supervisor", {}, Status.DISPATCHED),
    (Status.DISPATCHED, "督办", "system", {}, Status.DISPATCHED),
    (Status.DISPATCHED, "督办", "seat", {}, "role"),
    (Status.DISPATCHED, "直接答复", "seat", {}, "state"),
    (Status.ACCEPTED, "进度", "outlet", {"note": "已上门"}, Status.IN_PROGRESS),
    (Status.ACCEPTED, "办理", "outlet", {}, "invalid"),
    (Status.ACCEPTED, "办结", "outlet", {"note": "已修复"}, Status.RESOLVED),
    (Status.ACCEPTED, "办结", "other_outlet", {"note": "x"}, "outlet"),
    (Status.ACCEPTED, "签收", "outlet", {}, "state"),
    (Status.ACCEPTED, "退单", "outlet", {"reason": "无法办理"}, Status.RETURNED),
    (Status.IN_PROGRESS, "办结", "outlet", {"note": "已修复"}, Status.RESOLVED),
    (Status.IN_PROGRESS, "退单", "outlet", {"reason": "x"}, "state"),
    (Status.IN_PROGRESS, "办结", "supervisor", {"note": "x"}, "role"),
    (Status.RESOLVED, "回访", "seat", {"satisfaction": "满意"}, Status.FOLLOWED_UP),
    (Status.RESOLVED, "回访", "seat", {"satisfaction": "还行"}, "invalid"),
    (Status.RESOLVED, "回访", "outlet", {"satisfaction": "满意"}, "role"),
    (Status.RESOLVED, "归档", "seat", {}, "state"),
    (Status.FOLLOWED_UP, "归档", "seat", {}, Status.CLOSED),
    (Status.FOLLOWED_UP, "归档", "outlet", {}, "role"),
    (Status.FOLLOWED_UP, "重办", "seat", {}, "state"),  # the follow-up was satisfied
    (Status.FOLLOWED_UP, "审核", "supervisor", {}, "state"),  # not a complaint
    (Status.RETURNED, "改派", "seat", {"outlet": "b"}, Status.DISPATCHED),
    (Status.RETURNED, "签收", "outlet", {}, "state"),
    (Status.RETURNED, "督办", "supervisor", {}, Status.RETURNED),
    (Status.CLOSED, "派单", "seat", {"outlet": "a"}, "state"),
    (Status.CLOSED, "并单", "seat", {}, "state"),
    (Status.CLOSED, "回访", "seat", {"satisfaction": "满意"}, "state"),
]


@pytest.mark.parametrize(("status", "action", "who", "d", "expected"), CASES)
def test_transition_table(db, world, status, action, who, d, expected):
    order = order_in(db, world, status)
    before = len(service.history(db, order.id))
    if expected in ("role", "state", "outlet", "invalid"):
        with pytest.raises(DispatchError) as err:
            transition(
                db, order, action, actor(world, who), now=NOW + timedelta(hours=1), **details(world, d)
            )
        assert err.value.code == expected, str(err.value)
        assert str(err.value)  # a clear message
        assert order.status == status
        assert len(service.history(db, order.id)) == before
    else:
        transition(db, order, action, actor(world, who), now=NOW + timedelta(hours=1), **details(world, d))
        assert order.status == expected
        rows = service.history(db, order.id)
        assert len(rows) == before + 1
        last = rows[-1]
        assert last.action == transitions.canonical_action(action)
        assert (last.from_status, last.to_status) == (status, expected)
        assert last.actor == actor(world, who).username and last.role == actor(world, who).role


def test_create_order_numbers_codes_call_and_suggestion(db, world):
    a = new_order(db, world, call_linkedid="1764300000.12")
    b = new_order(db, world, category_id=world.cat_elder)
    db.commit()
    assert a.number == "GD20261123-00001" and b.number == "GD20261123-00002"
    assert a.short_code.isdigit() and 4 <= len(a.short_code) <= 6 and a.short_code != b.short_code
    assert service.find_by_short_code(db, a.short_code).id == a.id
    assert service.find_by_short_code(db, "12ab") is None
    assert db.exec(select(OrderCall.linkedid).where(OrderCall.order_id == a.id)).all() == ["1764300000.12"]
    assert a.suggested_outlet_id == world.supplier  # water repairs in the area: the supplier
    assert b.suggested_outlet_id == world.outlet_a  # other life services: the community's outlet
    assert b.repeat_of_id is None  # another category
    c = new_order(db, world)
    assert c.repeat_of_id == a.id  # same resident, same category, a is still open
    first = service.history(db, a.id)[0]
    assert (first.action, first.to_status, first.actor) == ("受理", Status.RECEIVED, "seat1001")


def test_create_refuses_bad_input(db, world):
    with pytest.raises(DispatchError):
        new_order(db, world, order_type="闲聊")
    with pytest.raises(DispatchError):
        new_order(db, world, summary="   ")
    with pytest.raises(DispatchError):
        new_order(db, world, call_linkedid="1; DROP")
    with pytest.raises(DispatchError) as err:
        service.create_order(db, world.outlet, order_type="求助", summary="x")
    assert err.value.code == "role"


def test_short_code_released_when_closed(db, world):
    order = order_in(db, world, Status.CLOSED)
    assert order.open_code is None and order.short_code
    assert service.find_by_short_code(db, order.short_code) is None


def test_complaint_needs_supervisor_review_before_closing(db, world):
    order = order_in(db, world, Status.FOLLOWED_UP, order_type="投诉")
    with pytest.raises(DispatchError) as err:
        transition(db, order, "归档", world.seat, now=NOW + timedelta(days=1))
    assert err.value.code == "state" and "review" in str(err.value)
    with pytest.raises(DispatchError) as err:
        transition(db, order, "审核", world.seat, now=NOW + timedelta(days=1))
    assert err.value.code == "role"
    transition(db, order, "审核", world.supervisor, now=NOW + timedelta(days=1), note="处理得当")
    assert order.reviewed and order.status == Status.FOLLOWED_UP
    transition(db, order, "归档", world.seat, now=NOW + timedelta(days=1))
    assert order.status == Status.CLOSED
    fresh = new_order(db, world, order_type="投诉")
    with pytest.raises(DispatchError):
        transition(db, fresh, "直接答复", world.seat, now=NOW)


def test_dissatisfied_follow_up_reopens(db, world):
    order = order_in(db, world, Status.RESOLVED)
    transition(
        db, order, "回访", world.seat, now=NOW + timedelta(days=1), satisfaction="不满意", note="仍漏水"
    )
    with pytest.raises(DispatchError) as err:
        transition(db, order, "归档", world.seat, now=NOW + timedelta(days=1))
    assert err.value.code == "role"
    transition(db, order, "重办", world.seat, now=NOW + timedelta(days=1), note="再次上门")
    assert order.status == Status.DISPATCHED and order.reopen_count == 1 and order.outlet_id == world.outlet_a
    assert order.satisfaction == "" and order.deadline_at is not None


def test_resolving_writes_the_service_archive(db, world):
    order = order_in(db, world, Status.RESOLVED)
    db.commit()
    rows = db.exec(select(ServiceArchive).where(ServiceArchive.resident_id == world.resident)).all()
    assert len(rows) == 1
    assert rows[0].order_id == order.id and rows[0].outlet_name == "十里店社区服务站"
    assert rows[0].outcome == "修好了" and "水电维修" in rows[0].service


def test_extension_requested_and_approved_before_the_deadline(db, world):
    order = order_in(db, world, Status.ACCEPTED)
    deadline = order.deadline_at
    later = deadline + timedelta(days=3)
    with pytest.raises(DispatchError):
        transition(db, order, "延期审批", world.supervisor, now=NOW + timedelta(hours=1), approve=True)
    with pytest.raises(DispatchError):  # no reason
        transition(db, order, "延期", world.outlet, now=NOW + timedelta(hours=1), until=later)
    transition(
        db, order, "延期申请", world.outlet, now=NOW + timedelta(hours=1), until=later, reason="等配件"
    )
    assert order.extension_requested_until == later
    with pytest.raises(DispatchError) as err:
        transition(db, order, "延期审批", world.seat, now=NOW + timedelta(hours=2), approve=True)
    assert err.value.code == "role"
    transition(db, order, "延期审批", world.supervisor, now=NOW + timedelta(hours=2), approve=True)
    assert order.deadline_at == later and order.extension_requested_until is None
    # After the (new) deadline no extension can be asked for.
    with pytest.raises(DispatchError) as err:
        transition(
            db,
            order,
            "延期",
            world.outlet,
            now=later + timedelta(minutes=1),
            until=later + timedelta(days=1),
            reason="x",
        )
    assert err.value.code == "state"


def test_extension_not_approved_after_the_deadline(db, world):
    order = order_in(db, world, Status.ACCEPTED)
    deadline = order.deadline_at
    transition(db, order, "延期", world.outlet, now=NOW, until=deadline + timedelta(days=2), reason="等配件")
    with pytest.raises(DispatchError) as err:
        transition(db, order, "延期审批", world.supervisor, now=deadline + timedelta(seconds=1), approve=True)
    assert err.value.code == "state"
    assert order.deadline_at == deadline


def test_merge_repeat_orders(db, world):
    first = order_in(db, world, Status.DISPATCHED)
    repeat = new_order(db, world, now=NOW + timedelta(hours=2))
    assert repeat.repeat_of_id == first.id
    transition(db, repeat, "并单", world.seat, now=NOW + timedelta(hours=2), into=first.number)
    assert repeat.status == Status.MERGED and repeat.merged_into_id == first.id and repeat.open_code is None
    main_rows = service.history(db, first.id)
    assert main_rows[-1].action == "并单" and repeat.number in main_rows[-1].note
    closed = order_in(db, world, Status.CLOSED)
    other = new_order(db, world)
    with pytest.raises(DispatchError):
        transition(db, other, "并单", world.seat, into=closed.number)


def test_allowed_actions_by_role(db, world):
    order = order_in(db, world, Status.DISPATCHED)
    assert set(transitions.allowed_actions(order, world.outlet, NOW)) == {"签收", "退单", "延期"}
    assert transitions.allowed_actions(order, world.other_outlet, NOW) == []
    assert "督办" in transitions.allowed_actions(order, world.supervisor, NOW)
    assert "督办" not in transitions.allowed_actions(order, world.seat, NOW)


def test_history_is_recorded_with_who_and_when(db, world):
    order = order_in(db, world, Status.FOLLOWED_UP)
    transition(db, order, "归档", world.seat, now=NOW + timedelta(days=2))
    db.commit()
    rows = db.exec(
        select(OrderHistory).where(OrderHistory.order_id == order.id).order_by(OrderHistory.id)
    ).all()
    assert [r.action for r in rows] == ["受理", "派单", "签收", "办结", "回访", "归档"]
    assert [r.actor for r in rows] == ["seat1001", "seat1001", "outlet-a", "outlet-a", "seat1001", "seat1001"]
    assert all(r.at is not None for r in rows)
    assert rows[1].detail["outlet"] == "十里店社区服务站"


def test_concurrent_seats_get_distinct_numbers_and_codes(settings, world):
    import threading

    from callcenter.database import session_scope

    made: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def seat(k: int) -> None:
        try:
            for i in range(15):
                with session_scope(settings) as s:
                    o = service.create_order(s, world.seat, order_type="咨询", summary=f"seat {k} order {i}")
                    s.commit()
                    made.append((o.number, o.short_code))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=seat, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(made) == 60
    assert len({n for n, _ in made}) == 60 and len({c for _, c in made}) == 60


def test_odd_extension_dates_and_merge_targets_are_refused(db, world):
    order = order_in(db, world, Status.ACCEPTED)
    for until in (
        "9999-12-31T00:00:00+00:00",
        datetime(9999, 12, 31, tzinfo=UTC),
        order.deadline_at + transitions.MAX_EXTENSION + timedelta(days=1),
    ):
        with pytest.raises(DispatchError):
            transition(db, order, "延期申请", world.outlet, now=NOW, until=until, reason="等配件")
    repeat = new_order(db, world)
    for into in ("²", "١٢", "9" * 5000, 10**30, -1, True):
        with pytest.raises(DispatchError):
            transition(db, repeat, "并单", world.seat, now=NOW, into=into)


def test_a_lost_database_connection_fails_the_order_change_whole(db, world, monkeypatch, caplog):
    """A side effect that fails on its own (the grid/approval record) is logged and the change
    stands; one that fails because the connection to the database is lost fails the change, so
    the person gets the database's 503 instead of the next statement's 500."""
    from sqlalchemy.exc import OperationalError

    from dispatch import notices

    order = new_order(db, world)
    db.commit()

    def refused(*_args, **_kw):
        raise ValueError("a template problem")

    monkeypatch.setattr(notices, "sync_order", refused)
    transition(db, order, "派单", world.seat, now=NOW + timedelta(minutes=5), outlet_id=world.outlet_a)
    assert order.status == Status.DISPATCHED
    assert "grid/approval record" in caplog.text
    db.rollback()

    def lost(*_args, **_kw):
        raise OperationalError("UPDATE grid_event", {}, Exception("server closed the connection"))

    monkeypatch.setattr(notices, "sync_order", lost)
    with pytest.raises(OperationalError):
        transition(db, order, "派单", world.seat, now=NOW + timedelta(minutes=5), outlet_id=world.outlet_a)


RESIDENT_MOBILE = "+8613919310001"


def resident_sms(db, order: WorkOrder) -> list:
    from sms.models import SmsMessage

    db.flush()
    query = select(SmsMessage).where(SmsMessage.order_id == order.id, SmsMessage.to == RESIDENT_MOBILE)
    return list(db.exec(query.order_by(SmsMessage.id)))


def taken_and_dispatched(db, world, settings, **fields) -> WorkOrder:
    """A resident's leak, taken and dispatched to outlet A in one request."""
    from dispatch import flows

    return flows.create_and_dispatch(
        db,
        settings,
        world.seat,
        world.outlet_a,
        order_type="求助",
        summary="厨房水管漏水",
        caller_phone=RESIDENT_MOBILE,
        **fields,
    )


def test_taken_and_dispatched_at_once_the_resident_gets_one_sms_once(db, world, settings):
    from dispatch import notices

    order = taken_and_dispatched(db, world, settings, category_id=world.cat_water, now=NOW)
    assert order.status == Status.DISPATCHED and order.outlet_id == world.outlet_a
    received, dispatched = service.history(db, order.id)
    assert (received.action, dispatched.action) == ("受理", "派单")
    [sms] = resident_sms(db, order)
    assert "已受理并交承办单位办理" in sms.body and order.number in sms.body
    assert f"查询码{order.query_code}" in sms.body
    # Keyed by the 派单's history row, as each of the resident's messages is by its change: queued
    # again (a retried notice), it is still the one message.
    assert sms.idempotency_key == f"order:{order.id}:{dispatched.id}:resident"
    notices.order_changed(db, settings, order, dispatched, with_receipt=True)
    assert [m.id for m in resident_sms(db, order)] == [sms.id]


def test_taken_then_dispatched_the_resident_gets_the_receipt_then_the_notice(db, world, settings):
    order = new_order(db, world, caller_phone=RESIDENT_MOBILE)
    transition(db, order, "派单", world.seat, now=NOW, settings=settings, outlet_id=world.outlet_a)
    received, dispatched = service.history(db, order.id)
    receipt, notice = resident_sms(db, order)
    assert "已受理" in receipt.body and "承办单位" not in receipt.body and order.number in receipt.body
    assert "已交承办单位办理" in notice.body and order.number in notice.body
    assert receipt.idempotency_key == f"order:{order.id}:{received.id}:resident"
    assert notice.idempotency_key == f"order:{order.id}:{dispatched.id}:resident"


def test_taken_and_dispatched_at_once_to_a_number_that_replied_td_the_receipt_only(db, world, settings):
    from sms.service import opt_out

    opt_out(db, RESIDENT_MOBILE)
    order = taken_and_dispatched(db, world, settings)
    [sms] = resident_sms(db, order)
    assert "已受理" in sms.body and "承办单位" not in sms.body and order.query_code in sms.body


def test_only_a_dispatch_carries_the_receipt(db, world):
    order = new_order(db, world, caller_phone=RESIDENT_MOBILE)
    with pytest.raises(ValueError):
        transition(db, order, "直接答复", world.seat, now=NOW, with_receipt=True, note="已电话答复")
