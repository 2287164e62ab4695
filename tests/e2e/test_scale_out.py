"""Scale-out: one engine and two web workers in separate processes, joined by Redis pub/sub.

A seat logged in on either worker gets the pop of a real call that the engine follows.
"""

from __future__ import annotations

import asyncio

import pytest

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.bus import make_bus
from tests.e2e.conftest import SEAT_PORT, App, next_message, seat_console

pytestmark = pytest.mark.e2e


async def test_pops_reach_consoles_on_every_web_worker(app, ami, redis_url):
    base = app.settings.model_copy(update={"redis_url": redis_url})
    engine = App(base, "--no-web", name="engine")
    web_a = App(base.model_copy(update={"web_port": base.web_port + 1}), "--no-engine", name="web-a")
    web_b = App(base.model_copy(update={"web_port": base.web_port + 2}), "--no-engine", name="web-b")
    bus = make_bus(redis_url)
    await bus.start()
    app.stop()  # the single-process app holds the FastAGI port and its own AMI view
    try:
        resynced = bus.subscribe("calls.resync")
        await resynced.ready.wait()
        engine.start()
        await resynced.get(30)  # the engine is logged in to AMI and in step with Asterisk
        web_a.start()
        web_b.start()
        _ca, ws_a = await seat_console(web_a, "seat1001")
        _cb, ws_b = await seat_console(web_b, "seat1001")
        with SippUAS(port=SEAT_PORT, ring_ms=1500, talk_ms=0):
            call = asyncio.create_task(place_call(base, did="96345", caller="13919310001", hold_ms=5000))
            pop_a, _ = await next_message(ws_a, lambda m: m.get("type") == "pop")
            pop_b, _ = await next_message(ws_b, lambda m: m.get("type") == "pop")
            called = await ami.wait_for("AgentCalled", Interface="Local/1001@cc-ring-seat/nm")
            assert pop_a["linkedid"] == pop_b["linkedid"] == called["Linkedid"]
            assert pop_a["caller"] == "+8613919310001"
            await next_message(ws_a, lambda m: m.get("type") == "clear")
            await next_message(ws_b, lambda m: m.get("type") == "clear")
            assert (await call).ok
        await ws_a.close()
        await ws_b.close()
    finally:
        for proc in (web_a, web_b, engine):
            proc.stop()
        await bus.close()
        app.start()
