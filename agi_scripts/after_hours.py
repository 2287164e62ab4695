"""FastAGI route ``after_hours``: a caller out of hours left a voicemail or asked for a callback.

Arguments from the dialplan only (kind, DID, linkedid, uniqueid); the caller comes from the AGI
environment. The item is written by a bus consumer (callcenter/ivr/routing.py), not here.
"""

from __future__ import annotations

import logging

from agi_scripts.server import AgiRequest
from callcenter import ids
from callcenter.ivr.routing import request_key
from callcenter.messages import IvrRequest
from callcenter.phone import normalize
from callcenter.text import is_digits

log = logging.getLogger(__name__)


async def after_hours(request: AgiRequest, context) -> None:
    settings = context.settings
    kind, did, linkedid, uniqueid = (request.arg(i) for i in (1, 2, 3, 4))
    if kind not in ("voicemail", "callback") or not is_digits(did, 32) or not ids.CALL_ID.fullmatch(linkedid):
        log.warning("after_hours: refused arguments kind=%r did=%r", kind[:16], did[:32])
        return
    raw = request.headers.get("agi_callerid", "")
    caller = normalize(raw, settings.default_region, settings.default_area_code) or ""
    caller_raw = "".join(ch for ch in raw if ch.isprintable())[:80]
    if not context.ivr.shares.take(request_key(caller, caller_raw)):
        # An autodialler's flood: nothing recorded, nothing stored (the dialplan says why).
        log.warning("after_hours: %s refused, the caller's share for today is used", kind)
        await request.set_variable("CC_REQUEST_OK", "0")
        return
    resident_id = (await context.ivr.facts(caller)).resident_id if caller else None
    recording = f"{uniqueid}.wav" if kind == "voicemail" and ids.CALL_ID.fullmatch(uniqueid) else ""
    message = IvrRequest(
        kind=kind,
        did=did,
        linkedid=linkedid,
        caller=caller,
        caller_raw=caller_raw,
        resident_id=resident_id,
        recording=recording,
    )
    await context.bus.publish(message.topic, message.to_json())
    await request.set_variable("CC_REQUEST_OK", "1")
