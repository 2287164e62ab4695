"""The identifiers that cross the edges, defined once: what a valid extension, queue name and
Asterisk call id look like. Every check at an edge (AMI, AGI, a console command, a form) uses these."""

from __future__ import annotations

import re

# A seat's (or supervisor's) extension: what an administrator may give an account, and so the
# only shape the rest of the system accepts (AMI channels, bus topics, console commands).
EXTENSION = re.compile(r"[0-9]{3,6}")
# A queue name: also an Asterisk section name and a queue_log field, hence lower case and no spaces.
QUEUE = re.compile(r"[a-z0-9_-]{1,32}")
# Asterisk's uniqueid and linkedid: "<epoch seconds>.<sequence>".
CALL_ID = re.compile(r"[0-9]{1,20}\.[0-9]{1,10}")
# Each seat's own queue (a returning caller is offered to their last seat first) is named so.
PERSONAL_QUEUE_PREFIX = "cc-seat-"
# The diagnostics queue of ``callcenter doctor``: its calls are tests, never service, so the
# wallboard, the reports and the exports leave it out (its seat is ``Settings.doctor_extension``).
DIAGNOSTICS_QUEUE = "cc-doctor"

# A seat is a queue member through a Local channel into this dialplan context, which rings every
# registered phone of the seat (its desk phones and softphones, and its browser phone) at once:
# chan_pjsip would ring only the first contact of ``PJSIP/<endpoint>``. The context's hint of the
# same extension combines the seat's endpoints, so the queue sees the seat's real state.
SEAT_RING_CONTEXT = "cc-ring-seat"
# The endpoint of a seat's desk phones (and of a browser-only seat's phone), and the endpoint of
# the browser phone of a seat that has both.
DESK_ENDPOINT_PREFIX = "seat"
BROWSER_ENDPOINT_PREFIX = "web"
_ENDPOINT = f"PJSIP/(?:{DESK_ENDPOINT_PREFIX}|{BROWSER_ENDPOINT_PREFIX})([0-9]{{2,8}})"
# An interface or channel of a seat: PJSIP/seat1001, PJSIP/web1001-0000002a (a phone's channel),
# Local/1001@cc-ring-seat/nm (the queue member), Local/1001@cc-ring-seat-0000001;1, hint:1001@...
_SEAT_REF = re.compile(
    rf"{_ENDPOINT}(?:-[0-9a-fA-F]{{1,16}})?"
    rf"|Local/([0-9]{{2,8}})@{SEAT_RING_CONTEXT}(?:/nm?|-[0-9a-fA-F]{{1,16}};[12])?"
    rf"|hint:([0-9]{{2,8}})@{SEAT_RING_CONTEXT}"
)
_SEAT_PHONE_CHANNEL = re.compile(rf"{_ENDPOINT}-[0-9a-fA-F]{{1,16}}")


def is_extension(value: object) -> bool:
    return isinstance(value, str) and EXTENSION.fullmatch(value) is not None


def is_queue(value: object) -> bool:
    return isinstance(value, str) and QUEUE.fullmatch(value) is not None


def is_call_id(value: object) -> bool:
    return isinstance(value, str) and CALL_ID.fullmatch(value) is not None


def seat_interface(ext: str) -> str:
    """A seat's queue member interface. ``n``: the Local channel stays, so the queue's call and
    the seat's phone channel keep their names for the whole call; ``m``: a phone's hold passes
    through to the caller's channel, which plays the music on hold itself."""
    return f"Local/{ext}@{SEAT_RING_CONTEXT}/nm"


def seat_state_interface(ext: str) -> str:
    """What the queue watches for a seat's state: the hint over all of its endpoints."""
    return f"hint:{ext}@{SEAT_RING_CONTEXT}"


def seat_of(interface_or_channel: str) -> str | None:
    """The seat's extension from any of its interfaces or channels (see ``_SEAT_REF``), else None."""
    m = _SEAT_REF.fullmatch(interface_or_channel or "")
    return next((g for g in m.groups() if g), None) if m else None


def seat_phone_of(channel: str) -> str | None:
    """The seat's extension from one of its phones' channels (``PJSIP/seat1001-0000002a``,
    ``PJSIP/web1001-0000002b``), not from an interface or a Local channel."""
    m = _SEAT_PHONE_CHANNEL.fullmatch(channel or "")
    return m.group(1) if m else None
