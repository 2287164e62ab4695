"""FastAGI route ``callback``: a waiting caller pressed the callback key.

The engine's callback worker decides from the live model (how long they waited, their number)
and stores the request off this path. Sets ``CC_CB_OK`` (1: booked, hang up politely) and
``CC_CB_QUEUE`` (the queue to go back to otherwise)."""

from __future__ import annotations

from agi_scripts.server import AgiRequest


async def callback(request: AgiRequest, context) -> None:
    linkedid = request.arg(1)  # ${CHANNEL(linkedid)}: made by Asterisk, checked by accept()
    ok, queue = context.callcontrol.callbacks.accept(linkedid)
    values = {"CC_CB_OK": "1" if ok else "0"}
    if queue:
        values["CC_CB_QUEUE"] = queue
    await request.set_variables(values)
