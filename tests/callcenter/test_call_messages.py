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
