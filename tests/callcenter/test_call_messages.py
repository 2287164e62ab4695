"""What the call service sends a seat's console: each change once, the status bar at a bounded rate."""

from __future__ import annotations

import asyncio

import pytest

from callcenter import topics
from callcenter.ami import events as ev
from callcenter.bus import InProcessBus
from callcenter.calls import workers
from callcenter.calls.state import Effect
from callcenter.calls.workers import CallService
from callcenter.messages import WallboardSnapshot


def member(status: int, paused: bool = False, at: float = 1000.0) -> ev.QueueMemberStatus:
    return ev.QueueMemberStatus(
        queue="hotline",
        interface="PJSIP/seat1001",
        member_name="seat1001",
        status=status,
        paused=paused,
        paused_reason="",
        received=at,
    )


async def received(sub, wait: float = 0.3) -> list[dict]:
    out = []
    with pytest.raises(asyncio.TimeoutError):
        while True:
            out.append((await sub.get(wait))[1])
    return out


async def test_a_seat_hears_its_state_when_it_changes_not_each_time_asterisk_repeats_it(settings):
    bus = InProcessBus()
    service = CallService(settings, bus)
    sub = bus.subscribe(topics.seat("1001"))
    service.model.apply(member(1))
    for _ in range(3):  # the same state said again (a member in several queues, a re-sync)
        await service._effect(Effect("seat", "1001"))
    assert [m["state"] for m in await received(sub)] == ["available"]
    service.model.apply(member(1, paused=True, at=1001.0))
    await service._effect(Effect("seat", "1001"))
    await service._effect(Effect("seat", "1001"))
    assert [(m["state"], m["paused"]) for m in await received(sub)] == [("paused", True)]
    # A page saying hello gets the whole state, changed or not.
    await service._send_seat_page("1001")
    assert [m.get("state") for m in await received(sub)] == ["paused"]


def board(waiting: int) -> WallboardSnapshot:
    return WallboardSnapshot(
        at=0.0,
        queues={"hotline": {"waiting": waiting}},
        seats=[{"ext": "1001", "queues": ["hotline"]}],
        day="2026-12-07",
        alerts={},
    )


async def test_the_status_bar_changes_at_most_once_an_interval_and_ends_on_the_last_count(
    settings, monkeypatch
):
    monkeypatch.setattr(workers, "SEAT_QUEUES_INTERVAL", 0.5)
    bus = InProcessBus()
    service = CallService(settings, bus)
    sub = bus.subscribe(topics.seat("1001"))
    for waiting in (1, 2, 3, 2):  # callers joining and leaving within the interval
        await service._publish_seat_queues(board(waiting))
    assert [m["waiting"] for m in await received(sub, 0.1)] == [{"hotline": 1}]
    # The interval ends: the wallboard worker is woken for the count held back.
    await asyncio.wait_for(service._wallboard_dirty.wait(), 2)
    await service._publish_seat_queues(board(2))
    assert [m["waiting"] for m in await received(sub, 0.1)] == [{"hotline": 2}]


async def test_profiles_are_built_side_by_side_and_the_newest_request_for_a_call_wins(settings, monkeypatch):
    import threading

    from callcenter.calls.state import LiveCall

    release_slow = threading.Event()

    def build(_settings, resident_id, caller, _extras):
        if resident_id == 1:  # a slow read: the calls behind it must not wait for it
            release_slow.wait(5)
        return {"resident": {"id": resident_id}, "history": {}}

    monkeypatch.setattr(workers, "build_profile", build)
    bus = InProcessBus()
    service = CallService(settings, bus)
    service._inline_reads = False  # as on PostgreSQL: the reads on the database threads
    for linkedid, rid in (("a", 1), ("b", 2)):
        service.model.calls[linkedid] = LiveCall(
            linkedid, caller="+8613800000001", resident_id=rid, identified=True
        )
    worker = asyncio.create_task(service._profile_worker())
    try:
        service._profiles.put_nowait("a")
        service._profiles.put_nowait("b")
        for _ in range(100):
            if service.model.calls["b"].profile is not None:
                break
            await asyncio.sleep(0.02)
        assert service.model.calls["b"].profile == {"resident": {"id": 2}, "history": {}}
        assert service.model.calls["a"].profile is None  # still reading
        # A seat linked another resident to call "a" meanwhile: its newer profile stands.
        service.model.calls["a"].resident_id = 3
        service._profiles.put_nowait("a")
        for _ in range(100):
            if service.model.calls["a"].profile is not None:
                break
            await asyncio.sleep(0.02)
        release_slow.set()
        await asyncio.sleep(0.2)
        assert service.model.calls["a"].profile == {"resident": {"id": 3}, "history": {}}
    finally:
        release_slow.set()
        worker.cancel()
        service._pool.shutdown()


async def test_records_ending_together_are_written_together_and_none_is_lost_when_the_engine_stops(settings):
    import time

    from sqlalchemy import func, select

    from callcenter.calls.models import CallRecord
    from callcenter.database import session_scope
    from tests.callcenter.test_postgres import answered_call

    bus = InProcessBus()
    recorded = bus.subscribe(topics.CALLS_RECORDED)
    service = CallService(settings, bus)
    writes: list[int] = []
    write = service._write
    service._write = lambda calls: (writes.append(len(calls)), write(calls))[1]  # type: ignore[method-assign]
    worker = asyncio.create_task(service._record_worker())
    now = time.time()
    for i in range(3):
        service._records.put_nowait(answered_call(f"batch.{i}", now))
    assert [(await recorded.get(5))[1]["linkedid"] for _ in range(3)] == ["batch.0", "batch.1", "batch.2"]
    assert writes == [3]
    # Stopped while it waits for more: the record it took is written by the stop.
    service._records.put_nowait(answered_call("batch.3", now))
    await asyncio.sleep(0.05)
    worker.cancel()
    await service._flush_records()
    with session_scope(settings) as s:
        assert s.execute(select(func.count()).select_from(CallRecord)).scalar_one() == 4
    service._pool.shutdown()


async def test_a_ringing_read_before_the_routes_fact_is_taken_pops_with_the_resident(settings, monkeypatch):
    """The route hands its fact over before it answers Asterisk, so before the call rings; but a
    busy loop (uvloop reads sockets before it runs callbacks from other threads) may queue the
    ringing first. The consumer takes the handed-over facts before each event, and on SQLite
    reads the profile as it applies one: the first pop names the resident, no second pop."""
    from callcenter.calls.state import Identified

    monkeypatch.setattr(
        workers, "build_profile", lambda _s, rid, _c, _e: {"resident": {"id": rid}, "history": {}}
    )
    bus = InProcessBus()
    service = CallService(settings, bus)
    assert service._inline_reads  # the embedded SQLite file
    sub = bus.subscribe(topics.seat("1001"))
    caller = {"channel": "PJSIP/carrier-00000001", "uniqueid": "100.1", "linkedid": "100.1"}
    service.events.put_nowait(member(1))
    service.events.put_nowait(
        ev.Newchannel(**caller, caller_num="13912345678", exten="96345", received=1000.0)
    )
    service.identified(
        Identified(linkedid="100.1", caller="+8613912345678", resident_id=7, did="96345", received=1000.1)
    )
    # Read off the AMI socket before the loop ran the hand-over's callback
    service.events.put_nowait(ev.QueueCallerJoin(**caller, queue="hotline", received=1000.2))
    service.events.put_nowait(
        ev.AgentCalled(
            **caller,
            queue="hotline",
            interface="PJSIP/seat1001",
            dest_channel="PJSIP/seat1001-00000002",
            received=1000.3,
        )
    )
    consumer = asyncio.create_task(service._consume())
    try:
        pops = [m for m in await received(sub) if m["type"] == "pop"]
    finally:
        consumer.cancel()
        service._pool.shutdown()
    assert pops and pops[0]["resident"] == {"id": 7} and pops[0]["profile_ready"]
    assert len(pops) == 1
