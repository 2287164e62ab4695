"""The WebSocket protocol between the server and the seat console and wallboard pages.

Described for people in ``docs/websocket.md``; handed to the pages' JavaScript as data
(``client_constants``, rendered into a ``<script type="application/json" id="cc-protocol">``
block and read by ``static/cc.js``), so that the names and codes below are written only here.

The envelope: every server message is one JSON object with a ``topic``. Messages forwarded from
the event bus keep the bus payload next to it (``{"topic": "seat.1001", "type": "pop", ...}``);
the socket's own messages carry ``topic`` only (``<kind>.ready``, ``<kind>.pong``). The client
sends nothing but the keepalive text ``ping``.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from functools import cache
from typing import Any

import orjson

from callcenter import messages
from callcenter.bus import JSON_OPTIONS


class CloseCode(IntEnum):
    """Why the server closed a socket (4000-4999 are the application's own)."""

    NORMAL = 1000
    SERVER_ERROR = 1011  # the socket failed, or the event bus is unavailable
    CLIENT_SILENT = 4000  # used by the page itself: a half-open connection it gave up on
    UNAUTHENTICATED = 4401  # no valid session: the page goes to /login
    FORBIDDEN = 4403  # role not allowed, foreign Origin, password change required: give up
    NO_EXTENSION = 4404  # a console for an account without an extension: give up
    EXTENSION_CHANGED = 4409  # the account's extension changed: the page reloads


class Kind(StrEnum):
    """The two kinds of socket, by the page they serve."""

    CONSOLE = "console"
    WALLBOARD = "wallboard"


class Control(StrEnum):
    """The socket's own messages: topic ``<kind>.<control>``."""

    READY = "ready"  # the subscription is live (sent once, first); carries the hello fields
    HELLO = "hello"  # published on the bus (not sent to the page): the engine sends the state
    PONG = "pong"  # the answer to the client's ``ping``


class MessageType(StrEnum):
    """``type`` of the bus messages a page receives (built by the engine; callcenter/messages.py)."""

    POP = messages.POP  # a call for this seat: caller, resident, orders (calls/notifier.py)
    CLEAR = messages.CLEAR  # the call left this seat: linkedid, reason
    STATE = messages.STATE  # the seat's state: state, since, reason, queues …
    QUEUES = messages.QUEUES  # callers waiting in this seat's queues
    CALLCONTROL = messages.CALLCONTROL  # the outcome of this seat's command (callcontrol/service.py)
    CALLBACKS = messages.CALLBACKS  # the callbacks list changed
    SNAPSHOT = messages.SNAPSHOT  # the wallboard's queues and seats (calls/notifier.py)
    RESIDENT_LOOKUPS = (
        messages.RESIDENT_LOOKUPS
    )  # a burst of residents' lookups (web_console/resident_access.py)


PING = "ping"  # the client's keepalive, a bare text frame


def control_topic(kind: str, control: Control) -> str:
    return f"{kind}.{control.value}"


def envelope(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A bus message as the page receives it: the topic, then the payload (its own ``topic``
    field, if any, is the bus's and gives way)."""
    return {"topic": topic, **{k: v for k, v in payload.items() if k != "topic"}}


def encode(message: dict[str, Any]) -> str:
    """A message as the socket's text: orjson, as the pop with its profile is encoded once per
    frame and the standard library's encoder took 4 % of the engine's CPU per call (py-spy)."""
    # The bus's options; anything not JSON by nature (a datetime, a dataclass) is written as its str().
    return orjson.dumps(message, default=str, option=JSON_OPTIONS).decode()


@cache
def client_constants() -> dict[str, Any]:
    """What the pages' JavaScript needs of this protocol, as JSON data."""
    return {
        "close": {code.name: code.value for code in CloseCode},
        "types": {t.name: t.value for t in MessageType},
        "control": {c.name: c.value for c in Control},
        "ping": PING,
    }
