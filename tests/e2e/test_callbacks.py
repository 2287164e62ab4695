"""Callback instead of waiting, and the follow-up call (回访), through the real Asterisk
. The residents' phones are sipp phones behind the outside line."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import select

from asterisk_conf.sipp import SippUAS, place_call
from asterisk_conf.sipp_media import MediaUAS
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
        # today's missed calls already called back, e2e/test_missed_callbacks.py.)
        assert [
            (c["id"], c["phone"], c["status"]) for c in waiting if c["status"] in ("waiting", "calling")
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
