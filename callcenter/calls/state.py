"""The live model of the hotline: calls by Linkedid, queue callers, seats' states.

Pure logic: ``LiveModel.apply`` takes one typed AMI event and returns the effects (pops to
show, pops to clear, calls to record). The service does the I/O. Keeping it pure keeps it
testable without Asterisk, and keeps every handler fast.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from callcenter import ids
from callcenter.ami import events as ev
from callcenter.calls.models import UNSETTLED
from callcenter.ids import CALL_ID, PERSONAL_QUEUE_PREFIX
from callcenter.messages import SeatStatus
from callcenter.text import digits_int

SOURCES = {"from-carrier": "carrier", "from-12345": "12345", "seats": "internal"}
# Asterisk hanging calls up because it is stopping
SYSTEM_HANGUPS = frozenset({ev.SOFTHANGUP_SHUTDOWN})
# A seat's own queue (a returning caller's first try): not a skill queue
_CHOICE = re.compile(r"[0-9]|invalid|timeout|voicemail|callback")


def ivr_choice_of(event: ev.ChannelEvent) -> str:
    """The caller's menu choice from the channel's variables (checked: it names a key or a case)."""
    choice = event.variables.get("CC_IVR_CHOICE", "")
    return choice if _CHOICE.fullmatch(choice) else ""


def seat_of(interface_or_channel: str) -> str | None:
    """The seat's extension from its queue member interface (``Local/1001@cc-ring-seat/nm``), an
    endpoint (``PJSIP/seat1001``) or a channel (``PJSIP/web1001-0000002a``, ``Local/...;1``)."""
    return ids.seat_of(interface_or_channel)


@dataclass
class Identified:
    """What the FastAGI route learnt about a call (not an AMI event: the route's message)."""

    linkedid: str
    caller: str | None = None  # E.164
    resident_id: int | None = None
    did: str = ""
    source: str = ""
    queue: str = ""
    order_12345: str = ""
    summary_12345: str = ""
    looked_up: bool = True  # False: the route ran out of time before finding the resident
    received: float = field(default_factory=time.time)


@dataclass
class LiveCall:
    linkedid: str
    channel: str = ""
    caller_raw: str = ""
    caller_name: str = ""
    caller: str | None = None
    did: str = ""
    source: str = "carrier"
    queue: str = ""
    order_12345: str = ""
    summary_12345: str = ""
    resident_id: int | None = None
    identified: bool = False
    started: float = field(default_factory=time.time)
    queued_at: float | None = None
    ringing: dict[str, float] = field(default_factory=dict)  # ext -> when its phone began ringing
    first_ring_at: float | None = None  # when the first seat's phone began ringing
    seat: str = ""
    answered_at: float | None = None
    ring_s: float | None = None
    talk_end: float | None = None
    abandoned_at: float | None = None
    ended_at: float | None = None
    outcome: str = ""
    resynced: bool = False
    cut: bool = False  # Asterisk itself hung the caller up (shutting down): not the caller's choice
    settle_rechecked: bool = False  # an unsettled record was queued for one more look
    profile: dict[str, Any] | None = None  # resident profile + history, built off the event path
    profile_requested: bool = False  # asked of the profile worker for a call the route never named
    events: list[dict[str, Any]] = field(default_factory=list)
    # The menu key chosen (CC_IVR_CHOICE) and what the menu says it means
    ivr_choice: str = ""
    ivr_category: str = ""
    ivr_label: str = ""
    personal_first: bool = False  # offered to the returning caller's seat before the queue
    # The seat's phone's own channel (call control acts on it; see LiveModel.seat_channel) and
    # the recording
    seat_channel: str = ""
    recording: str = ""

    @property
    def wait_s(self) -> float | None:
        if self.queued_at is None:
            return None
        end = self.answered_at or self.abandoned_at or self.ended_at
        return None if end is None else max(0.0, end - self.queued_at)

    @property
    def first_ring_s(self) -> float | None:
        """The hotline answering (the caller's channel appearing: the dialplan answers at once)
        to the first seat ringing."""
        if self.first_ring_at is None or self.resynced:
            return None
        return max(0.0, self.first_ring_at - self.started)

    @property
    def talk_s(self) -> float | None:
        if self.answered_at is None:
            return None
        end = self.talk_end or self.ended_at
        return None if end is None else max(0.0, end - self.answered_at)


@dataclass
class SeatState:
    ext: str
    name: str = ""
    status: int = 0  # AST_DEVICE_* of the seat's phone
    paused: bool = False
    paused_reason: str = ""
    queues: set[str] = field(default_factory=set)
    linkedid: str = ""  # the call ringing or talking on this seat
    since: float = field(default_factory=time.time)
    # Asterisk offers no queue call to the seat until then; it sends no event when this passes.
    wrapup_until: float = 0.0

    @property
    def state(self) -> str:
        # No phone of the seat is registered (Asterisk's device state of its endpoint): whatever
        # else holds, the queue offers it nothing, and the seat must see why.
        if self.status in (4, 5):
            return "unavailable"
        if self.paused:
            return "paused"
        state = {1: "available", 2: "talking", 3: "talking", 6: "ringing", 7: "ringing", 8: "talking"}.get(
            self.status, "available"
        )
        if state == "available" and time.time() < self.wrapup_until:
            return "wrapup"
        return state


@dataclass
class DayFigures:
    """Today's figures the wallboard adds to the live snapshot (read from the statistics'
    roll-ups: ``callcenter.statistics.today``)."""

    day: str
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)  # queue → figures
    seat_calls: dict[str, int] = field(default_factory=dict)  # extension → calls answered


# What the workers do about an event: show a pop, clear one, record the call, send a seat's state.
EffectKind = Literal["pop", "clear", "record", "seat"]


@dataclass
class Effect:
    kind: EffectKind
    ext: str = ""
    call: LiveCall | None = None
    reason: str = ""


class LiveModel:
    def __init__(self) -> None:
        self.calls: dict[str, LiveCall] = {}
        self.channels: dict[str, str] = {}  # uniqueid -> linkedid, for secondary channels
        # The seats' phones' channels alive now: uniqueid -> (linkedid, extension, channel). A queue
        # rings a seat through a Local channel that dials all of its phones; the one that answered
        # is the one still up once the others stopped ringing.
        self.phone_legs: dict[str, tuple[str, str, str]] = {}
        self.seats: dict[str, SeatState] = {}
        self.wrapup_s: dict[str, int] = {}  # queue -> wrap-up seconds (queues.conf wrapuptime)

    # -- helpers ---------------------------------------------------------------------------
    def _call(self, linkedid: str, at: float) -> LiveCall:
        call = self.calls.get(linkedid)
        if call is None:
            call = self.calls[linkedid] = LiveCall(linkedid=linkedid, started=at)
        return call

    def _seat(self, ext: str) -> SeatState:
        seat = self.seats.get(ext)
        if seat is None:
            seat = self.seats[ext] = SeatState(ext=ext)
        return seat

    def _set_seat_call(self, ext: str, linkedid: str, at: float) -> None:
        seat = self._seat(ext)
        seat.linkedid = linkedid
        seat.since = at

    def pop_for(self, ext: str) -> LiveCall | None:
        seat = self.seats.get(ext)
        if seat and seat.linkedid:
            call = self.calls.get(seat.linkedid)
            if call and (ext in call.ringing or call.seat == ext) and call.talk_end is None:
                return call
        return None

    def seat_status(self, ext: str) -> SeatStatus:
        """The seat's one state, as the console's top bar and the wallboard show it: while a call
        rings or talks on the seat it is the pop's state (the same call, the same clock), else what
        Asterisk says of the seat (no phone registered, paused with its reason, wrap-up, its
        phone's device state). A pause asked for during a call is a note (``paused``, with its
        reason) on the call's state: it takes effect when the call ends."""
        seat = self.seats[ext]
        state, since = seat.state, seat.since
        call = self.pop_for(ext)
        if call is not None:
            if call.seat == ext and call.answered_at is not None:
                state, since = "talking", call.answered_at
            elif ext in call.ringing:
                state, since = "ringing", call.ringing[ext]
        return SeatStatus(
            ext=seat.ext,
            name=seat.name,
            state=state,
            paused=seat.paused,
            paused_reason=seat.paused_reason,
            queues=sorted(seat.queues),
            since=since,
            wrapup_until=seat.wrapup_until,
        )

    def seat_view(self, ext: str) -> dict[str, Any]:
        return self.seat_status(ext).view()

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """What the wallboard shows live: callers waiting per queue and every seat's state."""
        now = now or time.time()
        queues: dict[str, dict[str, Any]] = {}
        for seat in self.seats.values():
            for q in seat.queues:
                queues.setdefault(q, {"waiting": 0, "longest_wait_s": 0.0})
        for call in self.calls.values():
            if (
                call.queue
                and call.queued_at is not None
                and call.answered_at is None
                and call.abandoned_at is None
            ):
                figures = queues.setdefault(call.queue, {"waiting": 0, "longest_wait_s": 0.0})
                figures["waiting"] += 1
                figures["longest_wait_s"] = round(max(figures["longest_wait_s"], now - call.queued_at), 1)
        return {
            "at": now,
            "queues": queues,
            "seats": [self.seat_view(ext) for ext in sorted(self.seats)],
        }

    def _log(self, call: LiveCall, event: ev.AmiEvent) -> None:
        call.events.append({"at": event.received, "event": event.name, **ev.as_dict(event)})

    # -- events ----------------------------------------------------------------------------
    def identify(self, info: Identified) -> LiveCall:
        call = self._call(info.linkedid, info.received)
        call.identified = info.looked_up  # if not, the profile worker finds the resident
        call.caller = info.caller
        call.resident_id = info.resident_id
        call.did = info.did or call.did
        call.source = info.source or call.source
        call.queue = info.queue or call.queue
        call.order_12345 = info.order_12345
        call.summary_12345 = info.summary_12345
        return call

    def apply(self, event: ev.AmiEvent) -> list[Effect]:
        at = event.received
        call: LiveCall | None
        if isinstance(event, ev.Newchannel):
            if event.uniqueid == event.linkedid:
                call = self._call(event.linkedid, at)
                call.channel = event.channel
                call.caller_raw = event.caller_num
                call.caller_name = event.caller_name
                call.did = call.did or event.exten
                call.source = SOURCES.get(event.context, call.source if call.identified else "other")
            else:
                self.channels[event.uniqueid] = event.linkedid
                ext = ids.seat_phone_of(event.channel)
                if ext is not None:
                    self.phone_legs[event.uniqueid] = (event.linkedid, ext, event.channel)
            return []

        if isinstance(event, ev.QueueCallerJoin):
            call = self._call(event.linkedid, at)
            call.ivr_choice = ivr_choice_of(event) or call.ivr_choice
            if event.queue.startswith(PERSONAL_QUEUE_PREFIX):
                # The seat's own queue first: the call belongs to the queue the menu chose, and
                # its wait runs from here through the skill queue that may follow.
                call.queue = event.variables.get("CC_QUEUE") or call.queue or event.queue
                call.queued_at = at
                call.personal_first = True
            else:
                call.queue = event.queue
                if not (call.personal_first and call.queued_at is not None):
                    call.queued_at = at
            self._log(call, event)
            return []

        if isinstance(event, ev.AgentEvent):
            return self._agent_event(event)

        if isinstance(event, ev.SoftHangupRequest):
            call = self.calls.get(event.linkedid)
            if call is not None and event.uniqueid == event.linkedid and event.cause in SYSTEM_HANGUPS:
                call.cut = True  # app_queue will report an abandon: the caller did not leave
            return []

        if isinstance(event, ev.QueueCallerAbandon):
            call = self.calls.get(event.linkedid)
            if call is None:
                return []
            call.abandoned_at = at
            self._log(call, event)
            return self._clear_ringing(call, "abandoned")

        if isinstance(event, ev.QueueCallerLeave):
            call = self.calls.get(event.linkedid)
            if call is not None:
                self._log(call, event)
            return []

        if isinstance(event, ev.Hangup):
            return self._hangup(event)

        if isinstance(event, ev.QueueMemberStatus):
            ext = seat_of(event.interface)
            if ext is None or event.queue.startswith(PERSONAL_QUEUE_PREFIX):
                return []
            seat = self._seat(ext)
            changed = (seat.status, seat.paused, seat.paused_reason) != (
                event.status,
                event.paused,
                event.paused_reason,
            ) or event.queue not in seat.queues  # a queue login (QueueAdd) changes the seat too
            seat.name = event.member_name or seat.name
            seat.status = event.status
            seat.paused = event.paused
            seat.paused_reason = event.paused_reason
            seat.queues.add(event.queue)
            self._wrapup_from(seat, event)
            if changed:
                seat.since = at
            return [Effect("seat", ext=ext)] if changed else []

        if isinstance(event, ev.QueueMemberRemoved):
            ext = seat_of(event.interface)
            if ext and ext in self.seats:
                self.seats[ext].queues.discard(event.queue)
                return [Effect("seat", ext=ext)]
        return []

    def _agent_event(self, event: ev.AgentEvent) -> list[Effect]:
        at = event.received
        ext = seat_of(event.interface) or seat_of(event.dest_channel)
        if not event.linkedid:
            # Asterisk sends some of these once the caller's channel is gone (an AgentComplete as
            # the caller hangs up, or as Asterisk stops) without its fields: there is no call to
            # file it under, and a call of linkedid "" would be recorded as one. The seat's
            # wrap-up still starts; the call itself ends with its Hangup or the next re-sync.
            if ext is None:
                return []
            if isinstance(event, ev.AgentComplete):
                seat = self._seat(ext)
                seat.wrapup_until = at + self.wrapup_s.get(event.queue, 0)
                seat.since = at
            return [Effect("seat", ext=ext)]
        call = self._call(event.linkedid, at)
        self._log(call, event)
        if ext is None:
            return []
        if isinstance(event, ev.AgentCalled):
            call.ringing[ext] = at
            if call.first_ring_at is None:
                call.first_ring_at = at
            self._set_seat_call(ext, call.linkedid, at)
            return [Effect("pop", ext=ext, call=call), Effect("seat", ext=ext)]
        if isinstance(event, ev.AgentConnect):
            call.seat = ext
            call.answered_at = at
            # The queue's leg is the Local channel; the phone that answered is found from it.
            call.seat_channel = event.dest_channel if ids.seat_phone_of(event.dest_channel) else ""
            # The dialplan records the caller's channel (MixMonitor) as <its uniqueid>.wav.
            if CALL_ID.fullmatch(event.uniqueid):
                call.recording = f"{event.uniqueid}.wav"
            began = call.ringing.pop(ext, None)
            call.ring_s = (at - began) if began is not None else float(event.ring_time)
            self._set_seat_call(ext, call.linkedid, at)
            effects = [Effect("pop", ext=ext, call=call), Effect("seat", ext=ext)]
            return effects + self._clear_ringing(call, "answered_elsewhere")
        if isinstance(event, (ev.AgentRingNoAnswer, ev.AgentDump)):
            call.ringing.pop(ext, None)
            return [Effect("clear", ext=ext, call=call, reason="noanswer"), Effect("seat", ext=ext)]
        if isinstance(event, ev.AgentComplete):
            call.talk_end = at
            seat = self._seat(ext)
            seat.wrapup_until = at + self.wrapup_s.get(call.queue, 0)
            seat.since = at
            return [Effect("clear", ext=ext, call=call, reason="hangup"), Effect("seat", ext=ext)]
        return []

    def _wrapup_from(self, seat: SeatState, m: ev.QueueMemberStatus) -> None:
        """After a re-sync the wrap-up still running is known from the member's LastCall."""
        if m.last_call:
            until = m.last_call + (m.wrapup or self.wrapup_s.get(m.queue, 0))
            seat.wrapup_until = max(seat.wrapup_until, until)

    def _clear_ringing(self, call: LiveCall, reason: str) -> list[Effect]:
        effects = [Effect("clear", ext=ext, call=call, reason=reason) for ext in call.ringing]
        effects += [Effect("seat", ext=ext) for ext in call.ringing]  # no longer ringing
        call.ringing.clear()
        return effects

    def _finish(self, call: LiveCall, at: float, reason: str) -> list[Effect]:
        call.ended_at = at
        if reason == "unseen" and not call.cut:
            call.outcome = UNSETTLED  # queue_log, which Asterisk wrote meanwhile, settles it
        elif call.answered_at is not None:
            call.outcome = "answered"
        elif call.cut or reason == "resync":
            call.outcome = "failed"  # Asterisk went away with the call still waiting
        elif call.abandoned_at is not None:
            call.outcome = "abandoned"
        elif call.queued_at is not None:
            call.outcome = "timeout"
        else:
            call.outcome = "ivr"
        effects = self._clear_ringing(call, reason)
        if call.seat and call.talk_end is None:
            call.talk_end = at
            effects.append(Effect("clear", ext=call.seat, call=call, reason=reason))
        for seat in self.seats.values():
            if seat.linkedid == call.linkedid:
                seat.linkedid = ""
                effects.append(Effect("seat", ext=seat.ext))  # its state is the phone's again
        self.calls.pop(call.linkedid, None)
        effects.append(Effect("record", call=call))
        return effects

    def seat_channel(self, call: LiveCall) -> str:
        """The channel of the seat's phone that answered ``call`` ("" while not known): the one
        phone channel of the seat still up in the call (the others were hung up when it answered);
        the oldest when several are (a second call the seat's phone made itself)."""
        if call.seat_channel or not call.seat:
            return call.seat_channel
        legs = [ch for lid, ext, ch in self.phone_legs.values() if lid == call.linkedid and ext == call.seat]
        if legs:
            call.seat_channel = legs[0]
        return call.seat_channel

    def _hangup(self, event: ev.Hangup) -> list[Effect]:
        if event.uniqueid != event.linkedid:
            self.channels.pop(event.uniqueid, None)
            leg = self.phone_legs.pop(event.uniqueid, None)
            call = self.calls.get(event.linkedid)
            if leg is not None and call is not None and call.seat_channel == leg[2]:
                call.seat_channel = ""  # e.g. an attended transfer's phone leg: look again
            return []
        call = self.calls.get(event.linkedid)
        if call is None:
            return []
        # A caller who left out of hours (voicemail, callback) never joined a queue.
        call.ivr_choice = call.ivr_choice or ivr_choice_of(event)
        return self._finish(call, event.received, "hangup")

    # -- re-sync after a (re)connection ----------------------------------------------------
    def resync(
        self,
        channels: list[ev.CoreShowChannel],
        members: list[ev.QueueMemberStatus],
        entries: list[ev.QueueEntry],
        now: float | None = None,
        asterisk_restarted: bool = True,
    ) -> list[Effect]:
        """Make the model match what Asterisk reports now; calls that ended meanwhile are recorded:
        as failed when Asterisk restarted under them, as unsettled when it ran on (the engine
        only lost its connection and does not know how they ended)."""
        now = now or time.time()
        effects: list[Effect] = []
        live_ids = {c.linkedid for c in channels}
        for ended in list(self.calls.values()):
            if ended.linkedid not in live_ids:
                ended.resynced = True
                effects += self._finish(ended, now, "resync" if asterisk_restarted else "unseen")

        entry_by_channel = {e.channel: e for e in entries}
        for ch in channels:
            if ch.uniqueid != ch.linkedid:
                continue
            call = self.calls.get(ch.linkedid)
            if call is None:
                call = self._call(ch.linkedid, now - ch.duration)
                call.resynced = True
                call.channel = ch.channel
                call.caller_raw = ch.caller_num
                call.caller_name = ch.caller_name
                call.did = ch.exten
                call.source = SOURCES.get(ch.context, "other")
                # What the FastAGI route found travels on the channel (manager.conf channelvars).
                rid = ch.variables.get("CC_RESIDENT_ID", "")
                call.resident_id = digits_int(rid)
                call.order_12345 = ch.variables.get("CC_ORDER12345", "")
                call.ivr_choice = ivr_choice_of(ch)
            entry = entry_by_channel.get(ch.channel)
            if entry is not None:
                call.queue = entry.queue
                if call.queued_at is None:
                    call.queued_at = now - entry.wait

        live = {ch.uniqueid for ch in channels}
        for uid in [u for u in self.phone_legs if u not in live]:
            del self.phone_legs[uid]
        for ch in channels:
            # The seats' phones' channels (the queue's Local legs between them say nothing more).
            ext = ids.seat_phone_of(ch.channel)
            call = self.calls.get(ch.linkedid)
            if ext is not None and ch.uniqueid != ch.linkedid:
                self.phone_legs[ch.uniqueid] = (ch.linkedid, ext, ch.channel)
            if ext is None or call is None or ch.uniqueid == ch.linkedid:
                continue
            if ch.state == "Up" and call.seat != ext:
                call.seat = ext
                call.seat_channel = ch.channel
                call.answered_at = call.answered_at or now - ch.duration
                call.ringing.pop(ext, None)
                self._set_seat_call(ext, call.linkedid, now)
                effects.append(Effect("pop", ext=ext, call=call))
            elif ch.state in ("Ringing", "Ring", "Down") and ext not in call.ringing and call.seat != ext:
                call.ringing[ext] = now
                self._set_seat_call(ext, call.linkedid, now)
                effects.append(Effect("pop", ext=ext, call=call))

        seen: set[str] = set()
        for m in members:
            ext = seat_of(m.interface)
            if ext is None or m.queue.startswith(PERSONAL_QUEUE_PREFIX):
                continue
            seat = self._seat(ext)
            if ext not in seen:
                seat.queues = set()
                seen.add(ext)
            seat.name = m.member_name or seat.name
            seat.status, seat.paused, seat.paused_reason = m.status, m.paused, m.paused_reason
            seat.queues.add(m.queue)
            self._wrapup_from(seat, m)
            effects.append(Effect("seat", ext=ext))
        for ext, seat in self.seats.items():
            if ext not in seen:
                seat.queues = set()
            if seat.linkedid and seat.linkedid not in self.calls:
                seat.linkedid = ""
        return effects
