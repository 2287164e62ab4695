"""Asterisk's ``queue_log``: one line per queue event, parsed into ``Entry`` values.

A line is ``time|callid|queue|agent|event|data1|data2|…``. Asterisk 22 writes the event's data
as ``|``-separated fields (its realtime back end splits the same string into data1..data5); very
old versions wrote nothing after the event (the 5-field form). ``time`` is epoch seconds, with a
fraction on some builds, or a ``YYYY-MM-DD HH:MM:SS[.ffffff]`` date (realtime exports, UTC).

The field names below follow app_queue.c's ``ast_queue_log`` calls (and app_agent_pool's).
Statically configured members (queues.conf ``member =>``) get no ADDMEMBER / REMOVEMEMBER from
Asterisk; the engine writes them (callid ``STATIC``) when a static member's phone becomes
available or unavailable (callcenter/statistics/presence.py), so their login time is counted too.

ATTENDEDTRANSFER is the one event with a variable middle: ``BRIDGE|<bridge id>`` or
``APP|<app>|<data>`` or ``LINK|<chan>|<chan>``, then ``holdtime|calltime|origposition``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

# event → names of its data fields, in order (app_queue.c, Asterisk 22).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "ENTERQUEUE": ("url", "callerid", "position"),
    "CONNECT": ("holdtime", "bridged_uniqueid", "ringtime"),
    "COMPLETECALLER": ("holdtime", "calltime", "origposition"),
    "COMPLETEAGENT": ("holdtime", "calltime", "origposition"),
    "ABANDON": ("position", "origposition", "waittime"),
    "EXITWITHTIMEOUT": ("position", "origposition", "waittime"),
    "EXITEMPTY": ("position", "origposition", "waittime"),
    "EXITWITHKEY": ("key", "position", "origposition", "waittime"),
    "WITHDRAW": ("position", "origposition", "waittime", "info"),
    "RINGNOANSWER": ("ringtime_ms",),
    "RINGCANCELED": ("ringtime_ms",),
    # TRANSFER is the pre-Asterisk-12 name of BLINDTRANSFER; both carry the same fields.
    "TRANSFER": ("extension", "context", "holdtime", "calltime", "origposition"),
    "BLINDTRANSFER": ("extension", "context", "holdtime", "calltime", "origposition"),
    "ATTENDEDTRANSFER": ("method", "target", "holdtime", "calltime", "origposition"),
    "ADDMEMBER": ("paused",),
    "REMOVEMEMBER": (),
    "PAUSE": ("reason",),
    "UNPAUSE": ("reason",),
    "PAUSEALL": ("reason",),
    "UNPAUSEALL": ("reason",),
    "PENALTY": ("penalty",),
    "AGENTLOGIN": ("channel",),
    "AGENTLOGOFF": ("channel", "logintime"),
    "AGENTCALLBACKLOGIN": ("extension",),  # chan_agent (Asterisk ≤ 11)
    "AGENTCALLBACKLOGOFF": ("extension", "logintime", "reason"),
    "AGENTDUMP": (),
    "SYSCOMPAT": (),
    "CONFIGRELOAD": (),
    "QUEUESTART": (),
    "DID": ("did",),
    "INFO": ("info",),
    # Written by this product (not app_queue): a callback booked while waiting (the caller's
    # channel; by the dialplan), the call back entering the queue and its end (the originated
    # channel; dialplan), and a callback given up after every attempt (the engine, AMI QueueLog).
    # Each names the linkedid of the call that booked it.
    "CALLBACKREQ": ("linkedid",),
    "CALLBACKCALL": ("linkedid",),
    "CALLBACKEND": ("linkedid",),
    "CALLBACKFAIL": ("linkedid",),
}

# Events that end a caller's stay in a queue.
CALL_END = frozenset(
    {
        "COMPLETECALLER",
        "COMPLETEAGENT",
        "ABANDON",
        "EXITWITHTIMEOUT",
        "EXITEMPTY",
        "EXITWITHKEY",
        "WITHDRAW",
        "TRANSFER",
        "BLINDTRANSFER",
        "ATTENDEDTRANSFER",
    }
)


class Entry(NamedTuple):
    ts: float  # epoch seconds
    callid: str  # the caller channel's uniqueid, or NONE
    queue: str
    agent: str  # the member name (or interface), or NONE
    event: str
    data: tuple[str, ...]

    def get(self, name: str, default: str = "") -> str:
        """A data field by its app_queue name."""
        names = EVENT_FIELDS.get(self.event)
        if not names or name not in names:
            return default
        if self.event == "ATTENDEDTRANSFER" and name in ("holdtime", "calltime", "origposition"):
            # The method's own fields vary in number: these three are always the last ones.
            i = ("holdtime", "calltime", "origposition").index(name) - 3
            return self.data[i] if len(self.data) >= 5 else default
        if self.event == "ATTENDEDTRANSFER" and name == "target":
            return "|".join(self.data[1:-3]) if len(self.data) >= 5 else default
        i = names.index(name)
        if i >= len(self.data):
            return default
        if i == len(names) - 1 and name in ("info", "reason"):
            return "|".join(self.data[i:])  # free text may itself contain "|"
        return self.data[i]

    def num(self, name: str) -> float | None:
        """A numeric data field, or None when absent or not a number."""
        v = self.get(name)
        try:
            return float(v) if v else None
        except ValueError:
            return None


def parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        dt = datetime.fromisoformat(text.strip())
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def parse_line(line: str) -> Entry | None:
    """One queue_log line, or None when it is not one (blank, truncated, garbage)."""
    line = line.rstrip("\r\n")
    parts = line.split("|")
    if len(parts) < 5 or not parts[4]:
        return None
    try:
        ts = parse_time(parts[0])
    except ValueError:
        return None
    data = tuple(parts[5:])
    if data == ("",):
        data = ()
    return Entry(ts, parts[1], parts[2], parts[3], parts[4], data)
