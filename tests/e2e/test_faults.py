"""Parts that fail under a call, with the real parts: the engine killed with -9 mid-call and
started again, Asterisk killed with -9, the AMI connection cut while Asterisk runs on. What must
hold: the seat's console shows the true state again, and each call has exactly one record with
the right outcome."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from sqlmodel import select

from asterisk_conf import process
from asterisk_conf.sipp import SippUAS, place_call
from callcenter.calls.models import UNSETTLED, CallRecord
from callcenter.database import session_scope
from tests.conftest import free_port
from tests.e2e.conftest import SEAT_PORT, App, CuttableRelay, a_new_call_pops, next_message, seat_console

pytestmark = pytest.mark.e2e


def records(settings, linkedid: str) -> list[CallRecord]:
    with session_scope(settings) as s:
        return list(s.exec(select(CallRecord).where(CallRecord.linkedid == linkedid)).all())


async def wait_records(settings, linkedid: str, timeout: float = 30) -> list[CallRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(records, settings, linkedid)
        if found:
            await asyncio.sleep(1.0)  # a second writer, if there were one, would show by now
            return await asyncio.to_thread(records, settings, linkedid)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no call record for {linkedid}")


async def test_the_engine_killed_mid_call_restores_the_pop_and_records_the_call_once(app, ami):
    settings = app.settings
    _c, ws = await seat_console(app, "seat1001")
    with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=0):
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=25000))
        talking, _ = await next_message(ws, lambda m: m.get("type") == "pop" and m.get("state") == "talking")
        linkedid = talking["linkedid"]
        await ws.close()
        # kill -9: no goodbye, nothing flushed
        assert app.proc is not None
        app.proc.send_signal(signal.SIGKILL)
        app.proc.wait(10)
        app.proc = None
        killed = time.monotonic()
        # While the engine is down another resident calls, waits (the seat is busy) and hangs up.
        assert (await place_call(settings, did="96345", caller="13919310002", hold_ms=3000)).ok
        joined = await ami.wait_for(
            lambda e: e.get("Event") == "QueueCallerJoin" and "13919310002" in e.get("CallerIDNum", "")
        )
        unseen = joined["Linkedid"]
        app.start()
        # The seat's console (reconnecting, as the page does) shows the call it is on.
        _c2, ws2 = await seat_console(app, "seat1001")
        pop, _ = await next_message(
            ws2, lambda m: m.get("type") == "pop" and m.get("linkedid") == linkedid, timeout=30
        )
        assert pop["state"] == "talking" and pop["caller"] == "+8613919310001"
        assert pop["resident"] and pop["resident"]["name"] == "王秀英"
        restored_s = time.monotonic() - killed
        assert (await call).ok
        await next_message(ws2, lambda m: m.get("type") == "clear" and m.get("linkedid") == linkedid)
    [rec] = await wait_records(settings, linkedid)
    assert rec.outcome == "answered" and rec.seat == "1001" and rec.caller == "+8613919310001"
    # The call that began and ended while the engine was down has its record too, from queue_log.
    [missed] = await wait_records(settings, unseen)
    assert (missed.outcome, missed.caller, missed.seat) == ("abandoned", "+8613919310002", "")
    print(f"engine killed → pop restored in {restored_s:.1f} s (including the app's start)")
    await ws2.close()


async def test_asterisk_killed_mid_call_the_console_is_right_and_the_call_is_recorded_as_cut(app, ami):
    settings = app.settings
    _c, ws = await seat_console(app, "seat1001")
    with SippUAS(port=SEAT_PORT, ring_ms=60000, talk_ms=0):
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=60000))
        pop, _ = await next_message(ws, lambda m: m.get("type") == "pop")
        pid = process.status(settings)["pid"]
        assert pid
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(process.stop, settings)  # the pid file of a dead Asterisk
        await asyncio.to_thread(process.start, settings)
        back = time.time()
        _clear, cleared = await next_message(
            ws, lambda m: m.get("type") == "clear" and m.get("linkedid") == pop["linkedid"], timeout=30
        )
        assert cleared - back < 10  # the console is right within seconds of Asterisk's return
        call.cancel()
    # A new call pops: the engine is back on the new Asterisk.
    await a_new_call_pops(settings, ws, pop["linkedid"])
    # The caller did not give up: Asterisk went away. One record, not "abandoned".
    [rec] = await wait_records(settings, pop["linkedid"])
    assert rec.outcome == "failed" and rec.seat == ""
    await ws.close()


async def test_the_ami_connection_cut_while_asterisk_runs_on(app, ami):
    """Call A rings the seat; the engine's AMI connection is cut; the resident hangs up while it
    is down and call B starts ringing the seat. Once AMI is back the console shows B and no
    longer A, and A is recorded once as abandoned (queue_log tells, not the engine's guess)."""
    settings = app.settings
    relay = CuttableRelay(free_port(), settings.ami_port)
    await relay.start()
    app.stop()
    relayed = App(settings.model_copy(update={"ami_port": relay.port}), name="app-ami-relay")
    await asyncio.to_thread(relayed.start)  # the relay serves on this loop meanwhile
    try:
        _c, ws = await seat_console(relayed, "seat1001")
        with SippUAS(port=SEAT_PORT, ring_ms=60000, talk_ms=0):
            call_a = asyncio.create_task(
                place_call(settings, did="96345", caller="13919310001", hold_ms=8000)
            )
            pop_a, _ = await next_message(ws, lambda m: m.get("type") == "pop")
            a = pop_a["linkedid"]
            relay.cut()
            cut_at = time.time()
            # B's resident hangs up by themselves once the console has been checked: a call left
            # ringing the seat would keep it busy for the tests after this one.
            call_b = asyncio.create_task(
                place_call(settings, did="96345", caller="13919310002", hold_ms=16000)
            )
            # While AMI is down (seen on a session of the test's own): A's caller hangs up, B rings.
            hangup = await ami.wait_for(
                lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == a, timeout=30
            )
            called_b = await ami.wait_for(
                lambda e: e.get("Event") == "AgentCalled" and e.get("Linkedid") != a, timeout=30
            )
            b = called_b["Linkedid"]
            assert (await call_a).ok
            assert float(hangup["Timestamp"]) > cut_at
            await relay.restore()
            back = time.time()
            seen: dict[str, float] = {}
            while len(seen) < 2:
                msg, at = await next_message(ws, timeout=30)
                if msg.get("type") == "clear" and msg.get("linkedid") == a:
                    seen["clear_a"] = at
                if msg.get("type") == "pop" and msg.get("linkedid") == b and msg.get("state") == "ringing":
                    seen["pop_b"] = at
            recovered_s = max(seen.values()) - back
            assert recovered_s < 10, seen
            assert (await call_b).ok
        # A: one record, abandoned by the resident (not failed: Asterisk never went away).
        deadline = time.monotonic() + 30
        while True:
            [rec] = await wait_records(settings, a)
            if rec.outcome != UNSETTLED or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert (rec.outcome, rec.seat) == ("abandoned", ""), rec
        assert rec.wait_s is not None and rec.wait_s > 0
        log = relayed.log.read_text()
        assert "AMI connection lost" in log and "Asterisk still up" in log
        print(f"AMI back → console right in {recovered_s:.2f} s (clear of A and pop of B)")
        await ws.close()
    finally:
        relayed.stop()
        relay.close()
        app.start()
