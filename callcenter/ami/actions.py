"""Every AMI action the product sends, each from a named builder that checks its values, and the
reply as one small type.

AMI headers are lines of text: a value with a line break in it would add headers of its own
(another action in the same packet). So nothing reaches Asterisk except through a builder here,
and each builder checks every value against the shapes the product uses (callcenter/ids.py for
extensions, queues and call ids; printable one-line text for names and reasons) and returns the
action, or None for a value it does not send. Callers check their input first and say why it was
refused; the builders are the last gate.

panoramisk 1.4 waits for a list of events after a reply it takes for a list's start: QueueAdd,
QueueRemove and QueuePause replies then never resolve, and "... successfully queued" (Originate,
Atxfer) is taken for one. Each builder says how its reply is read (``Action.as_list``), so the
client does not guess from the action's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from callcenter import ids

# PJSIP/seat1001, PJSIP/seat1001-0000000a, PJSIP/13919310001@cc-outbound, Local/...;1
_CHANNEL = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@;-]{1,80}")
# What Originate may call: a channel name or a dial string with Local options (a seat's member
# interface, ``Local/1001@cc-ring-seat/nm``, rings all of its phones).
_DIALLED = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@;-]{1,80}(/[a-z]{1,3})?")
_CONTEXT = re.compile(r"[a-z0-9_-]{1,40}")
_EXTEN = re.compile(r"[A-Za-z0-9*#+_-]{1,32}")
_NUMBER = re.compile(r"[0-9]{1,20}")
_VARIABLE = re.compile(r"[A-Z_]{1,32}")
_VARIABLE_VALUE = re.compile(r"[A-Za-z0-9_.:/-]{0,64}")
_QUEUE_LOG_VALUE = re.compile(r"[A-Za-z0-9_.:/-]{0,64}")
_QUEUE_LOG_INTERFACE = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@-]{1,64}(/[a-z]{1,3})?")
_QUEUE_LOG_EVENTS = frozenset({"ADDMEMBER", "REMOVEMEMBER", "CALLBACKFAIL"})
ORIGINATE_CODECS = "alaw,ulaw"
SPY_OPTIONS = {"listen": "", "whisper": "w", "barge": "B"}


def _text(value: str, limit: int = 80) -> bool:
    """One line of printable text (a member's name, a pause reason)."""
    return len(value) <= limit and value.isprintable()


@dataclass(frozen=True, slots=True, eq=False)
class Action(Mapping[str, str]):
    """One AMI action: its name, its headers in order, and how panoramisk reads its reply
    (``as_list``: None lets panoramisk decide, False takes the first reply, True collects a list)."""

    name: str
    headers: tuple[tuple[str, str], ...] = ()
    as_list: bool | None = None

    def __getitem__(self, key: str) -> str:
        if key == "Action":
            return self.name
        for k, v in self.headers:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield "Action"
        for k, _v in self.headers:
            yield k

    def __len__(self) -> int:
        return 1 + len(self.headers)


def _action(name: str, as_list: bool | None = None, **headers: str) -> Action:
    return Action(name, tuple(headers.items()), as_list)


@dataclass(frozen=True, slots=True)
class Reply:
    """Asterisk's answer: whether it succeeded, its Message header (None when it has none) and
    the raw message for logs."""

    ok: bool
    message: str | None = None
    raw: Any = None

    @classmethod
    def of(cls, raw: Any) -> Reply:
        """From what panoramisk returns: a message with ``success`` (a list of them, for an
        action read as a list, is not a success of its own)."""
        message = raw.get("Message") if hasattr(raw, "get") else None
        return cls(ok=bool(getattr(raw, "success", False)), message=message, raw=raw)


# --- calls ---------------------------------------------------------------------------------------


def hangup(channel: str) -> Action | None:
    if not _CHANNEL.fullmatch(channel or ""):
        return None
    return _action("Hangup", as_list=False, Channel=channel, Cause="16")


def redirect(channel: str, context: str, exten: str) -> Action | None:
    """The channel leaves for ``exten`` in ``context`` (a blind transfer)."""
    if not (_CHANNEL.fullmatch(channel or "") and _CONTEXT.fullmatch(context) and _EXTEN.fullmatch(exten)):
        return None
    return _action("Redirect", as_list=False, Channel=channel, Context=context, Exten=exten, Priority="1")


def atxfer(channel: str, context: str, exten: str) -> Action | None:
    """An attended transfer from ``channel`` to ``exten`` in ``context``."""
    if not (_CHANNEL.fullmatch(channel or "") and _CONTEXT.fullmatch(context) and _EXTEN.fullmatch(exten)):
        return None
    return _action("Atxfer", as_list=False, Channel=channel, Context=context, Exten=exten)


def _variables(variables: Mapping[str, str]) -> str | None:
    for k, v in variables.items():
        if not _VARIABLE.fullmatch(k) or not _VARIABLE_VALUE.fullmatch(v):
            return None
    return ",".join(f"{k}={v}" for k, v in variables.items())


def originate(
    channel: str,
    context: str,
    exten: str,
    caller_id: str,
    variables: Mapping[str, str],
    channel_id: str = "",
    asynchronous: bool = True,
) -> Action | None:
    """Call ``channel``; when it answers, into ``exten`` in ``context``. Not asynchronous, the
    reply comes when the phone answers (Success) or gives up (Error)."""
    assigned = _variables(variables)
    if assigned is None or not (_DIALLED.fullmatch(channel or "") and _CONTEXT.fullmatch(context)):
        return None
    if not _EXTEN.fullmatch(exten) or not _NUMBER.fullmatch(caller_id):
        return None
    if channel_id and not ids.CALL_ID.fullmatch(channel_id):
        return None
    headers = {
        "Channel": channel,
        "Context": context,
        "Exten": exten,
        "Priority": "1",
        "CallerID": f"<{caller_id}>",
        "Timeout": "30000",
    }
    if channel_id:
        headers["ChannelId"] = channel_id
    # The formats the new channel is requested with (AMI's default is signed linear, which a
    # seat's member interface, a Local channel, would carry through: the resident's audio then
    # did not reach a browser phone): the hotline's G.711, as its endpoints allow.
    headers["Codecs"] = ORIGINATE_CODECS
    headers["Variable"] = assigned
    if asynchronous:
        headers["Async"] = "true"
    return _action("Originate", as_list=False, **headers)


def chanspy(ext: str, channel: str, mode: str, caller_id: str) -> Action | None:
    """Seat ``ext``'s phone listens to ``channel`` (listen, whisper or barge): q no beep or
    announcement, E ends when the spied channel hangs up."""
    if mode not in SPY_OPTIONS or not ids.EXTENSION.fullmatch(ext) or not _CHANNEL.fullmatch(channel or ""):
        return None
    if not _NUMBER.fullmatch(caller_id):
        return None
    return _action(
        "Originate",
        as_list=False,
        Channel=f"PJSIP/seat{ext}",
        Application="ChanSpy",
        Data=f"{channel},q{SPY_OPTIONS[mode]}E",
        CallerID=f"<{caller_id}>",
        Timeout="30000",
        Async="true",
    )


# --- queues --------------------------------------------------------------------------------------


def queue_add(queue: str, ext: str, member_name: str) -> Action | None:
    if not ids.QUEUE.fullmatch(queue) or not ids.EXTENSION.fullmatch(ext) or not _text(member_name):
        return None
    return _action(
        "QueueAdd",
        as_list=False,
        Queue=queue,
        Interface=ids.seat_interface(ext),
        StateInterface=ids.seat_state_interface(ext),
        MemberName=member_name,
        Penalty="0",
    )


def queue_remove(queue: str, ext: str) -> Action | None:
    if not ids.QUEUE.fullmatch(queue) or not ids.EXTENSION.fullmatch(ext):
        return None
    return _action("QueueRemove", as_list=False, Queue=queue, Interface=ids.seat_interface(ext))


def queue_pause(ext: str, paused: bool, reason: str = "") -> Action | None:
    """Pause (with a reason) or unpause a seat in every queue it is in."""
    if not ids.EXTENSION.fullmatch(ext) or not _text(reason):
        return None
    headers = {"Interface": ids.seat_interface(ext), "Paused": "true" if paused else "false"}
    if paused:
        headers["Reason"] = reason
    return _action("QueuePause", as_list=False, **headers)


def queue_log(queue: str, event: str, uniqueid: str, interface: str, message: str = "") -> Action | None:
    """One queue_log line (``QueueLog``), or None when a value is not one we write (nothing from
    outside reaches queue_log through here)."""
    if event not in _QUEUE_LOG_EVENTS or not ids.QUEUE.fullmatch(queue):
        return None
    if not (_QUEUE_LOG_INTERFACE.fullmatch(interface) or interface == "NONE"):
        return None
    if not _QUEUE_LOG_VALUE.fullmatch(uniqueid) or not _QUEUE_LOG_VALUE.fullmatch(message):
        return None
    return _action(
        "QueueLog",
        as_list=False,
        Queue=queue,
        Event=event,
        UniqueId=uniqueid or "NONE",
        Interface=interface,
        Message=message,
    )


# --- the engine's own --------------------------------------------------------------------------


def core_settings() -> Action:
    """Asterisk's version and settings (the doctor reports the version)."""
    return _action("CoreSettings", as_list=False)


def core_status() -> Action:
    """When Asterisk started (CoreStartupDate / CoreStartupTime): a re-sync compares it with the
    last login's to tell an Asterisk restart from a lost connection."""
    return _action("CoreStatus", as_list=False)


def queue_status() -> Action:
    return _action("QueueStatus", as_list=True)


def core_show_channels() -> Action:
    return _action("CoreShowChannels", as_list=True)
