"""Residents' SMS through the Twilio stand-in: the receipt with the order number and query code,
progress notices, the rating by reply that becomes the 回访, 退订, and the follow-up call's
fallback to an SMS."""

from __future__ import annotations

import asyncio
import re

from sqlmodel import select

from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.mail import MailMessage
from callcenter.messages import FollowUpResult
from dispatch import flows, message_templates, transitions
from dispatch import service as dispatch
from dispatch.categories import Editor
from dispatch.followups import apply_result
from dispatch.models import OrderHistory, Status, WorkOrder
from dispatch.queries import OrderFilters, count_reopen_review, list_orders
from sms.models import SmsOptOut
from sms.service import OutboxWorker
from tests.sms.conftest import OUTLET_PHONE

RESIDENT = "+8613800138000"
LANDLINE = "+869318123456"


async def _drain(settings: Settings) -> None:
    worker = OutboxWorker(settings)
    for _ in range(3):
        await worker.run_once()


def _order(settings: Settings, caller: str, outlet_id: int, steps: tuple[str, ...] = ()) -> int:
    seat = dispatch.Actor("seat1001", "seat")
    with session_scope(settings) as s:
        o = dispatch.create_order(s, seat, order_type="求助", summary="楼道灯不亮", caller_phone=caller)
        s.flush()
        for step in steps:
            extra = {"outlet_id": outlet_id} if step == "派单" else {"note": "已更换灯泡"}
            actor = (
                dispatch.Actor("seat1001", "seat")
                if step == "派单"
                else dispatch.Actor("o", "outlet", outlet_id)
            )
            transitions.transition(s, o, step, actor, settings=settings, **extra)
        s.commit()
        assert o.id is not None
        return o.id


def _get(order_id: int) -> WorkOrder:
    with session_scope() as s:
        order = s.get(WorkOrder, order_id)
        assert order is not None
        return order


async def _reply(twilio, base: str, sender: str, body: str):
    return await asyncio.to_thread(twilio.inbound, base + "/sms/twilio/inbound", sender, body)


async def test_receipt_and_progress_notices(twilio, world, msettings):
    order_id = _order(msettings, "13800138000", world.outlet, ("派单", "签收", "办结"))
    await _drain(msettings)
    order = _get(order_id)
    bodies = [m.body for m in twilio.to(RESIDENT)]
    assert len(bodies) == 3, bodies
    # (the outbox sends in any order)
    [receipt] = [b for b in bodies if "已受理" in b]
    [dispatched] = [b for b in bodies if "已交承办单位" in b]
    [resolved] = [b for b in bodies if "已办结" in b]
    assert re.fullmatch(r"[0-9]{6}", order.query_code)
    assert order.number in receipt and f"查询码{order.query_code}" in receipt
    # The fixed, registered page address survives the domestic rule that strips links.
    assert msettings.resident_page() in receipt and msettings.resident_page().endswith("/q")
    assert "已交承办单位" in dispatched and order.number in dispatched
    assert "已办结" in resolved and "TD" in resolved
    # Nothing of the matter or the outlet goes to the resident's phone.
    assert not any("楼道灯" in b or "服务站" in b for b in bodies)
    # Landline callers get no SMS (the order is taken all the same).
    _order(msettings, LANDLINE, world.outlet, ("派单",))
    await _drain(msettings)
    assert twilio.to(LANDLINE) == []


def _order_dispatched_at_once(settings: Settings, caller: str, outlet_id: int) -> int:
    """受理 and 派单 in one request, as the console's order form with an outlet chosen."""
    seat = dispatch.Actor("seat1001", "seat")
    with session_scope(settings) as s:
        o = flows.create_and_dispatch(
            s, settings, seat, outlet_id, order_type="求助", summary="楼道灯不亮", caller_phone=caller
        )
        s.commit()
        assert o.id is not None
        return o.id


async def test_taken_and_dispatched_at_once_one_sms(twilio, world, msettings):
    order_id = _order_dispatched_at_once(msettings, "13800138000", world.outlet)
    await _drain(msettings)
    order = _get(order_id)
    [sms] = [m.body for m in twilio.to(RESIDENT)]
    assert "已受理并交承办单位办理" in sms and order.number in sms and f"查询码{order.query_code}" in sms
    assert msettings.resident_page() in sms and "TD" in sms
    assert "楼道灯" not in sms and "服务站" not in sms
    assert [m for m in twilio.to(OUTLET_PHONE) if order.number in m.body]


async def test_an_administrators_text_is_what_the_resident_receives(twilio, world, msettings):
    with session_scope(msettings) as s:
        message_templates.save(
            s,
            Editor("admin", "admin"),
            "resident_receipt",
            {"body": "{signature}已收到，单号{number}，查询码{code}，进度请看{page}"},
        )
        s.commit()
    try:
        order_id = _order(msettings, RESIDENT, world.outlet)
        await _drain(msettings)
        order = _get(order_id)
        [receipt] = [m.body for m in twilio.to(RESIDENT) if order.number in m.body]
        assert (
            f"已收到，单号{order.number}，查询码{order.query_code}，进度请看{msettings.resident_page()}"
            in receipt
        )
    finally:
        with session_scope(msettings) as s:
            message_templates.reset(s, Editor("admin", "admin"), "resident_receipt")
            s.commit()


async def test_rating_by_reply_becomes_the_follow_up(twilio, world, msettings, live_app):
    order_id = _order(msettings, RESIDENT, world.outlet, ("派单", "签收", "办结"))
    r = await _reply(twilio, live_app, "13800138000", "２")  # a full-width digit from a phone keyboard
    assert r.status_code == 200 and "感谢" in r.text
    order = _get(order_id)
    assert order.status == Status.FOLLOWED_UP and order.satisfaction == "满意"
    with session_scope() as s:
        last = s.exec(select(OrderHistory).where(OrderHistory.order_id == order_id)).all()[-1]
    assert last.action == "回访" and last.detail["channel"] == "sms" and last.detail["rating"] == 2
    # A second digit finds nothing left to rate; other text is not a rating.
    r = await _reply(twilio, live_app, RESIDENT, "5")
    assert "未找到" in r.text and _get(order_id).satisfaction == "满意"
    # Other text from a resident is no outlet's command: no answer (each reply is a paid SMS).
    r = await _reply(twilio, live_app, RESIDENT, "12")
    assert "<Message" not in r.text and _get(order_id).satisfaction == "满意"


async def test_dissatisfied_reply_goes_to_review(twilio, world, msettings, live_app):
    msettings.supervisor_emails = ["duty@example.org", "not an address"]
    order_id = _order(msettings, RESIDENT, world.outlet, ("派单", "签收", "办结"))
    await _reply(twilio, live_app, RESIDENT, "5")
    order = _get(order_id)
    assert order.status == Status.FOLLOWED_UP and order.satisfaction == "不满意"
    # The supervisors hear of it, and the orders page lists it as awaiting 重办 review.
    with session_scope() as s:
        mails = s.exec(select(MailMessage).where(MailMessage.order_id == order_id)).all()
        review = [m for m in mails if m.idempotency_key.endswith(":review")]
        assert len(review) == 1 and review[0].to == ["duty@example.org"]
        assert "重办审核" in review[0].subject and "非常不满意，短信回复" in review[0].text
        listed = list_orders(s, OrderFilters(reopen_review=True))
        assert [o.id for o in listed.orders] == [order_id] and count_reopen_review(s) == 1
    # A supervisor decides: re-handling (重办) sends it back to the outlet.
    with session_scope() as s:
        o = s.get(WorkOrder, order_id)
        transitions.transition(
            s, o, "重办", dispatch.Actor("sup", "supervisor"), note="居民不满意", settings=msettings
        )
        s.commit()
    assert _get(order_id).status == Status.DISPATCHED
    with session_scope() as s:
        assert count_reopen_review(s) == 0


async def test_unsubscribe_stops_progress_but_not_the_receipt(twilio, world, msettings, live_app):
    r = await _reply(twilio, live_app, RESIDENT, "退订")
    assert "已退订" in r.text
    r = await _reply(twilio, live_app, RESIDENT, "td")
    with session_scope() as s:
        assert s.get(SmsOptOut, RESIDENT) is not None
    order_id = _order(msettings, RESIDENT, world.outlet, ("派单", "签收", "办结"))
    await _drain(msettings)
    bodies = [m.body for m in twilio.to(RESIDENT)]
    assert len(bodies) == 1 and _get(order_id).query_code in bodies[0]
    # The follow-up call found no one and no SMS may be sent: it is a seat's task.
    outcome = apply_result(
        msettings, FollowUpResult(f"order:{_get(order_id).number}", "unreachable", None, 3)
    )
    assert outcome == "unreachable: for a seat" and _get(order_id).status == Status.RESOLVED


async def test_unanswered_follow_up_call_asks_by_sms_and_the_reply_completes_it(
    twilio, world, msettings, live_app
):
    order_id = _order(msettings, RESIDENT, world.outlet, ("派单", "签收", "办结"))
    number = _get(order_id).number
    assert (
        apply_result(msettings, FollowUpResult(f"order:{number}", "unreachable", None, 3))
        == "rating asked by SMS"
    )
    await _drain(msettings)
    [ask] = [m.body for m in twilio.to(RESIDENT) if "回访" in m.body]
    assert number in ask and "1非常满意" in ask and "回复TD退订" in ask
    await _reply(twilio, live_app, RESIDENT, "1")
    assert _get(order_id).status == Status.FOLLOWED_UP and _get(order_id).satisfaction == "满意"
