"""Parts that fail under a call, with the real parts: the engine killed with -9 mid-call and
started again, Asterisk killed with -9. What must hold: the seat's console shows the true state
again, and each call has exactly one record with the right outcome."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from sqlmodel import select

from asterisk_conf import process
from asterisk_conf.sipp import SippUAS, place_call
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from tests.e2e.conftest import SEAT_PORT, a_new_call_pops, next_message, seat_console

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
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=20000))
        talking, _ = await next_message(ws, lambda m: m.get("type") == "pop" and m.get("state") == "talking")
        linkedid = talking["linkedid"]
        await ws.close()
        # kill -9: no goodbye, nothing flushed
        assert app.proc is not None
        app.proc.send_signal(signal.SIGKILL)
        app.proc.wait(10)
        app.proc = None
        killed = time.monotonic()
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
