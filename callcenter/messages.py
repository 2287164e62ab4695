"""Every bus payload as a type, next to the topic it travels on (callcenter/topics.py).

Each message knows its topic and its JSON (``to_json()``: exactly the keys and values the pages'
JavaScript, web_console/protocol.py and the other workers read); a message that is consumed is
read back once, at the edge (``from_json()``), and what is wrong in it is refused there.

The console's and wallboard's messages carry a ``type`` (``protocol.MessageType`` takes its
values from the names here).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol

from callcenter import ids, topics

# ``type`` of the messages a page receives.
POP: Final = "pop"
CLEAR: Final = "clear"
STATE: Final = "state"
QUEUES: Final = "queues"
CALLCONTROL: Final = "callcontrol"
CALLBACKS: Final = "callbacks"
SNAPSHOT: Final = "snapshot"
RESIDENT_LOOKUPS: Final = "resident_lookups"


class Message(Protocol):
    """A bus payload: its topic and its JSON."""

    @property
    def topic(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


def _str(payload: dict[str, Any], key: str) -> str:
    return str(payload.get(key, ""))


# --- commands to the engine (read once, at the engine's edge) ------------------------------------


@dataclass(frozen=True, slots=True)
class SeatCommand:
    """A seat pauses (with a reason) or resumes, in every queue it is in."""

    topic: ClassVar[str] = topics.SEAT_COMMAND

    action: str  # pause | unpause
    ext: str
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"action": self.action, "ext": self.ext}
        if self.action == "pause":
            out["reason"] = self.reason
        return out

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> SeatCommand:
        return cls(action=_str(payload, "action"), ext=_str(payload, "ext"), reason=_str(payload, "reason"))


# Call-control commands move calls (originate, barge, hang up): the engine acts only on those a
# web worker signed with the secret they share (settings.bus_secret), over the payload and its time.
SIGNATURE_MAX_AGE_S: Final = 30.0


def _mac(payload: dict[str, Any], secret: str) -> str:
    body = json.dumps(
        {k: v for k, v in payload.items() if k != "sig"},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def sign(payload: dict[str, Any], secret: str, now: float) -> dict[str, Any]:
    """The payload with its time (``ts``) and HMAC-SHA256 (``sig``)."""
    out = {**payload, "ts": round(now, 3)}
    out["sig"] = _mac(out, secret)
    return out


def signature_ok(
    payload: dict[str, Any], secret: str, now: float, max_age: float = SIGNATURE_MAX_AGE_S
) -> bool:
    """True when ``payload`` was signed with ``secret`` no more than ``max_age`` seconds ago."""
    sig, ts = payload.get("sig"), payload.get("ts")
    if not secret or not isinstance(sig, str) or isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return False
    if abs(now - float(ts)) > max_age:
        return False
    return hmac.compare_digest(sig, _mac(payload, secret))


@dataclass(frozen=True, slots=True)
class CallControlCommand:
    """A seat's call-control command: hang up, transfer, call out, listen in, log in to or out of
    a queue. Which fields count depends on the action; the engine checks each."""

    topic: ClassVar[str] = topics.CALLCONTROL_COMMAND

    action: str
    ext: str
    request_id: str | None = None  # the console's, echoed in the result
    actor: str = ""  # the account's username (logs)
    linkedid: str = ""
    mode: str = ""  # transfer: blind | attended; listen: listen | whisper | barge
    kind: str = ""  # transfer target: seat | queue | outside | 12345
    target: str = ""
    number: str = ""
    target_ext: str = ""
    queue: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "ext": self.ext}
        if self.request_id is not None:
            out["request_id"] = self.request_id
        for key in ("actor", "linkedid", "mode", "kind", "target", "number", "target_ext", "queue"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> CallControlCommand:
        return cls(
            action=_str(payload, "action"),
            ext=_str(payload, "ext"),
            request_id=str(payload["request_id"])[:40] if "request_id" in payload else None,
            actor=_str(payload, "actor"),
            linkedid=_str(payload, "linkedid"),
            mode=_str(payload, "mode"),
            kind=_str(payload, "kind"),
            target=_str(payload, "target"),
            number=_str(payload, "number"),
            target_ext=_str(payload, "target_ext"),
            queue=_str(payload, "queue"),
        )


@dataclass(frozen=True, slots=True)
class PageHello:
    """A console or wallboard socket opened (``<kind>.hello``): the engine answers on the page's
    topic with the current state (a console: its seat's state and the call ringing it)."""

    kind: str  # console | wallboard
    ext: str = ""  # a console's extension, from the account record

    @property
    def topic(self) -> str:
        return topics.hello(self.kind)

    def to_json(self) -> dict[str, Any]:
        return {"ext": self.ext} if self.ext else {}

    @classmethod
    def from_json(cls, kind: str, payload: dict[str, Any]) -> PageHello:
        return cls(kind=kind, ext=_str(payload, "ext"))


# --- to a seat's console (topic ``seat.<ext>``) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pop:
    """A call for this seat: the caller, the menu choice, the resident and their history."""

    ext: str
    linkedid: str
    state: str  # ringing | talking
    caller: str
    caller_display: str
    caller_name: str
    did: str
    queue: str
    source: str
    order_12345: str
    summary_12345: str
    ivr_choice: str  # a key, invalid / timeout …
    ivr_label: str  # what it means
    ivr_category: str
    resident: dict[str, Any] | None
    history: dict[str, Any]
    dispatch: dict[str, Any] | None  # household, elderly profile, archive, earlier orders
    profile_ready: bool
    ringing_at: str | None
    answered_at: str | None
    sent_at: float

    @property
    def topic(self) -> str:
        return topics.seat(self.ext)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": POP,
            "linkedid": self.linkedid,
            "state": self.state,
            "caller": self.caller,
            "caller_display": self.caller_display,
            "caller_name": self.caller_name,
            "did": self.did,
            "queue": self.queue,
            "source": self.source,
            "order_12345": self.order_12345,
            "summary_12345": self.summary_12345,
            "ivr_choice": self.ivr_choice,
            "ivr_label": self.ivr_label,
            "ivr_category": self.ivr_category,
            "resident": self.resident,
            "history": self.history,
            "dispatch": self.dispatch,
            "profile_ready": self.profile_ready,
            "ringing_at": self.ringing_at,
            "answered_at": self.answered_at,
            "sent_at": self.sent_at,
        }


@dataclass(frozen=True, slots=True)
class Clear:
    """The call left this seat (answered elsewhere, abandoned, ended)."""

    ext: str
    linkedid: str
    reason: str

    @property
    def topic(self) -> str:
        return topics.seat(self.ext)

    def to_json(self) -> dict[str, Any]:
        return {"type": CLEAR, "linkedid": self.linkedid, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class SeatStatus:
    """The seat's state as the console's top bar and the wallboard's rows show it."""

    ext: str
    name: str
    # ringing | talking (a call on the seat: paused is then a note) > unavailable (no phone
    # registered) > paused > wrapup | available
    state: str
    paused_reason: str
    queues: list[str]
    since: float
    wrapup_until: float
    paused: bool = False  # also while a call is on the seat or no phone is registered: it holds after

    @property
    def topic(self) -> str:
        return topics.seat(self.ext)

    def view(self) -> dict[str, Any]:
        """The seat's row (the wallboard's ``seats``; the console's message without ``type``)."""
        return {
            "ext": self.ext,
            "name": self.name,
            "state": self.state,
            "paused": self.paused,
            "paused_reason": self.paused_reason,
            "queues": self.queues,
            "since": self.since,
            "wrapup_until": self.wrapup_until,
        }

    def to_json(self) -> dict[str, Any]:
        return {"type": STATE, **self.view()}


@dataclass(frozen=True, slots=True)
class SeatQueues:
    """Callers waiting in each of the seat's queues (its status bar)."""

    ext: str
    waiting: dict[str, int]

    @property
    def topic(self) -> str:
        return topics.seat(self.ext)

    def to_json(self) -> dict[str, Any]:
        return {"type": QUEUES, "waiting": self.waiting}


@dataclass(frozen=True, slots=True)
class CallControlResult:
    """The outcome of a seat's call-control command; also on ``callcontrol.result`` (with the
    extension) for the workers that wait on it. ``details`` are what the command was about
    (linkedid, mode, kind, target, target_ext, queue), as far as it got."""

    ext: str
    action: str
    ok: bool
    request_id: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        return topics.seat(self.ext)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": CALLCONTROL, "action": self.action, "ok": self.ok}
        if self.request_id is not None:
            out["request_id"] = self.request_id
        out.update(self.details)
        if self.error is not None:
            out["error"] = self.error
        return out

    def result_json(self) -> dict[str, Any]:
        """On ``callcontrol.result``: the same, with the extension (empty when it was not one)."""
        return {**self.to_json(), "ext": self.ext if ids.EXTENSION.fullmatch(self.ext) else ""}


@dataclass(frozen=True, slots=True)
class CallbacksChanged:
    """The callbacks-in-queue list changed: the consoles read it again."""

    topic: ClassVar[str] = topics.CALLBACKS_CHANGED

    def to_json(self) -> dict[str, Any]:
        return {"type": CALLBACKS}


# --- to the wallboard --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WallboardSnapshot:
    """Callers waiting per queue with today's figures, every seat's row, the alert thresholds."""

    topic: ClassVar[str] = topics.WALLBOARD

    at: float
    queues: dict[str, dict[str, Any]]
    seats: list[dict[str, Any]]
    day: str
    alerts: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": SNAPSHOT,
            "at": self.at,
            "queues": self.queues,
            "seats": self.seats,
            "day": self.day,
            "alerts": self.alerts,
        }


@dataclass(frozen=True, slots=True)
class ResidentLookupAlert:
    """An account looked up many residents' records that are not linked to its calls or orders
    within a short time (possible harvesting): the supervisors see it on the wallboard."""

    topic: ClassVar[str] = topics.WALLBOARD

    at: float
    actor: str  # the account's username
    role: str
    lookups: int  # how many such lookups within the window
    window_min: float

    def to_json(self) -> dict[str, Any]:
        return {
            "type": RESIDENT_LOOKUPS,
            "at": self.at,
            "actor": self.actor,
            "role": self.role,
            "lookups": self.lookups,
            "window_min": self.window_min,
        }


# --- among the workers -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    """A line for Asterisk's queue_log, written through AMI by the engine whose ``source`` it is."""

    topic: ClassVar[str] = topics.QUEUELOG

    source: str
    queue: str
    event: str
    uniqueid: str
    interface: str
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {
            "source": self.source,
            "queue": self.queue,
            "event": self.event,
            "uniqueid": self.uniqueid,
            "interface": self.interface,
        }
        if self.message:
            out["message"] = self.message
        return out

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> QueueLogLine:
        return cls(
            source=_str(payload, "source"),
            queue=_str(payload, "queue"),
            event=_str(payload, "event"),
            uniqueid=_str(payload, "uniqueid"),
            interface=_str(payload, "interface"),
            message=_str(payload, "message"),
        )


@dataclass(frozen=True, slots=True)
class CallsResync:
    """The live model was rebuilt from Asterisk after an AMI (re)connection."""

    topic: ClassVar[str] = topics.CALLS_RESYNC

    at: float
    calls: int

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "calls": self.calls}


@dataclass(frozen=True, slots=True)
class CallRecorded:
    """A call's record was written (its row, times as ISO text)."""

    topic: ClassVar[str] = topics.CALLS_RECORDED

    row: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.row)


@dataclass(frozen=True, slots=True)
class CallsResident:
    """A seat registered or linked the caller: the pop is rebuilt with the resident."""

    topic: ClassVar[str] = topics.CALLS_RESIDENT

    linkedid: str
    resident_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {"linkedid": self.linkedid, "resident_id": self.resident_id}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> CallsResident:
        rid = payload.get("resident_id")
        return cls(linkedid=_str(payload, "linkedid"), resident_id=rid if isinstance(rid, int) else None)


@dataclass(frozen=True, slots=True)
class ConfigApplied:
    """Asterisk's configuration was rendered and reloaded."""

    topic: ClassVar[str] = topics.CONFIG_APPLIED

    reason: str
    ms: float
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "ms": self.ms, "at": self.at}


@dataclass(frozen=True, slots=True)
class ConfigRequest:
    """Render Asterisk's configuration and reload the modules named (all when none are)."""

    topic: ClassVar[str] = topics.CONFIG

    reason: str
    modules: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason}
        if self.modules is not None:
            out["modules"] = self.modules
        return out

    @classmethod
    def from_json(cls, payload: Any) -> ConfigRequest:
        if not isinstance(payload, dict):
            return cls(reason="")
        wanted = payload.get("modules")
        modules = [str(m) for m in wanted] if isinstance(wanted, list) else None
        return cls(reason=_str(payload, "reason"), modules=modules)


@dataclass(frozen=True, slots=True)
class IvrRequest:
    """An out-of-hours caller left a voicemail or asked for a callback (from the FastAGI route)."""

    topic: ClassVar[str] = topics.IVR_REQUEST

    kind: str  # voicemail | callback
    did: str
    linkedid: str
    caller: str
    caller_raw: str
    resident_id: int | None
    recording: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "did": self.did,
            "linkedid": self.linkedid,
            "caller": self.caller,
            "caller_raw": self.caller_raw,
            "resident_id": self.resident_id,
            "recording": self.recording,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> IvrRequest:
        rid = payload.get("resident_id")
        return cls(
            kind=_str(payload, "kind"),
            did=_str(payload, "did"),
            linkedid=_str(payload, "linkedid"),
            caller=_str(payload, "caller"),
            caller_raw=_str(payload, "caller_raw"),
            resident_id=rid if isinstance(rid, int) else None,
            recording=_str(payload, "recording"),
        )


@dataclass(frozen=True, slots=True)
class IvrRequestAdded:
    """An out-of-hours voicemail or callback request was stored."""

    topic: ClassVar[str] = topics.IVR_REQUEST_ADDED

    id: int | None
    kind: str
    did: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "did": self.did}


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A caller waiting in a queue asked to be called back."""

    topic: ClassVar[str] = topics.CALLBACK_REQUEST

    linkedid: str
    phone: str
    queue: str

    def to_json(self) -> dict[str, Any]:
        return {"linkedid": self.linkedid, "phone": self.phone, "queue": self.queue}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> CallbackRequest:
        return cls(
            linkedid=_str(payload, "linkedid"), phone=_str(payload, "phone"), queue=_str(payload, "queue")
        )


@dataclass(frozen=True, slots=True)
class FollowUpRequest:
    """Call a resident back for their rating of an order's handling."""

    topic: ClassVar[str] = topics.FOLLOWUP_REQUEST

    phone: str
    reference: str

    def to_json(self) -> dict[str, Any]:
        return {"phone": self.phone, "reference": self.reference}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> FollowUpRequest:
        return cls(phone=_str(payload, "phone"), reference=_str(payload, "reference"))


@dataclass(frozen=True, slots=True)
class FollowUpResult:
    """A follow-up call's outcome: rated (1-5) or unreachable after its attempts."""

    topic: ClassVar[str] = topics.FOLLOWUP_RESULT

    reference: str
    status: str  # rated | unreachable
    rating: int | None
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "status": self.status,
            "rating": self.rating,
            "attempts": self.attempts,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> FollowUpResult:
        rating, attempts = payload.get("rating"), payload.get("attempts")
        return cls(
            reference=_str(payload, "reference"),
            status=_str(payload, "status"),
            rating=rating if isinstance(rating, int) and not isinstance(rating, bool) else None,
            attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0,
        )


@dataclass(frozen=True, slots=True)
class DispatchOverdue:
    """An order went to supervision (督办): the supervisors' pages show it."""

    topic: ClassVar[str] = topics.DISPATCH_OVERDUE

    number: str
    action: str

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "action": self.action}


# The parts of the administrators' configuration a ``ConfigChanged`` names.
CONFIG_PARTS: frozenset[str] = frozenset(
    {"routing", "categories", "calendar", "deadlines", "templates", "operations"}
)


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """An administrator saved a part of the service's configuration: every process drops what it
    cached of it (the stamp in the database makes the next lookup reload anyway; this makes the
    engine and the other workers forget at once)."""

    topic: ClassVar[str] = topics.CONFIG_CHANGED

    part: str
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"part": self.part, "version": self.version}

    @classmethod
    def from_json(cls, payload: Any) -> ConfigChanged | None:
        if not isinstance(payload, dict):
            return None
        part = _str(payload, "part")
        version = payload.get("version")
        if part not in CONFIG_PARTS:
            return None
        return cls(
            part=part, version=version if isinstance(version, int) and not isinstance(version, bool) else 0
        )
