"""FastAGI route ``missed_callback``: how the resident's leg of a missed-call callback ended.

Arguments: the callback's id (ours, from the Originate) and Dial's status (untrusted: only
Asterisk's words count). Runs in the seat channel's hang-up handler; the worker stores it."""

from __future__ import annotations

from agi_scripts.server import AgiRequest


async def missed_callback(request: AgiRequest, context) -> None:
    context.callcontrol.callbacks.dialled(request.arg(1)[:12], request.arg(2)[:16])
