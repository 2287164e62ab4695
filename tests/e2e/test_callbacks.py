"""Callback instead of waiting, and the follow-up call (回访), through the real Asterisk
. The residents' phones are sipp phones behind the outside line."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import select

from asterisk_conf.sipp import SippUAS, place_call
from asterisk_conf.sipp_media import MediaUAS
from callcenter.callcontrol.callbacks import MISSED_KINDS
from callcenter.callcontrol.models import Callback, FollowUp
from callcenter.database import session_scope
from tests.e2e.conftest import OUTSIDE_PORT, SEAT_PORT
from tests.e2e.test_callcontrol import csrf_client, phones  # noqa: F401  (the module fixture)

pytestmark = pytest.mark.e2e


async def wait_row(settings, model, pred, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(settings) as s:
            rows = [r for r in s.exec(select(model)).all() if pred(r)]
        if rows:
            return rows[0]
        await asyncio.sleep(0.3)
    raise AssertionError(f"no {model.__name__} row as expected")


async def pause(ami, paused: bool) -> None:
    await ami.manager.send_action(
        {
            "Action": "QueuePause",
            "Interface": "Local/1001@cc-ring-seat/nm",
            "Paused": "true" if paused else "false",
        },
        as_list=False,
    )


async def test_callback_keeps_the_place_and_connects_the_seat_and_the_resident(phones, app, ami):  # noqa: F811
    settings = phones
    await pause(ami, True)  # no seat free: the caller waits
    try:
        # The offer comes after 5 s of waiting (settings). Pressed after 1 s: too early, the caller
        # goes back into the queue at the same place; pressed again 7 s later: booked.
        joins = len(ami.seen("QueueCallerJoin", Queue="hotline"))
        result = await place_call(
            settings, did="96345", caller="13800001111", hold_ms=40000, dtmf=[2500, "1", 7000, "1"]
        )
        assert result.ok, result.output
        assert result.duration < 35  # the caller hung up after the booking, not after 40 s
        assert len(ami.seen("QueueCallerJoin", Queue="hotline")) == joins + 2
        cb = await wait_row(settings, Callback, lambda r: r.phone == "+8613800001111", timeout=10)
        assert cb.status == "waiting" and cb.queue == "hotline"
        # The seats see it in their list of callbacks waiting.
        seat = await csrf_client(app, "seat1002")
        waiting = (await seat.get("/api/callbacks")).json()
        await seat.aclose()
        # (Refused ones of other tests, e2e/test_dialout.py, are listed too, with their reason, and
        # other tests' missed calls, a kind of their own: e.g. the call cut by test_call_path's
        # Asterisk restart waits to be called back, as the tests call no one back by themselves.)
        assert [
            (c["id"], c["phone"], c["status"])
            for c in waiting
            if c["status"] in ("waiting", "calling") and c["kind"] not in MISSED_KINDS
        ] == [(cb.id, "+8613800001111", "waiting")]
    finally:
        await pause(ami, False)
    # A seat is free now: the resident is called back and put through to it.
    async with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=3000), SippUAS(port=OUTSIDE_PORT, ring_ms=300):
        connect = await ami.wait_for(
            lambda e: (
                e.get("Event") == "AgentConnect" and e.get("Channel", "").startswith("PJSIP/cc-outbound-")
            ),
            timeout=40,
        )
        assert connect["Interface"] == "Local/1001@cc-ring-seat/nm"
        done = await wait_row(settings, Callback, lambda r: r.id == cb.id and r.status == "done", timeout=30)
        assert done.seat == "1001" and done.outcome == "answered" and done.attempts == 1
        await ami.wait_for("Hangup", Channel=connect["Channel"], timeout=20)


async def test_followup_call_stores_the_keyed_rating_or_unreachable(phones, app, ami):  # noqa: F811
    settings = phones
    boss = await csrf_client(app, "supervisor")
    seat = await csrf_client(app, "seat1001")
    r = await seat.post("/api/followups", json={"phone": "13919310001", "reference": "AN20261128-0007"})
    assert r.status_code == 403
    # The resident answers and presses 2 (satisfied) while the question plays.
    async with MediaUAS(port=OUTSIDE_PORT, audio=False, keys=[2500, "2"], ring_ms=300):
        r = await boss.post("/api/followups", json={"phone": "13919310001", "reference": "AN20261128-0007"})
        assert r.status_code == 202
        rated = await wait_row(
            settings, FollowUp, lambda f: f.reference == "AN20261128-0007" and f.status == "rated", timeout=45
        )
    assert rated.rating == 2 and rated.attempts == 1 and rated.phone == "+8613919310001"
    # Nobody answers: tried again (every 2 s here), then unreachable.
    async with SippUAS(port=OUTSIDE_PORT, reject_code=480):
        r = await boss.post("/api/followups", json={"phone": "13919310002", "reference": "AN20261128-0008"})
        assert r.status_code == 202
        gone = await wait_row(
            settings,
            FollowUp,
            lambda f: f.reference == "AN20261128-0008" and f.status == "unreachable",
            timeout=60,
        )
    assert gone.attempts == settings.followup_attempts and gone.rating is None
    await boss.aclose()
    await seat.aclose()


async def test_the_follow_up_chain_from_resolved_to_reopened(phones, app, ami):  # noqa: F811
    """办结 → the follow-up call through the real Asterisk → the resident presses 5 (very
    dissatisfied) → the order's 回访 → listed for the supervisors' 重办 review → 重办: the order is
    back at the outlet with a new deadline."""
    import random

    from callcenter.directory.models import Outlet
    from dispatch import service as dispatch
    from dispatch import transitions
    from dispatch.models import OrderHistory, Status, WorkOrder

    settings = phones
    phone = f"1391931{random.randrange(10**4):04d}"
    with session_scope(settings) as s:
        outlet = s.exec(select(Outlet).where(Outlet.active == True)).first()  # noqa: E712
        assert outlet is not None and outlet.id is not None
        order = dispatch.create_order(
            s, dispatch.Actor("seat1001", "seat"), order_type="求助", summary="楼道灯不亮", caller_phone=phone
        )
        s.flush()
        at_outlet = dispatch.Actor("station", "outlet", outlet.id)
        transitions.transition(s, order, "派单", dispatch.Actor("seat1001", "seat"), outlet_id=outlet.id)
        transitions.transition(s, order, "签收", at_outlet)
        transitions.transition(s, order, "办结", at_outlet, note="已更换灯泡")
        s.commit()
        order_id, number = order.id, order.number
    async with MediaUAS(port=OUTSIDE_PORT, audio=False, keys=[2500, "5"], ring_ms=300):
        called = await wait_row(
            settings, FollowUp, lambda f: f.reference == f"order:{number}" and f.status == "rated", timeout=60
        )
        assert called.rating == 5 and called.phone == "+86" + phone

        def followed_up(o: WorkOrder) -> bool:
            return o.id == order_id and o.status == Status.FOLLOWED_UP

        order = await wait_row(settings, WorkOrder, followed_up, timeout=30)
    assert order.satisfaction == "不满意"
    with session_scope(settings) as s:
        last = s.exec(select(OrderHistory).where(OrderHistory.order_id == order_id)).all()[-1]
        assert last.action == "回访" and last.detail["channel"] == "call" and last.detail["rating"] == 5
    boss = await csrf_client(app, "supervisor")
    try:
        listed = await boss.get("/orders", params={"review": "true", "q": number})
        assert f'data-number="{number}"' in listed.text
        r = await boss.post(f"/orders/{order_id}/action", data={"action": "重办", "note": "居民仍不满意"})
        assert r.status_code == 303, r.text
    finally:
        await boss.aclose()
    with session_scope(settings) as s:
        reopened = s.get(WorkOrder, order_id)
        assert reopened is not None and reopened.status == Status.DISPATCHED
        assert reopened.reopen_count == 1 and reopened.outlet_id == outlet.id and reopened.deadline_at
