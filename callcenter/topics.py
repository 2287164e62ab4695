"""Every bus topic, named once. Publishers and subscribers import the name, never spell the string.

Commands go to the engine (``engine.*``); the engine's news goes to the consoles (``seat.<ext>``,
``wallboard``) and to the other workers. Each payload is a type in callcenter/messages.py.
"""

from __future__ import annotations

# Commands to the engine.
CONFIG = "engine.config"  # re-render and reload Asterisk's configuration
SEAT_COMMAND = "engine.seat"  # a seat logs in to / out of a queue, pauses, resumes
CALLCONTROL_COMMAND = "engine.callcontrol"  # hang up, transfer, listen in, call out …
QUEUELOG = "engine.queuelog"  # a line for Asterisk's queue_log, written through AMI

# What the engine tells the others.
CONFIG_APPLIED = "engine.config.applied"  # after each reload
CALLS_RESYNC = "calls.resync"  # the live model was rebuilt after an AMI (re)connect
CALLS_RECORDED = "calls.recorded"  # a call record was written
CALLS_RESIDENT = "calls.resident"  # a seat linked a caller to a resident: the pop is rebuilt
CALLCONTROL_RESULT = "callcontrol.result"
CALLBACKS_CHANGED = "callbacks"  # the callbacks-in-queue list changed
CALLBACK_REQUEST = "callback.request"
FOLLOWUP_REQUEST = "followup.request"
FOLLOWUP_RATED = "followup.rated"
FOLLOWUP_RESULT = "followup.result"
IVR_REQUEST = "ivr.request"  # an out-of-hours message, to be stored
IVR_REQUEST_ADDED = "ivr.request.added"
DISPATCH_OVERDUE = "dispatch.overdue"  # supervisors' pages listen for 督办
CONFIG_CHANGED = "config.changed"  # an administrator changed routing, categories, the calendar …

# The live pages: a console subscribes to its seat, the wallboard to its own topic. A page that
# opens publishes ``<kind>.hello`` and the engine answers on the page's topic.
WALLBOARD = "wallboard"
CONSOLE_HELLO = "console.hello"
WALLBOARD_HELLO = "wallboard.hello"


def seat(ext: str) -> str:
    """The topic of one seat's console."""
    return f"seat.{ext}"


def hello(kind: str) -> str:
    return f"{kind}.hello"
