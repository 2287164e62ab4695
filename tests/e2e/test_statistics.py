"""Statistics through the real Asterisk: known calls in, the report's figures out.

Every figure is worked out by hand from what the test did, and the durations from the test's
OWN AMI connection (app_queue's HoldTime / TalkTime, independent of the app): answered calls
with known talk, abandons after known waits (one under 5 s), a seat phone that refuses (ring-no-
answer), a blind transfer back into the queue, a caller who abandons and is answered later (a
callback), and a call placed while the app is stopped (FastAGI down: the dialplan falls back to
the queue) — the app restarts, resumes queue_log where it stopped, and no figure changes.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import date, timedelta

import httpx
import pytest

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.statistics.service import today
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import console_login, open_console_ws
from tests.e2e.conftest import SEAT_PORT, next_message

pytestmark = pytest.mark.e2e

SL = 15


def days() -> tuple[date, date]:
    """The days around the test's calls: the day before to the day after the test began, so a
    run across midnight in China time (CI runs at any hour) still counts every call placed; the
    figures compared are differences of two reports over the same days."""
    return STARTED - timedelta(days=1), STARTED + timedelta(days=1)


STARTED = date.fromisoformat(today())


async def report(client: httpx.AsyncClient, day: str | None = None) -> dict:
    start, end = (day, day) if day else days()
    r = await client.get(f"/api/stats/report?start={start}&end={end}&by=queue&queue=hotline")
    assert r.status_code == 200, r.text
    return r.json()["total"]


async def settle(client, pred, timeout: float = 40.0) -> dict:
    """The report once the follower has caught up with what Asterisk wrote."""
    deadline = time.time() + timeout
    while True:
        total = await report(client)
        if pred(total):
            return total
        if time.time() > deadline:
            raise AssertionError(f"report never reached the expected figures: {total}")
        await asyncio.sleep(0.3)


async def seat_row(client: httpx.AsyncClient, ext: str) -> dict:
    start, end = days()
    r = await client.get(f"/api/stats/report?start={start}&end={end}&by=seat")
    assert r.status_code == 200, r.text
    rows = [x for x in r.json()["rows"] if x["key"] == ext]
    return rows[0] if rows else {"handled": 0, "talk_s": 0.0, "pause_by_reason": {}}


def number() -> str:
    return f"1390{random.randrange(10**7):07d}"


async def pause(ami, paused: bool) -> None:
    action = {
        "Action": "QueuePause",
        "Interface": "Local/1001@cc-ring-seat/nm",
        "Paused": "true" if paused else "false",
    }
    if paused:
        action["Reason"] = "会议"
    await ami.manager.send_action(action, as_list=False)


async def test_report_equals_the_calls_placed(app, ami):
    settings = app.settings
    supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
    before = await report(supervisor)
    seat_before = await seat_row(supervisor, "1001")
    mark = len(ami.events)
    again = number()  # abandons first, is answered later: a callback

    with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=0):
        # Two answered calls with different talk times.
        assert (await place_call(settings, did="96345", caller=number(), hold_ms=6000)).ok
        assert (await place_call(settings, did="96345", caller=number(), hold_ms=9000)).ok
        # Nobody free: one caller gives up after ~7 s, another within ~3 s (a short abandon; the
        # welcome prompt may take a second longer on a busy machine, the wait stays under 5 s).
        await pause(ami, True)
        await place_call(settings, did="96345", caller=again, hold_ms=8000)
        await place_call(settings, did="96345", caller=number(), hold_ms=4500)
        await pause(ami, False)
        # A blind transfer: the seat sends the caller back to the hotline number; it queues again
        # (the same caller channel: a second record) and the seat answers again.
        seen = {id(e) for e in ami.events}
        call = asyncio.create_task(place_call(settings, did="96345", caller=number(), hold_ms=16000))
        connect = await ami.wait_for(lambda e: e.get("Event") == "AgentConnect" and id(e) not in seen)
        await asyncio.sleep(2)
        reply = await ami.manager.send_action(
            {
                "Action": "BlindTransfer",
                "Channel": connect["DestChannel"],
                "Context": "from-carrier",
                "Exten": "96345",
            },
            as_list=False,
        )
        assert reply.success, reply
        await call

    # A seat phone that refuses (busy): ring-no-answer, and the caller gives up after ~8 s.
    with SippUAS(port=SEAT_PORT, reject_code=486):
        await place_call(settings, did="96345", caller=number(), hold_ms=9000)

    expected_mid = await settle(
        supervisor,
        lambda t: (
            t["short_abandoned"] - before["short_abandoned"] >= 1
            and t["answered"] - before["answered"] >= 4
            and t["abandoned"] - before["abandoned"] >= 2
        ),
    )

    # The app stops; a call comes in meanwhile (the dialplan falls back to the queue without
    # FastAGI) and is answered; the app starts again and must count it exactly once.
    app.stop()
    with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=0):
        assert (await place_call(settings, did="96345", caller=again, hold_ms=6000)).ok
    app.start()
    supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
    after = await settle(supervisor, lambda t: t["answered"] - before["answered"] >= 5)
    await asyncio.sleep(1.0)
    assert await report(supervisor) == after  # settled: nothing more trickles in

    # By hand: what was placed.
    d = {
        k: after[k] - before[k]
        for k in (
            "offered",
            "answered",
            "abandoned",
            "short_abandoned",
            "transfers",
            "callbacks",
            "timeout",
            "exit_key",
        )
    }
    assert d == {
        "offered": 7,
        "answered": 5,
        "abandoned": 2,
        "short_abandoned": 1,
        "transfers": 1,
        "callbacks": 1,
        "timeout": 0,
        "exit_key": 0,
    }
    # Durations from the test's own AMI connection.
    events = [e for e in ami.events[mark:] if e.get("Queue") == "hotline"]
    connects = [e for e in events if e["Event"] == "AgentConnect"]
    completes = [e for e in events if e["Event"] == "AgentComplete"]
    abandons = [e for e in events if e["Event"] == "QueueCallerAbandon"]
    rnas = [e for e in events if e["Event"] == "AgentRingNoAnswer"]
    assert len(connects) == 5 and len(completes) == 5 and len(abandons) == 3 and rnas
    holds = [int(e["HoldTime"]) for e in connects]
    talks = [int(e["TalkTime"]) for e in completes]
    waited = sorted(int(e["HoldTime"]) for e in abandons)
    assert waited[0] < 5 <= waited[1]  # the short abandon, and two real ones
    assert after["rna"] - before["rna"] == len(rnas)
    assert after["wait_answered_s"] == round(before["wait_answered_s"] + sum(holds), 1)
    assert after["talk_s"] == round(before["talk_s"] + sum(talks), 1)
    assert after["answered_in_sl"] - before["answered_in_sl"] == sum(h <= SL for h in holds)
    assert after["abandoned_in_sl"] - before["abandoned_in_sl"] == sum(5 <= w <= SL for w in waited)
    assert after["longest_wait_s"] >= max(holds + waited)
    answered, offered = after["answered"], after["offered"]
    assert after["answered_rate"] == round(answered / offered, 4)
    assert after["asa_s"] == round(after["wait_answered_s"] / answered, 1)
    assert after["service_level"] == round(after["answered_in_sl"] / answered, 4)
    assert after["service_level_with_abandoned"] == round(
        (after["answered_in_sl"] + after["abandoned_in_sl"]) / (answered + after["abandoned"]), 4
    )
    # The figures before the restart were not changed by it (only the new call was added).
    assert (
        after["answered"] - expected_mid["answered"] == 1 and after["abandoned"] == expected_mid["abandoned"]
    )

    # The wallboard shows the same figures as the report of its day (one implementation of
    # each); taken again if midnight in China time fell between the two.
    board = await open_console_ws(app.base_url, supervisor, path="/ws/wallboard")
    while True:
        day = today()
        snap, _ = await next_message(board, lambda m: m.get("type") == "snapshot")
        of_the_day = await report(supervisor, day)
        if today() == day:
            break
    wall = snap["queues"]["hotline"]
    for key in (
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "answered_rate",
        "service_level",
        "service_level_with_abandoned",
        "asa_s",
        "aht_s",
        "transfers",
        "callbacks",
    ):
        assert wall[key] == of_the_day[key], key
    await board.close()

    # Seat 1001: the five calls it answered, its talk time, and the meeting it paused for.
    seat = await seat_row(supervisor, "1001")
    assert seat["handled"] - seat_before["handled"] == 5
    assert seat["talk_s"] == round(seat_before["talk_s"] + sum(talks), 1)
    paused = [
        e for e in ami.events[mark:] if e.get("Event") == "QueueMemberPause" and e.get("Queue") == "hotline"
    ]
    on = next(float(e["Timestamp"]) for e in paused if e.get("Paused") == "1")
    off = next(float(e["Timestamp"]) for e in paused if e.get("Paused") == "0")
    meeting = seat["pause_by_reason"].get("会议", 0) - seat_before["pause_by_reason"].get("会议", 0)
    # queue_log's whole seconds: the line and the event are written a moment apart, and a second
    # boundary may fall between them (PAUSE at …410.99 in queue_log, the event at …411.004).
    assert abs(meeting - (int(off) - int(on))) <= 1, (meeting, on, off)


async def test_attended_transfer_is_counted_once(app, ami):
    """The seat consults another phone (AMI Atxfer, the features code a desk phone would dial),
    then hangs up: the caller is bridged to the target, and the report has one answered call
    with one attended transfer and the seat's talk time up to the transfer."""
    settings = app.settings
    supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
    before = await report(supervisor)
    seen = {id(e) for e in ami.events}
    with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=0):
        call = asyncio.create_task(place_call(settings, did="96345", caller=number(), hold_ms=15000))
        connect = await ami.wait_for(lambda e: e.get("Event") == "AgentConnect" and id(e) not in seen)
        await asyncio.sleep(1)
        reply = await ami.manager.send_action(
            {"Action": "Atxfer", "Channel": connect["DestChannel"], "Exten": "1001", "Context": "seats"},
            as_list=False,
        )
        assert reply.success, reply
        # The consultation (a Local channel into the seats context) reaches the target phone.
        await ami.wait_for(
            lambda e: (
                e.get("Event") == "DialEnd"
                and id(e) not in seen
                and e.get("DialStatus") == "ANSWER"
                and e.get("Channel", "").startswith("Local/1001@seats")
            )
        )
        await asyncio.sleep(1)
        await ami.manager.send_action({"Action": "Hangup", "Channel": connect["DestChannel"]}, as_list=False)
        done = await ami.wait_for(
            lambda e: e.get("Event") == "AttendedTransfer" and id(e) not in seen, timeout=15
        )
        assert done.get("Result") == "Success", done
        await call
    complete = await ami.wait_for(
        lambda e: e.get("Event") == "AgentComplete" and id(e) not in seen and e.get("Queue") == "hotline"
    )
    after = await settle(supervisor, lambda t: t["transfers_attended"] > before["transfers_attended"])
    d = {
        k: after[k] - before[k]
        for k in ("offered", "answered", "abandoned", "transfers", "transfers_attended")
    }
    assert d == {"offered": 1, "answered": 1, "abandoned": 0, "transfers": 1, "transfers_attended": 1}
    assert after["talk_s"] == round(before["talk_s"] + int(complete["TalkTime"]), 1)
    assert after["wait_answered_s"] == round(before["wait_answered_s"] + int(connect["HoldTime"]), 1)
