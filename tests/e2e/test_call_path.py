"""A resident's real SIP call through Asterisk to the seat's screen pop, and what can go wrong."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import pytest
from sqlmodel import select

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.ami import events as ev
from callcenter.ami.client import open_manager
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from tests.conftest import AmiWatch, free_port
from tests.e2e.conftest import SEAT_PORT, App, a_new_call_pops, next_message, seat_console

pytestmark = pytest.mark.e2e

WANG = "+8613919310001"  # demo resident 王秀英, elderly, living alone
XSS = '<script>alert("x")</script>\'"'


def call_record(settings, linkedid: str, timeout: float = 10) -> CallRecord:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with session_scope(settings) as s:
            rec = s.exec(select(CallRecord).where(CallRecord.linkedid == linkedid)).first()
            if rec:
                return rec
        time.sleep(0.1)
    raise AssertionError(f"no call record for {linkedid}")


async def test_pop_reaches_the_right_seat_before_it_answers(app, ami):
    settings = app.settings
    _c1, ws1 = await seat_console(app, "seat1001")
    _c2, ws2 = await seat_console(app, "seat1002")
    with SippUAS(port=SEAT_PORT, ring_ms=2000, talk_ms=0):
        call = asyncio.create_task(
            place_call(settings, did="96345", caller="13919310001", caller_name=XSS, hold_ms=7000)
        )
        # Everything seat 1001's console receives, until the pop is cleared.
        received: list[tuple[dict, float]] = []
        while not received or received[-1][0].get("type") != "clear":
            received.append(await next_message(ws1))
        called = await ami.wait_for(lambda e: e.get("Event") == "AgentCalled")
        connect = await ami.wait_for(lambda e: e.get("Event") == "AgentConnect")
        assert connect["Interface"] == "Local/1001@cc-ring-seat/nm"
        pops = [(m, t) for m, t in received if m.get("type") == "pop"]
        first, _ = pops[0]
        assert first["linkedid"] == called["Linkedid"] and first["state"] == "ringing"
        assert first["caller"] == WANG and first["caller_name"] == XSS
        assert first["did"] == "96345" and first["source"] == "carrier"
        # The complete pop (with the resident's profile) is on screen while the phone still rings.
        ready = [(m, t) for m, t in pops if m["profile_ready"] and m["state"] == "ringing"]
        assert ready, pops
        pop, pop_at = ready[0]
        resident = pop["resident"]
        assert resident["name"] == "王秀英" and resident["elderly"] and resident["lives_alone"]
        assert resident["community"] and resident["grid"] and resident["jurisdiction"]
        assert pop["history"]["calls"] >= 1 and pop["history"]["orders"] >= 1
        talking = [m for m, _ in pops if m["state"] == "talking"]
        assert talking and talking[0]["answered_at"]
        assert pop_at < talking[0]["sent_at"]
        assert received[-1][0]["linkedid"] == pop["linkedid"]
        result = await call
        assert result.ok
    # Seat 1002 saw nothing of it (only its own console's control messages).
    seen_by_1002 = []
    with contextlib.suppress(asyncio.TimeoutError):
        while True:
            seen_by_1002.append(json.loads(await asyncio.wait_for(ws2.recv(), 0.5)))
    assert not [m for m in seen_by_1002 if m.get("type") in ("pop", "clear")], seen_by_1002

    rec = call_record(settings, pop["linkedid"])
    assert rec.outcome == "answered" and rec.seat == "1001" and rec.queue == "hotline"
    assert rec.caller == WANG and rec.did == "96345" and rec.caller_name == XSS[:80]
    assert rec.resident_id == resident["id"]
    assert 1.5 <= rec.ring_s <= 3.0, rec.ring_s
    assert 1.5 <= rec.wait_s <= 3.5, rec.wait_s
    # hold_ms counts from Asterisk answering, before the welcome (≈1 s) and the ringing (2 s).
    assert 2.5 <= rec.talk_s <= 5.0, rec.talk_s
    await ws1.close()
    await ws2.close()


async def test_the_engine_is_sent_the_call_events_it_reads_and_not_the_queue_members(app, ami):
    """Asterisk filters the engine's events: the caller's and the seat phone's channels come,
    the second half of the queue member's Local channel pair (which the live model never reads)
    does not."""
    settings = app.settings
    engine = AmiWatch()
    engine.manager = await open_manager(
        settings, lambda _m, msg: engine.events.append(dict(msg)), username=settings.ami_engine_user
    )
    try:
        with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=0):
            result = await place_call(settings, did="96345", caller="13919310001", hold_ms=1500)
        assert result.ok
        complete = await ami.wait_for("AgentComplete")
        linkedid = complete["Linkedid"]
        await engine.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == linkedid)
        # Every channel of the call ended, seen by the tools' connection (all events).
        channels = {e["Channel"] for e in ami.seen("Hangup", Linkedid=linkedid)}
        member = {c for c in channels if "@cc-ring-seat-" in c}
        assert len(member) == 2 and len(channels) == 4, channels
        [second] = [c for c in member if c.endswith(";2")]
        mine = [e for e in engine.events if e.get("Linkedid") == linkedid]
        seen = {(e["Event"], e.get("Channel", "")) for e in mine}
        phone = next(c for c in channels if c.startswith("PJSIP/seat1001-"))
        caller = next(c for c in channels if c not in member and c != phone)
        assert {("Newchannel", caller), ("Hangup", caller), ("Newchannel", phone), ("Hangup", phone)} <= seen
        assert not [e for e in mine if e.get("Channel") == second], mine
        # The queue's events still come; they name the member in DestChannel.
        called = [e for e in mine if e["Event"] == "AgentCalled"]
        assert called and called[0]["DestChannel"] in member
        assert {"AgentConnect", "AgentComplete", "QueueCallerJoin"} <= {e["Event"] for e in mine}
        # The parsers read only headers Asterisk sends: an absent one is looked for again without
        # regard to case through the whole message, on every event. (The member's channel may be
        # gone by the time the call completes; FullyBooted, sent once at login, has no Timestamp.)
        absent = {(e["Event"], name) for e in engine.events for name in headers_read_but_absent(e)}
        allowed = {
            ("AgentComplete", "DestChannel"),
            ("AgentComplete", "DestUniqueid"),
            ("FullyBooted", "Timestamp"),
        }
        assert absent <= allowed, absent
        assert "QueueMemberStatus" in {e["Event"] for e in engine.events}
    finally:
        engine.close()


def headers_read_but_absent(event: dict) -> list[str]:
    """The headers the engine's parser asks an event for that the event does not have."""
    lines = [
        f"{name}: {value}"
        for name, values in event.items()
        for value in (values if isinstance(values, list) else [values])
    ]
    asked: list[str] = []

    class Reads(ev.Headers):
        def get(self, key, default=None):
            if "\r\n" + key + ": " not in self._text:
                asked.append(key)
            return super().get(key, default)

    ev.parse_event(Reads("\r\n".join(lines)))
    return asked


async def test_the_console_socket_is_not_compressed(app):
    """A browser offers permessage-deflate; the server declines it (small frames, CPU per frame)."""
    _client, ws = await seat_console(app, "seat1001")
    try:
        assert "permessage-deflate" in ws.request.headers.get("Sec-WebSocket-Extensions", "")
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
    finally:
        await ws.close()


async def test_12345_transfer_shows_the_order_number(app, ami):
    settings = app.settings
    _c, ws = await seat_console(app, "seat1001")
    headers = {
        settings.header_12345_order: "GS2026112800123",
        settings.header_12345_summary: "楼道灯不亮 <b>急</b>",
    }
    with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=0):
        call = asyncio.create_task(
            place_call(
                settings,
                did="12345",
                caller="13800001111",
                headers=headers,
                source_ip=settings.trunk12345_match,
                hold_ms=4000,
            )
        )
        pop, _ = await next_message(ws, lambda m: m.get("type") == "pop" and m.get("source") == "12345")
        if not pop["order_12345"]:
            # The route's facts reach the engine's loop from the FastAGI thread; on a loaded
            # machine the first ring may be applied just before them: the pop is sent again with
            # them within moments (seen once in CI).
            pop, _ = await next_message(
                ws,
                lambda m: m.get("type") == "pop" and m["linkedid"] == pop["linkedid"] and m["order_12345"],
                timeout=5,
            )
        assert pop["order_12345"] == "GS2026112800123"
        assert pop["summary_12345"] == "楼道灯不亮 <b>急</b>"
        joined = await ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin")
        assert joined["Channel"].startswith("PJSIP/trunk12345-")
        assert (await call).ok
    rec = call_record(settings, pop["linkedid"])
    assert rec.source == "12345" and rec.order_12345 == "GS2026112800123"
    await ws.close()


async def test_call_reaches_the_seat_when_fastagi_is_down_or_broken(app, ami):
    settings = app.settings
    app.stop()
    try:
        with SippUAS(port=SEAT_PORT, ring_ms=200, talk_ms=0):
            # 1. Nothing listens on the FastAGI port: AGISTATUS=FAILURE.
            assert (await place_call(settings, did="96345", caller="13919310001", hold_ms=3000)).ok
            await ami.wait_for(lambda e: e.get("Event") == "AgentConnect")
            n_connect = sum(1 for e in ami.events if e.get("Event") == "AgentConnect")
            # 2. Something accepts and closes at once: AGISTATUS=SUCCESS, but the route never ran.
            srv = socket.socket()
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind((settings.agi_host, settings.agi_port))
            srv.listen(5)
            srv.setblocking(False)

            async def accept_and_close():
                loop = asyncio.get_running_loop()
                while True:
                    conn, _ = await loop.sock_accept(srv)
                    conn.close()

            closer = asyncio.create_task(accept_and_close())
            try:
                assert (await place_call(settings, did="96345", caller="13919310001", hold_ms=3000)).ok
                await ami.wait_for(
                    lambda e: (
                        e.get("Event") == "AgentConnect"
                        and sum(1 for x in ami.events if x.get("Event") == "AgentConnect") > n_connect
                    )
                )
            finally:
                closer.cancel()
                srv.close()
    finally:
        app.start()


async def test_a_call_the_route_never_names_still_pops_the_resident(app, ami):
    """The app is up but its FastAGI route is not reachable (Asterisk's dialplan names a port
    nobody listens on): the call falls back to its queue, and the engine identifies the caller
    from the caller ID, so the seat sees the resident while the phone rings."""
    app.stop()
    unrouted = App(app.settings.model_copy(update={"agi_port": free_port()}), name="app-unrouted")
    unrouted.start()
    try:
        _c, ws = await seat_console(unrouted, "seat1001")
        with SippUAS(port=SEAT_PORT, ring_ms=1500, talk_ms=0):
            call = asyncio.create_task(
                place_call(app.settings, did="96345", caller="13919310001", hold_ms=5000)
            )
            pop, _ = await next_message(ws, lambda m: m.get("type") == "pop" and m.get("profile_ready"))
            assert pop["state"] == "ringing" and pop["caller"] == WANG
            assert pop["resident"]["name"] == "王秀英" and pop["resident"]["elderly"]
            assert pop["history"]["orders"] >= 1
            assert (await call).ok
        rec = call_record(app.settings, pop["linkedid"])
        assert rec.resident_id == pop["resident"]["id"] and rec.outcome == "answered"
        await ws.close()
    finally:
        unrouted.stop()
        app.start()


@pytest.mark.postgres
async def test_a_slow_database_does_not_hold_the_caller_and_the_pop_still_names_the_resident(app, ami):
    """The residents' table is locked for 4 s (a slow PostgreSQL): the FastAGI route gives up on
    the lookup after its budget (1 s), so the caller goes on to the queue at once; the engine
    finds the resident when the database answers, and the seat's pop names them."""
    from sqlalchemy import create_engine, text

    settings = app.settings
    owner = create_engine(settings.migration_database_url or settings.database_url)
    locked = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold_lock() -> None:
        with owner.connect() as conn:
            conn.execute(text("LOCK TABLE resident IN ACCESS EXCLUSIVE MODE"))
            loop.call_soon_threadsafe(locked.set)
            time.sleep(4.0)
            conn.rollback()

    _c, ws = await seat_console(app, "seat1001")
    with SippUAS(port=SEAT_PORT, ring_ms=1500, talk_ms=0):
        holder = asyncio.create_task(asyncio.to_thread(hold_lock))
        await locked.wait()
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=8000))
        joined = await ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin", timeout=20)
        new = await ami.wait_for(
            lambda e: e.get("Event") == "Newchannel" and e.get("Uniqueid") == joined["Linkedid"]
        )
        held_s = float(joined["Timestamp"]) - float(new["Timestamp"])
        assert held_s < 3.0, held_s  # not the 4 s of the lock
        pop, _ = await next_message(
            ws,
            lambda m: (
                m.get("type") == "pop" and m.get("linkedid") == new["Linkedid"] and bool(m.get("resident"))
            ),
        )
        assert pop["resident"]["name"] == "王秀英" and pop["profile_ready"]
        await holder
        assert (await call).ok
    assert "routed without it" in app.log.read_text()
    owner.dispose()
    await ws.close()


async def test_console_is_right_again_after_asterisk_restarts(app, ami):
    from asterisk_conf import process

    settings = app.settings
    _c, ws = await seat_console(app, "seat1001")
    with SippUAS(port=SEAT_PORT, ring_ms=60000, talk_ms=0):
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=60000))
        pop, _ = await next_message(ws, lambda m: m.get("type") == "pop")
        await asyncio.to_thread(process.restart, settings)
        restarted = time.time()
        clear, cleared_at = await next_message(ws, lambda m: m.get("type") == "clear", timeout=30)
        assert clear["linkedid"] == pop["linkedid"]
        assert cleared_at - restarted < 10
        call.cancel()
    # The console works again: a new call pops.
    await a_new_call_pops(settings, ws, pop["linkedid"])
    rec = call_record(settings, pop["linkedid"])
    # Stopped, Asterisk hangs the caller up itself (SoftHangupRequest, SHUTDOWN) before app_queue
    # reports an abandon: the resident did not give up, the call failed.
    assert rec.outcome == "failed" and rec.seat == ""
    await ws.close()
