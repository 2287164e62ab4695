"""Call control from the consoles, carried out on Asterisk by the engine.

A web worker checks the session, role and CSRF token and publishes a command on the bus topic
``engine.callcontrol``; the engine (which holds the AMI connection and the live model) checks it
against the live model — a seat acts only on a call it is talking on, a supervisor spies only on
a call that is up — and sends the AMI action. Every AMI header value is built here from
validated values (digits, known queue names, channel names taken from the live model); nothing
a caller or a browser typed is copied into an action.

Commands: ``{"action": ..., "ext": <the account's own extension>, "actor": <username>, ...}``

* ``hangup``      linkedid                      — Hangup of the seat's channel
* ``transfer``    linkedid, mode, kind, target  — Redirect (blind) / Atxfer (attended)
* ``dial``        number                        — Originate: the seat's phone, then the resident
* ``spy``         target_ext, mode              — Originate to the supervisor's phone into ChanSpy
* ``queue_login`` / ``queue_logout``  queue     — QueueAdd / QueueRemove (dynamic members)

The outcome goes back to the acting console as ``{"type": "callcontrol", ...}`` on ``seat.<ext>``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from typing import Any

from sqlmodel import col, select

from callcenter import ids, topics
from callcenter.accounts.models import Account
from callcenter.ami import actions
from callcenter.ami.actions import Action
from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus, Subscription, TopicWorker
from callcenter.calls.state import LiveCall, LiveModel
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.dialout import policy
from callcenter.dialout.service import record_refusal
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.messages import SIGNATURE_MAX_AGE_S, CallControlCommand, CallControlResult, signature_ok
from callcenter.text import clean_name

log = logging.getLogger(__name__)

COMMAND_TOPIC = topics.CALLCONTROL_COMMAND
RESULT_TOPIC = topics.CALLCONTROL_RESULT

EXT = ids.EXTENSION
QUEUE = ids.QUEUE
NUMBER = re.compile(r"[0-9]{3,20}")  # the hotline's own caller ID
LINKEDID = ids.CALL_ID
_CHANNEL = re.compile(r"PJSIP/[A-Za-z0-9_.-]{1,64}-[0-9a-fA-F]{1,16}")

TRANSFER_MODES = ("blind", "attended")
TRANSFER_KINDS = ("seat", "queue", "outside", "12345")
SPY_MODES = actions.SPY_OPTIONS
# Dialplan contexts (extensions.conf.j2) per transfer target kind.
XFER_CONTEXT = {
    "seat": "cc-xfer-seat",
    "queue": "cc-xfer-queue",
    "outside": "cc-xfer-outside",
    "12345": "cc-xfer-12345",
}
DIALOUT_CONTEXT = "cc-dialout"


def new_channel_id() -> str:
    """A uniqueid for a channel we originate (Asterisk's own form: epoch.sequence)."""
    return f"{int(time.time())}.{100000000 + secrets.randbelow(900000000)}"


class Refused(Exception):
    """A command that may not be carried out; the message goes back to the console, and a
    dial-out policy refusal's reason too (the console shows its catalogue text)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def seat_call(model: LiveModel, ext: str, linkedid: str) -> LiveCall:
    """The call ``linkedid`` if seat ``ext`` is talking on it now, else Refused."""
    if not LINKEDID.fullmatch(linkedid or ""):
        raise Refused("bad call id")
    call = model.calls.get(linkedid)
    if call is None or call.seat != ext or call.talk_end is not None or call.answered_at is None:
        raise Refused("not your call")
    if not _CHANNEL.fullmatch(model.seat_channel(call)):
        raise Refused("the seat's channel is not known")
    return call


class CallControl(TopicWorker):
    topic = COMMAND_TOPIC

    def __init__(
        self, settings: Settings, bus: EventBus, ami: AmiClient, model: LiveModel, directory
    ) -> None:
        super().__init__(bus)
        self.settings = settings
        self.ami = ami
        self.model = model
        # ``directory``: what the database knows (seats, queues, the caller ID), off the event loop.
        self.directory = directory
        # linkedid of a click-to-call -> (the seat's extension, when it was placed)
        self.outbound: dict[str, tuple[str, float]] = {}
        self._seen: dict[str, float] = {}  # signatures of commands already run -> when

    async def handle(self, payload: dict[str, Any], sub: Subscription) -> None:
        now = time.time()
        sig = str(payload.get("sig", ""))
        if not signature_ok(payload, self.settings.bus_secret, now) or sig in self._seen:
            # Anything that can reach the bus could publish here: only the web workers' signed
            # commands, each once, move calls.
            log.warning(
                "unsigned, forged, stale or replayed call-control command dropped (action %r, ext %r)",
                str(payload.get("action", ""))[:20],
                str(payload.get("ext", ""))[:20],
            )
            return
        self._seen[sig] = now
        for old in [k for k, t in self._seen.items() if now - t > 2 * SIGNATURE_MAX_AGE_S]:
            del self._seen[old]
        # Off the subscription loop: an AMI round trip must not hold up the next command.
        asyncio.create_task(self.run(payload))

    async def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        command = CallControlCommand.from_json(payload)
        action, ext = command.action, command.ext
        result: dict[str, Any] = {}  # what the command was about, as far as it got
        ok, error = False, None
        try:
            if not EXT.fullmatch(ext):
                raise Refused("bad extension")
            handler = getattr(self, f"_do_{action}", None)
            if handler is None:
                raise Refused("unknown action")
            ami_action = await handler(ext, command, result)
            if ami_action is None:
                raise Refused("refused")
            reply = await self.ami.action(ami_action)
            if not reply.ok and action == "dial":
                self.outbound.pop(str(result.get("linkedid", "")), None)
            elif action == "dial":
                asyncio.create_task(self._mark_outbound(str(result["linkedid"]), ext, command.number))
            if not reply.ok:
                raise Refused(f"Asterisk refused: {reply.message or ''}"[:200])
            ok = True
        except Refused as exc:
            error = str(exc)
            if exc.reason:
                result["refused"] = exc.reason
            log.warning("call control %s for %s refused: %s", action, ext, exc)
        except Exception as exc:
            error = "failed"
            log.exception("call control %s for %s failed: %r", action, ext, exc)
        message = CallControlResult(
            ext, action, ok, request_id=command.request_id, error=error, details=result
        )
        if EXT.fullmatch(ext):
            await self.bus.publish(message.topic, message.to_json())
        await self.bus.publish(RESULT_TOPIC, message.result_json())
        return message.to_json()

    # -- the actions: each returns the AMI action, built from checked values only ------------
    async def _do_hangup(self, ext: str, command: CallControlCommand, result: dict) -> Action | None:
        linkedid = command.linkedid
        result["linkedid"] = linkedid
        if self.outbound.get(linkedid, ("",))[0] == ext and linkedid in self.model.calls:
            # A click-to-call's first channel: the seat's member interface (the Local channel
            # ringing all of its phones); hanging it up ends the phones' and the resident's legs.
            channel = self.model.calls[linkedid].channel
            if ids.seat_of(channel) != ext:
                raise Refused("the seat's channel is not known")
        else:
            channel = seat_call(self.model, ext, linkedid).seat_channel
        return actions.hangup(channel)

    async def _do_transfer(self, ext: str, command: CallControlCommand, result: dict) -> Action | None:
        linkedid = command.linkedid
        mode, kind = command.mode, command.kind
        result.update(linkedid=linkedid, mode=mode, kind=kind)
        if mode not in TRANSFER_MODES or kind not in TRANSFER_KINDS:
            raise Refused("bad transfer")
        call = seat_call(self.model, ext, linkedid)
        target = await self._target(command, kind, command.target, call)
        result["target"] = target
        context = XFER_CONTEXT[kind]
        if mode == "blind":
            if not _CHANNEL.fullmatch(call.channel or ""):
                raise Refused("the caller's channel is not known")
            # The caller leaves the seat for the target; the seat's leg is hung up.
            return actions.redirect(call.channel, context, target)
        # Attended: the seat's phone talks to the target first, the caller on hold; the transfer
        # completes when the seat hangs up (features.conf atxfer, Queue option t).
        return actions.atxfer(call.seat_channel, context, target)

    async def _target(self, command: CallControlCommand, kind: str, target: str, call: LiveCall) -> str:
        ext = command.ext
        if kind == "seat":
            if not EXT.fullmatch(target) or target == ext:
                raise Refused("bad seat")
            if target not in await self.directory.extensions():
                raise Refused("no such seat")
            return target
        if kind == "queue":
            if not QUEUE.fullmatch(target) or target not in await self.directory.queues():
                raise Refused("no such queue")
            return target
        if kind == "outside":
            if not self.settings.outbound_contact:
                raise Refused("no outside line configured")
            return await self._allowed(command, "transfer", target)
        # kind == "12345": only a call that came from the 12345 platform goes back to it.
        if call.source != "12345":
            raise Refused("not a 12345 call")
        if not self.settings.trunk12345_contact:
            raise Refused("no 12345 line configured")
        return "12345"

    async def _do_dial(self, ext: str, command: CallControlCommand, result: dict) -> Action | None:
        if not self.settings.outbound_contact:
            raise Refused("no outside line configured")
        number = await self._allowed(command, "dial", command.number)
        busy = [c for c in self.model.calls.values() if c.seat == ext and c.talk_end is None]
        if busy or self._dialling(ext):
            raise Refused("the seat is on a call")
        clid = await self.directory.caller_id()
        channel_id = new_channel_id()
        self.outbound[channel_id] = (ext, time.monotonic())
        result["linkedid"] = channel_id
        return actions.originate(
            ids.seat_interface(ext),  # the seat's phones first (all of them ring, as for a queue call)
            DIALOUT_CONTEXT,
            number,
            clid,
            {"CC_CLID": clid},
            channel_id=channel_id,
        )

    async def _allowed(self, command: CallControlCommand, purpose: str, number: str) -> str:
        """The digits to dial when the dial-out policy allows ``number``; else the refusal is
        logged and audited, and the console is told why (``refused``: the policy's reason)."""
        decision = policy.check(number, self.settings)
        if decision.allowed:
            return decision.digits
        actor = (command.actor or f"seat{command.ext}")[:64]
        await asyncio.to_thread(
            record_refusal, self.settings, decision, purpose, number, actor, ext=command.ext
        )
        raise Refused(f"number refused: {decision.reason}", decision.reason)

    async def _mark_outbound(self, linkedid: str, ext: str, number: str, timeout: float = 60) -> None:
        """The click-to-call's record: the seat's call to the resident, and its recording
        (cc-dialout records ``<uniqueid>.wav``), once its channel shows in the live model."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            call = self.model.calls.get(linkedid)
            if call is not None:
                call.seat = ext
                call.source = "outbound"
                call.recording = f"{linkedid}.wav"
                decision = policy.check(number, self.settings)
                call.caller = decision.number or None
                call.caller_raw = decision.digits
                return
            await asyncio.sleep(0.1)

    def _dialling(self, ext: str) -> bool:
        """Whether the seat's own click-to-call is still up (or was placed a moment ago and its
        channel has not shown yet). Ended ones are forgotten here."""
        now = time.monotonic()
        busy = False
        for linkedid, (who, at) in list(self.outbound.items()):
            live = linkedid in self.model.calls or now - at < 10
            if not live:
                del self.outbound[linkedid]
            elif who == ext:
                busy = True
        return busy

    async def _do_spy(self, ext: str, command: CallControlCommand, result: dict) -> Action | None:
        target_ext, mode = command.target_ext, command.mode
        result.update(target_ext=target_ext, mode=mode)
        if mode not in SPY_MODES or not EXT.fullmatch(target_ext) or target_ext == ext:
            raise Refused("bad listen request")
        seat = self.model.seats.get(target_ext)
        call = self.model.calls.get(seat.linkedid) if seat and seat.linkedid else None
        if call is None or call.seat != target_ext or call.talk_end is not None:
            raise Refused("the seat is not on a call")
        if not _CHANNEL.fullmatch(self.model.seat_channel(call)):
            raise Refused("the seat's channel is not known")
        result["linkedid"] = call.linkedid
        return actions.chanspy(ext, call.seat_channel, mode, caller_id=target_ext)

    async def _do_queue_login(self, ext: str, command: CallControlCommand, result: dict) -> Action | None:
        queue = await self._own_queue(command, result)
        name = await self.directory.member_name(ext)
        return actions.queue_add(queue, ext, name)

    async def _do_queue_logout(self, ext: str, command: CallControlCommand, result: dict) -> Action | None:
        queue = await self._own_queue(command, result)
        return actions.queue_remove(queue, ext)

    async def _own_queue(self, command: CallControlCommand, result: dict) -> str:
        queue = command.queue
        result["queue"] = queue
        if not QUEUE.fullmatch(queue) or queue not in await self.directory.queues():
            raise Refused("no such queue")
        return queue


class Directory:
    """Seats, queues and the hotline's caller ID from the database, cached for a few seconds
    (read on a thread: the event loop never waits on the database)."""

    TTL = 5.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._at = 0.0
        self._data: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    def _load(self) -> dict[str, Any]:
        with session_scope(self.settings) as s:
            accounts = s.exec(select(Account).where(Account.active == True)).all()  # noqa: E712
            queues = {q.name for q in s.exec(select(CallQueue)).all() if QUEUE.fullmatch(q.name or "")}
            numbers = [n.number for n in s.exec(select(ServiceNumber).order_by(col(ServiceNumber.id))).all()]
        names = {
            a.extension: clean_name(a.display_name, fallback=a.extension or "")
            for a in accounts
            if a.extension and EXT.fullmatch(a.extension)
        }
        clid = self.settings.outbound_caller_id or next((n for n in numbers if NUMBER.fullmatch(n or "")), "")
        return {"names": names, "queues": queues, "clid": clid if NUMBER.fullmatch(clid) else "0"}

    async def _get(self) -> dict[str, Any]:
        async with self._lock:
            if time.monotonic() - self._at > self.TTL:
                self._data = await asyncio.to_thread(self._load)
                self._at = time.monotonic()
            return self._data

    async def extensions(self) -> set[str]:
        return set((await self._get())["names"])

    async def queues(self) -> set[str]:
        return (await self._get())["queues"]

    async def caller_id(self) -> str:
        return (await self._get())["clid"]

    async def member_name(self, ext: str) -> str:
        return (await self._get())["names"].get(ext, ext)
