"""What the call workers tell the pages: a seat's pop, its clearing, its state and its queues, and
the wallboard's snapshot, each as its message (callcenter/messages.py) on its topic."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from callcenter.bus import EventBus, OutageLog, bus_unavailable
from callcenter.calls.state import DayFigures, LiveCall, LiveModel
from callcenter.clock import iso_epoch_ms
from callcenter.config import Settings
from callcenter.directory.service import QueueParams
from callcenter.ids import DIAGNOSTICS_QUEUE
from callcenter.messages import Message, Pop, SeatQueues, WallboardSnapshot
from callcenter.phone import display

_NO_HISTORY = {"calls": 0, "last_call": None, "orders": 0, "last_order": None}


def pop_message(call: LiveCall, ext: str) -> Pop:
    profile = call.profile or {}
    return Pop(
        ext=ext,
        linkedid=call.linkedid,
        state="talking" if call.seat == ext and call.answered_at else "ringing",
        caller=call.caller or call.caller_raw,
        caller_display=display(call.caller) or call.caller_raw,
        caller_name=call.caller_name,
        did=call.did,
        queue=call.queue,
        source=call.source,
        order_12345=call.order_12345,
        summary_12345=call.summary_12345,
        # The caller's menu choice (a key, invalid / timeout) and its meaning
        ivr_choice=call.ivr_choice,
        ivr_label=call.ivr_label,
        ivr_category=call.ivr_category,
        resident=profile.get("resident"),
        history=profile.get("history") or dict(_NO_HISTORY),
        dispatch=profile.get("dispatch"),
        profile_ready=call.profile is not None,
        ringing_at=iso_epoch_ms(call.ringing.get(ext)),
        answered_at=iso_epoch_ms(call.answered_at) if call.seat == ext else None,
        sent_at=time.time(),
    )


def pop_payload(call: LiveCall, ext: str) -> dict[str, Any]:
    """The pop as the console receives it."""
    return pop_message(call, ext).to_json()


def wallboard(
    model: LiveModel, today: DayFigures, queue_params: dict[str, QueueParams], settings: Settings
) -> WallboardSnapshot:
    """The live snapshot with today's figures and the alert thresholds; the doctor's queue and
    seat are tests, not service, and stay off the board."""
    snap = model.snapshot()
    queues: dict[str, dict[str, Any]] = snap["queues"]
    queues.pop(DIAGNOSTICS_QUEUE, None)
    for name, figures in today.queues.items():
        if name == DIAGNOSTICS_QUEUE:
            continue
        live = queues.setdefault(name, {"waiting": 0, "longest_wait_s": 0.0})
        # The live longest wait is of callers waiting now; the day's is kept apart.
        live.update({k: v for k, v in figures.items() if k != "longest_wait_s"})
        live["longest_wait_today_s"] = figures.get("longest_wait_s")
    for name, q in queues.items():
        params = queue_params.get(name)
        q["service_level_s"] = params.service_level_s if params else settings.service_level_s
    seats: list[dict[str, Any]] = [s for s in snap["seats"] if s["ext"] != settings.doctor_extension]
    for seat in seats:
        seat["calls_today"] = today.seat_calls.get(seat["ext"], 0)
    return WallboardSnapshot(
        at=snap["at"],
        queues=queues,
        seats=seats,
        day=today.day,
        alerts={"wait_s": settings.service_level_s, "answered_rate": settings.answered_rate_alert},
    )


def seat_queues(board: WallboardSnapshot) -> list[SeatQueues]:
    """Each seat's status bar: the callers waiting in its own queues."""
    return [
        SeatQueues(seat["ext"], {q: board.queues.get(q, {}).get("waiting", 0) for q in seat["queues"]})
        for seat in board.seats
    ]


class Notifier:
    """Publishes a message on its own topic.

    The pages' messages (pops, clears, seat states, the wallboard) are sent as well as the bus
    allows: while Redis is down they are dropped (said once), since a page that reconnects asks
    for the current state again; the engine's event path must not stop for them. What must
    arrive (a call's record) is sent with ``must_arrive`` and raises, for its sender to keep it."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.outage = OutageLog("event bus (the engine's messages to the pages)")
        self.on_back: Callable[[], None] | None = None  # after an outage: the pages missed messages

    async def send(self, message: Message, must_arrive: bool = False) -> bool:
        """Whether the message went out (False: dropped, the bus is down)."""
        try:
            await self.bus.publish(message.topic, message.to_json())
        except Exception as exc:
            if must_arrive or not bus_unavailable(exc):
                raise
            self.outage.down(exc)
            return False
        if self.outage.down_since is not None:
            self.outage.up()
            if self.on_back is not None:
                self.on_back()
        return True
