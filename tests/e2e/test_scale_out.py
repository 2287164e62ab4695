"""Scale-out: one engine and two web workers in separate processes, joined by Redis pub/sub.

A seat logged in on either worker gets the pop of a real call that the engine follows.
"""

from __future__ import annotations

import asyncio

import pytest

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.bus import make_bus
from tests.conftest import RedisServer
from tests.e2e.conftest import SEAT_PORT, App, next_message, seat_console
from tests.e2e.test_faults import wait_records

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


async def test_pops_reach_every_web_worker_again_once_redis_is_back(app, ami, tmp_path):
    """Redis restarted under an engine and two web workers: once it is back, the next call pops
    on both workers' consoles (their bus connections come back by themselves)."""
    redis = RedisServer(tmp_path / "redis").start()
    base = app.settings.model_copy(update={"redis_url": redis.url})
    engine = App(base, "--no-web", name="engine-r")
    web_a = App(base.model_copy(update={"web_port": base.web_port + 1}), "--no-engine", name="web-a-r")
    web_b = App(base.model_copy(update={"web_port": base.web_port + 2}), "--no-engine", name="web-b-r")
    bus = make_bus(redis.url)
    await bus.start()
    app.stop()
    try:
        resynced = bus.subscribe("calls.resync")
        await resynced.ready.wait()
        engine.start()
        await resynced.get(30)
        await bus.close()
        web_a.start()
        web_b.start()
        _ca, ws_a = await seat_console(web_a, "seat1001")
        _cb, ws_b = await seat_console(web_b, "seat1001")

        async def both_pop(timeout: float) -> None:
            with SippUAS(port=SEAT_PORT, ring_ms=1500, talk_ms=0):
                call = asyncio.create_task(place_call(base, did="96345", caller="13919310001", hold_ms=4000))
                pop_a, _ = await next_message(ws_a, lambda m: m.get("type") == "pop", timeout=timeout)
                pop_b, _ = await next_message(ws_b, lambda m: m.get("type") == "pop", timeout=timeout)
                assert pop_a["linkedid"] == pop_b["linkedid"]
                await next_message(ws_a, lambda m: m.get("type") == "clear")
                await next_message(ws_b, lambda m: m.get("type") == "clear")
                assert (await call).ok

        await both_pop(30)
        # A call answered before Redis stops and ended while it is down: the engine cannot tell
        # the pages, yet the call's record is written, once.
        with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=0):
            call = asyncio.create_task(place_call(base, did="96345", caller="13919310002", hold_ms=3000))
            connect = await ami.wait_for(
                lambda e: e.get("Event") == "AgentConnect" and "13919310002" in e.get("CallerIDNum", "")
            )
            redis.stop()
            await ami.wait_for("Hangup", Uniqueid=connect["Linkedid"], timeout=20)
            assert (await call).ok
        await asyncio.sleep(2)  # the workers notice: their reads fail and retry
        redis.start()
        rows = await wait_records(base, connect["Linkedid"])
        assert [r.outcome for r in rows] == ["answered"]
        # The consoles stayed open; the clear they missed is sent again once Redis is back.
        for ws in (ws_a, ws_b):
            await next_message(
                ws,
                lambda m: m.get("type") == "clear" and m.get("linkedid") == connect["Linkedid"],
                timeout=15,
            )
        await asyncio.sleep(2)  # a retry's interval: the readers subscribe again
        await both_pop(20)
        await ws_a.close()
        await ws_b.close()
    finally:
        for proc in (web_a, web_b, engine):
            proc.stop()
        redis.stop()
        app.start()
