"""The AMI edge: raw AMI messages become typed events here, and nowhere else.

Everything past this module works with these dataclasses. Unknown events are ignored, so a
new Asterisk version adding events changes nothing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

from callcenter.text import caller_name

_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def unescape(value: str) -> str:
    """Undo one level of backslash escaping (AMI escapes \\ " and ' in values)."""
    return _ESCAPE.sub(r"\1", value) if "\\" in value else value


class HeaderSource(Protocol):
    """What the parsers read: a message's header by name (``Headers``, panoramisk's Message)."""

    def get(self, key: str, default: Any = None) -> Any: ...


class Headers:
    """One AMI message as Asterisk sent it, its headers read on demand: the engine reads a dozen
    of an event's forty-odd headers, and finding one in the text (in C) costs less than splitting
    every line in Python did. Names are case-insensitive (as panoramisk's Message); Asterisk's own
    spelling is found first. A repeated header (ChanVariable) reads as the list of its values."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = "\r\n" + text + "\r\n"  # every header, the first too, between line breaks

    def get(self, key: str, default: Any = None) -> Any:
        text = self._text
        tag = "\r\n" + key + ": "
        at = text.find(tag)
        if at < 0:
            found = re.search(re.escape(tag), text, re.IGNORECASE)
            if found is None:
                return default
            at, tag = found.start(), found.group()
        repeated = key.lower() in _REPEATED
        values = []
        while at >= 0:
            start = at + len(tag)
            end = text.find("\r\n", start)  # found: the text ends with a line break
            if not repeated:
                return text[start:end]
            values.append(text[start:end])
            at = text.find(tag, end)
        return values

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _MISSING) is not _MISSING


_MISSING = object()
_REPEATED = frozenset({"chanvariable"})  # headers the engine reads that Asterisk may repeat


def parse_packet(text: str) -> Headers:
    """The headers of one AMI message (its lines without the blank line that ends it)."""
    return Headers(text)


def _s(msg: HeaderSource, key: str) -> str:
    value = msg.get(key, "")
    if isinstance(value, list):  # repeated headers (ChanVariable) come as lists
        value = value[-1] if value else ""
    value = unescape(str(value))
    return "" if value in ("<unknown>", "(null)") else value


def _chan_variables(msg: HeaderSource) -> dict[str, str]:
    raw = msg.get("ChanVariable") or []
    out = {}
    for item in raw if isinstance(raw, list) else [raw]:
        name, sep, value = str(item).partition("=")
        if sep and value:
            out[name] = unescape(value)
    return out


def _name(msg: HeaderSource, key: str) -> str:
    """A caller-ID name: PJSIP keeps the SIP quoted-string escapes (\\" and \\\\), so undo those too;
    then no control or bidi characters and a bounded length (the caller chose it)."""
    return caller_name(unescape(_s(msg, key)))


def _i(msg: HeaderSource, key: str) -> int:
    try:
        return int(_s(msg, key) or 0)
    except ValueError:
        return 0


@dataclass(slots=True)
class AmiEvent:
    name: ClassVar[str] = ""
    received: float = field(default_factory=time.time, kw_only=True)
    # When Asterisk emitted it (manager.conf timestampevents); ``received`` when absent.
    # Hop timings compare this with other clocks: our own receipt lags by the reader's backlog.
    emitted: float = field(default=0.0, kw_only=True)


@dataclass(slots=True)
class FullyBooted(AmiEvent):
    name: ClassVar[str] = "FullyBooted"


@dataclass(slots=True)
class ChannelEvent(AmiEvent):
    """Any event carrying a channel snapshot (the caller's channel for queue events)."""

    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    state: str = ""
    caller_num: str = ""
    caller_name: str = ""
    exten: str = ""
    context: str = ""
    # manager.conf ``channelvars`` (what the FastAGI route set), from the ChanVariable headers
    variables: dict[str, str] = field(default_factory=dict)

    @classmethod
    def _channel_fields(cls, msg: HeaderSource) -> dict[str, Any]:
        return {
            "variables": _chan_variables(msg),
            "channel": _s(msg, "Channel"),
            "uniqueid": _s(msg, "Uniqueid"),
            "linkedid": _s(msg, "Linkedid") or _s(msg, "Uniqueid"),
            "state": _s(msg, "ChannelStateDesc"),
            "caller_num": _s(msg, "CallerIDNum"),
            "caller_name": _name(msg, "CallerIDName"),
            "exten": _s(msg, "Exten"),
            "context": _s(msg, "Context"),
        }


@dataclass(slots=True)
class Newchannel(ChannelEvent):
    name: ClassVar[str] = "Newchannel"


@dataclass(slots=True)
class Hangup(ChannelEvent):
    name: ClassVar[str] = "Hangup"
    cause: int = 0


@dataclass(slots=True)
class SoftHangupRequest(ChannelEvent):
    """Asterisk hangs a channel up itself; ``cause`` is the reason flag (AST_SOFTHANGUP_*), not a
    Q.850 cause: SHUTDOWN means Asterisk is going away, not that the caller left. (A caller who
    hangs up in a queue is followed by one with 16 too: only SHUTDOWN tells a fault.)"""

    name: ClassVar[str] = "SoftHangupRequest"
    cause: int = 0


SOFTHANGUP_SHUTDOWN = 0x04


@dataclass(slots=True)
class CoreShowChannel(ChannelEvent):
    """One line of a CoreShowChannels re-sync."""

    name: ClassVar[str] = "CoreShowChannel"
    duration: int = 0  # seconds since the channel was created


@dataclass(slots=True)
class QueueCallerJoin(ChannelEvent):
    name: ClassVar[str] = "QueueCallerJoin"
    queue: str = ""
    position: int = 0
    count: int = 0


@dataclass(slots=True)
class QueueCallerLeave(ChannelEvent):
    name: ClassVar[str] = "QueueCallerLeave"
    queue: str = ""
    count: int = 0


@dataclass(slots=True)
class QueueCallerAbandon(ChannelEvent):
    name: ClassVar[str] = "QueueCallerAbandon"
    queue: str = ""
    hold_time: int = 0


@dataclass(slots=True)
class AgentEvent(ChannelEvent):
    """Queue-to-seat events: the caller's channel plus the seat's (Dest…) channel."""

    queue: str = ""
    interface: str = ""
    member_name: str = ""
    dest_channel: str = ""
    dest_uniqueid: str = ""


@dataclass(slots=True)
class AgentCalled(AgentEvent):
    name: ClassVar[str] = "AgentCalled"


@dataclass(slots=True)
class AgentConnect(AgentEvent):
    name: ClassVar[str] = "AgentConnect"
    hold_time: int = 0  # s
    ring_time: int = 0  # s


@dataclass(slots=True)
class AgentComplete(AgentEvent):
    name: ClassVar[str] = "AgentComplete"
    hold_time: int = 0  # s
    talk_time: int = 0  # s
    reason: str = ""


@dataclass(slots=True)
class AgentRingNoAnswer(AgentEvent):
    name: ClassVar[str] = "AgentRingNoAnswer"
    ring_time_ms: int = 0  # Asterisk gives this one in ms


@dataclass(slots=True)
class AgentDump(AgentEvent):
    name: ClassVar[str] = "AgentDump"


@dataclass(slots=True)
class QueueMemberStatus(AmiEvent):
    """A seat's state in a queue; also the QueueMember lines of a QueueStatus re-sync."""

    name: ClassVar[str] = "QueueMemberStatus"
    queue: str = ""
    interface: str = ""
    member_name: str = ""
    status: int = 0  # AST_DEVICE_*: 1 not in use, 2 in use, 3 busy, 5 unavailable, 6 ringing, 8 on hold
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    calls_taken: int = 0
    last_call: int = 0  # epoch seconds the seat's last queue call ended (starts its wrap-up)
    wrapup: int = 0  # the member's own wrap-up time; 0 means the queue's
    membership: str = ""  # static (queues.conf member =>) | dynamic (QueueAdd) | realtime


@dataclass(slots=True)
class QueueMemberRemoved(AmiEvent):
    name: ClassVar[str] = "QueueMemberRemoved"
    queue: str = ""
    interface: str = ""
    membership: str = ""


@dataclass(slots=True)
class QueueEntry(AmiEvent):
    """A caller waiting in a queue, from a QueueStatus re-sync."""

    name: ClassVar[str] = "QueueEntry"
    queue: str = ""
    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    caller_num: str = ""
    caller_name: str = ""
    wait: int = 0


@dataclass(slots=True)
class QueueParams(AmiEvent):
    name: ClassVar[str] = "QueueParams"
    queue: str = ""
    calls: int = 0


@dataclass(slots=True)
class Resync(AmiEvent):
    """Not an Asterisk event: the client's snapshot after a (re)login."""

    name: ClassVar[str] = "Resync"
    channels: list[CoreShowChannel] = field(default_factory=list)
    members: list[QueueMemberStatus] = field(default_factory=list)
    entries: list[QueueEntry] = field(default_factory=list)
    # False when Asterisk ran on while the connection was down (the same start time as at the
    # last login): calls that ended meanwhile were not cut, the engine only lost sight of them.
    asterisk_restarted: bool = True


# The events the engine's AMI session asks Asterisk for (manager.conf renders them as the engine
# user's event filter): what _parse turns into typed events. A busy hotline sends ~35 events per
# call; parsing the ~20 the engine ignores cost its event loop more than the FastAGI route did.
# List replies (QueueMember, QueueEntry, CoreShowChannel, ...) are part of an action's answer and
# pass any filter.
ENGINE_EVENTS: tuple[str, ...] = (
    "FullyBooted",
    "Newchannel",
    "Hangup",
    "SoftHangupRequest",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "AgentDump",
    "QueueMemberStatus",
    "QueueMemberAdded",
    "QueueMemberPause",
    "QueueMemberRemoved",
)


# Channel events the engine never reads, left out at Asterisk (manager.conf ``action(exclude)``
# filters on the event's name and a regular expression on its Channel header). A Local channel's
# second half (``Local/1001@cc-ring-seat-0000002a;2``: a queue member's or a click-to-call's leg
# to the seat's phones) never carries a call's linkedid (the first half does when it starts the
# call) and is not a seat's phone: the live model reads nothing from it.
ENGINE_EXCLUDED_CHANNELS: tuple[tuple[str, str], ...] = tuple(
    (name, "^Local/[^;]*;2$") for name in ("Newchannel", "Hangup", "SoftHangupRequest")
)


def _agent_fields(msg: HeaderSource) -> dict[str, Any]:
    return {
        "queue": _s(msg, "Queue"),
        "interface": _s(msg, "Interface"),
        "member_name": _s(msg, "MemberName"),
        "dest_channel": _s(msg, "DestChannel"),
        "dest_uniqueid": _s(msg, "DestUniqueid"),
    }


def _member_status(msg: HeaderSource, cls: type = QueueMemberStatus) -> QueueMemberStatus:
    return QueueMemberStatus(
        queue=_s(msg, "Queue"),
        interface=_s(msg, "Interface") or _s(msg, "Location") or _s(msg, "StateInterface"),
        member_name=_s(msg, "MemberName") or _s(msg, "Name"),
        status=_i(msg, "Status"),
        paused=_s(msg, "Paused") == "1",
        paused_reason=_s(msg, "PausedReason"),
        in_call=_s(msg, "InCall") == "1",
        calls_taken=_i(msg, "CallsTaken"),
        last_call=_i(msg, "LastCall"),
        wrapup=_i(msg, "Wrapuptime"),
        membership=_s(msg, "Membership"),
    )


def parse_event(msg: HeaderSource) -> AmiEvent | None:
    """Turn one AMI message (``Headers`` from the socket, or panoramisk's Message) into a typed event."""
    event = _parse(msg)
    if event is not None:
        try:
            event.emitted = float(_s(msg, "Timestamp"))
        except ValueError:
            event.emitted = event.received
    return event


def _parse(msg: HeaderSource) -> AmiEvent | None:
    kind = _s(msg, "Event")
    if kind == "FullyBooted":
        return FullyBooted()
    if kind in ("Newchannel", "Hangup", "SoftHangupRequest", "CoreShowChannel"):
        base = ChannelEvent._channel_fields(msg)
        if kind == "Hangup":
            return Hangup(**base, cause=_i(msg, "Cause"))
        if kind == "SoftHangupRequest":
            return SoftHangupRequest(**base, cause=_i(msg, "Cause"))
        if kind == "CoreShowChannel":
            dur = _s(msg, "Duration")  # HH:MM:SS
            secs = 0
            if dur.count(":") == 2:
                h, m, s = (int(x) if x.isdigit() else 0 for x in dur.split(":"))
                secs = h * 3600 + m * 60 + s
            return CoreShowChannel(**base, duration=secs)
        return Newchannel(**base)
    if kind == "QueueCallerJoin":
        return QueueCallerJoin(
            **ChannelEvent._channel_fields(msg),
            queue=_s(msg, "Queue"),
            position=_i(msg, "Position"),
            count=_i(msg, "Count"),
        )
    if kind == "QueueCallerLeave":
        return QueueCallerLeave(
            **ChannelEvent._channel_fields(msg), queue=_s(msg, "Queue"), count=_i(msg, "Count")
        )
    if kind == "QueueCallerAbandon":
        return QueueCallerAbandon(
            **ChannelEvent._channel_fields(msg), queue=_s(msg, "Queue"), hold_time=_i(msg, "HoldTime")
        )
    if kind in ("AgentCalled", "AgentConnect", "AgentComplete", "AgentRingNoAnswer", "AgentDump"):
        base = {**ChannelEvent._channel_fields(msg), **_agent_fields(msg)}
        if kind == "AgentCalled":
            return AgentCalled(**base)
        if kind == "AgentConnect":
            return AgentConnect(**base, hold_time=_i(msg, "HoldTime"), ring_time=_i(msg, "RingTime"))
        if kind == "AgentComplete":
            return AgentComplete(
                **base, hold_time=_i(msg, "HoldTime"), talk_time=_i(msg, "TalkTime"), reason=_s(msg, "Reason")
            )
        if kind == "AgentRingNoAnswer":
            return AgentRingNoAnswer(**base, ring_time_ms=_i(msg, "RingTime"))
        return AgentDump(**base)
    if kind in ("QueueMemberStatus", "QueueMember", "QueueMemberAdded", "QueueMemberPause"):
        return _member_status(msg)
    if kind == "QueueMemberRemoved":
        return QueueMemberRemoved(
            queue=_s(msg, "Queue"),
            interface=_s(msg, "Interface") or _s(msg, "Location"),
            membership=_s(msg, "Membership"),
        )
    if kind == "QueueEntry":
        return QueueEntry(
            queue=_s(msg, "Queue"),
            channel=_s(msg, "Channel"),
            uniqueid=_s(msg, "Uniqueid"),
            linkedid=_s(msg, "Linkedid") or _s(msg, "Uniqueid"),
            caller_num=_s(msg, "CallerIDNum"),
            caller_name=_name(msg, "CallerIDName"),
            wait=_i(msg, "Wait"),
        )
    if kind == "QueueParams":
        return QueueParams(queue=_s(msg, "Queue"), calls=_i(msg, "Calls"))
    return None


_STORED_FIELDS: dict[type, tuple[str, ...]] = {}  # an event class's fields as written, found once


def as_dict(event: AmiEvent) -> dict[str, Any]:
    """The event's fields (for persisting queue events)."""
    names = _STORED_FIELDS.get(type(event))
    if names is None:
        names = tuple(f.name for f in fields(event) if f.name not in ("received", "emitted"))
        _STORED_FIELDS[type(event)] = names
    return {name: getattr(event, name) for name in names}
