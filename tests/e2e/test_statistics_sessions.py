"""A static queue member's login time, pauses and occupancy, and a callback in queue, through
the real Asterisk.

Seat 1007 is a static member of the hotline (queues.conf ``member =>``, as an administrator sets
it up) whose desk phone registers (sipp, digest auth) and later unregisters: Asterisk writes no
login lines for it, the engine does (AMI QueueLog). In between it answers a call, pauses for
training, the app restarts, a caller books a callback (pressing the key once too early) and the
resident is called back and put through to it. Every figure is worked out by hand from the
test's OWN AMI connection (device state and pause events' timestamps, app_queue's TalkTime).
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from sqlmodel import select

from asterisk_conf.render import render_config
from asterisk_conf.sipp import SippUAS, place_call, register_phone
from callcenter.accounts.models import Account, QueueMembership
from callcenter.database import session_scope
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import console_login
from tests.e2e.conftest import OUTSIDE_PORT
from tests.e2e.test_statistics import number, report, seat_row, settle

pytestmark = pytest.mark.e2e

EXT = "1007"
PASSWORD = "pw-seat-1007-static"
PHONE_PORT = 25088 + int(os.environ.get("CC_TEST_PORT_OFFSET", "0"))
LOGIN_TOLERANCE_S = 2.0  # queue_log's whole seconds at both ends, and the engine's reaction


@pytest.fixture(scope="module")
def static_seat(app):
    """Seat 1007, a static member of the hotline with no fixed contact: its phone registers."""
    from asterisk_conf.apply import reload_running
    from callcenter.accounts.service import hash_password

    settings = app.settings
    with session_scope(settings) as s:
        if s.exec(select(Account).where(Account.extension == EXT)).first() is None:
            seat = Account(
                username=f"seat{EXT}",
                display_name="座席王芳",
                password_hash=hash_password(DEMO_PASSWORD),
                role="seat",
                extension=EXT,
            )
            seat.set_sip_password(PASSWORD, settings.sip_realm)
            s.add(seat)
            s.flush()
            s.add(QueueMembership(account_id=seat.id, queue_name="hotline", penalty=0))
            s.commit()
    render_config(settings)
    asyncio.run(reload_running(settings))
    time.sleep(5.5)  # the engine's directory cache (5 s) sees the new seat
    return settings


async def pause(ami, ext: str, paused: bool, reason: str = "") -> None:
    action = {
        "Action": "QueuePause",
        "Interface": f"Local/{ext}@cc-ring-seat/nm",
        "Paused": str(paused).lower(),
    }
    if paused:
        action["Reason"] = reason
    reply = await ami.manager.send_action(action, as_list=False)
    assert reply.success, reply


def member_state(ami, mark: int, unavailable: bool) -> dict:
    """The first QueueMemberStatus of seat 1007 in the hotline after ``mark`` with the phone
    available (any status but 4/5) or not."""
    for e in ami.events[mark:]:
        if (
            e.get("Event") == "QueueMemberStatus"
            and e.get("Interface") == f"Local/{EXT}@cc-ring-seat/nm"
            and e.get("Queue") == "hotline"
            and (e.get("Status") in ("4", "5")) == unavailable
        ):
            return e
    return {}


async def wait_state(ami, mark: int, unavailable: bool, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while not (e := member_state(ami, mark, unavailable)):
        assert time.monotonic() < deadline, "seat 1007's phone state never changed"
        await asyncio.sleep(0.1)
    return e


def pause_seconds(ami, mark: int, reason: str) -> int:
    """Seconds seat 1007 was paused for ``reason`` (whole seconds, as queue_log has them)."""
    evs = [
        e
        for e in ami.events[mark:]
        if e.get("Event") == "QueueMemberPause"
        and e.get("Interface") == f"Local/{EXT}@cc-ring-seat/nm"
        and e.get("Queue") == "hotline"
    ]
    total, since = 0, None
    for e in evs:
        if e.get("Paused") == "1" and e.get("PausedReason") == reason and since is None:
            since = int(float(e["Timestamp"]))
        elif e.get("Paused") == "0" and since is not None:
            total += int(float(e["Timestamp"])) - since
            since = None
    return total


async def test_static_seat_login_occupancy_and_a_callback(static_seat, app, ami):
    settings = app.settings
    supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
    before = await report(supervisor)
    seat_before = await seat_row(supervisor, EXT)
    mark = len(ami.events)
    await pause(ami, "1001", True, "会议")  # calls go to seat 1007 only
    try:
        # The phone registers: the seat is logged in from now.
        reg = await register_phone(settings, f"seat{EXT}", PASSWORD, PHONE_PORT)
        assert reg.ok, reg.output + reg.errors
        async with SippUAS(port=PHONE_PORT, ring_ms=300, talk_ms=4000):
            up = await wait_state(ami, mark, unavailable=False)
            # A call the seat answers (it hangs up after 4 s of talk).
            assert (await place_call(settings, did="96345", caller=number(), hold_ms=15000)).ok
            # Training for ~4 s.
            await pause(ami, EXT, True, "培训")
            await asyncio.sleep(4)
            await pause(ami, EXT, False)
            # The app stops and starts again while the seat is logged in.
            app.stop()
            await asyncio.sleep(3)
            app.start()
            supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
            # In a meeting: a caller waits, presses the callback key too early (back to its
            # place), then again after the offer: booked, and hangs up.
            await pause(ami, EXT, True, "会议")
            try:
                booked = await place_call(
                    settings, did="96345", caller=number(), hold_ms=40000, dtmf=[2500, "1", 7000, "1"]
                )
                assert booked.ok, booked.output
                assert booked.duration < 35  # hung up after the booking
            finally:
                await pause(ami, EXT, False)
            # Free again: the resident is called back and put through to seat 1007.
            async with SippUAS(port=OUTSIDE_PORT, ring_ms=300):
                connect = await ami.wait_for(
                    lambda e: (
                        e.get("Event") == "AgentConnect"
                        and e.get("Channel", "").startswith("PJSIP/cc-outbound-")
                    ),
                    timeout=40,
                )
                assert connect["Interface"] == f"Local/{EXT}@cc-ring-seat/nm"
                # By the call, not one channel: whichever side hangs up first may be gone from
                # Asterisk's AgentComplete (the resident's channel: seen in a CI run; the seat's
                # Local channel, when the seat hangs up first).
                await ami.wait_for(
                    lambda e: (
                        e.get("Event") == "AgentComplete"
                        and connect["Linkedid"] in (e.get("Linkedid"), e.get("DestLinkedid"))
                    ),
                    timeout=30,
                )
                await ami.wait_for("Hangup", Channel=connect["Channel"], timeout=20)
        # The phone unregisters: logged out.
        unreg = await register_phone(settings, f"seat{EXT}", PASSWORD, PHONE_PORT, expires=0)
        assert unreg.ok, unreg.output + unreg.errors
        down = await wait_state(ami, mark, unavailable=True)
    finally:
        await pause(ami, "1001", False)

    # By hand, from the test's own AMI connection.
    login = float(down["Timestamp"]) - float(up["Timestamp"])
    training, meeting = pause_seconds(ami, mark, "培训"), pause_seconds(ami, mark, "会议")
    completes = [
        e
        for e in ami.events[mark:]
        if e.get("Event") == "AgentComplete" and e.get("Interface") == f"Local/{EXT}@cc-ring-seat/nm"
    ]
    assert len(completes) == 2  # the call, and the call back
    talk = sum(int(e["TalkTime"]) for e in completes)
    assert training >= 3 and meeting >= 5 and login > training + meeting + talk

    # The report once the follower has read the logout (login time stops growing).
    deadline = time.time() + 40
    last = None
    while True:
        row = await seat_row(supervisor, EXT)
        if row.get("handled", 0) - seat_before.get("handled", 0) == 2 and row == last:
            break
        assert time.time() < deadline, f"seat {EXT}'s figures never settled: {row}"
        last = row
        await asyncio.sleep(1.5)
    got_login = row["login_s"] - seat_before.get("login_s", 0)
    assert abs(got_login - login) <= LOGIN_TOLERANCE_S, (got_login, login)
    by_reason = {k: v - seat_before["pause_by_reason"].get(k, 0) for k, v in row["pause_by_reason"].items()}
    assert abs(by_reason.get("培训", 0) - training) <= 1 and abs(by_reason.get("会议", 0) - meeting) <= 1
    assert row["talk_s"] - seat_before.get("talk_s", 0) == talk
    # Occupancy = (talk + wrap-up 0) ÷ (login − pause), within what the login tolerance allows.
    paused = row["pause_s"]
    lo = talk / (login + LOGIN_TOLERANCE_S - paused)
    hi = talk / (login - LOGIN_TOLERANCE_S - paused)
    assert seat_before.get("login_s", 0) == 0 and lo - 1e-4 <= row["occupancy"] <= hi + 1e-4, (row, lo, hi)

    # The queue: the answered call and the booking call are offered; the call back is not (it is
    # ours); the booking left by key once although the caller pressed twice, and its callback
    # was requested and connected.
    after = await settle(supervisor, lambda t: t["callbacks_connected"] > before["callbacks_connected"])
    await asyncio.sleep(1.0)
    assert await report(supervisor) == after  # settled: nothing more trickles in
    d = {
        k: after[k] - before[k]
        for k in (
            "offered",
            "answered",
            "abandoned",
            "short_abandoned",
            "exit_key",
            "callbacks",
            "callbacks_requested",
            "callbacks_connected",
            "callbacks_failed",
        )
    }
    assert d == {
        "offered": 2,
        "answered": 1,
        "abandoned": 0,
        "short_abandoned": 0,
        "exit_key": 1,
        "callbacks": 0,
        "callbacks_requested": 1,
        "callbacks_connected": 1,
        "callbacks_failed": 0,
    }
