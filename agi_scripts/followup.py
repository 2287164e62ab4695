"""FastAGI route ``followup``: the digit a resident pressed in a follow-up call.

Arguments: the follow-up's id (ours, from the Originate) and the digit read (untrusted: only 1-5
count). The follow-up worker stores it. Sets ``CC_FU_OK=1`` for a valid rating (the thanks)."""

from __future__ import annotations

from agi_scripts.server import AgiRequest


async def followup(request: AgiRequest, context) -> None:
    ok = context.callcontrol.followups.rated(request.arg(1)[:12], request.arg(2)[:2])
    await request.set_variables({"CC_FU_OK": "1" if ok else "0"})
