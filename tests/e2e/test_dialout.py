"""The dial-out policy through the real Asterisk: callers whose caller ID is an emergency number,
an international premium range or a bank's service number wait in the queue and press 1 for a
callback, like a resident with a mobile; only the mobile is ever called back (the outside line's
sipp sees one INVITE), the others keep their place in the queue and their refusals are audited
and shown to the seats with the reason."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlmodel import select

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.audit.models import AuditEntry
from callcenter.callcontrol.models import Callback
from callcenter.database import session_scope
from tests.e2e.conftest import OUTSIDE_PORT, SEAT_PORT
from tests.e2e.test_callbacks import pause, wait_row
from tests.e2e.test_callcontrol import csrf_client, phones  # noqa: F401  (the module fixture)

pytestmark = pytest.mark.e2e

HOSTILE = {"110": "emergency", "+882164000000": "international", "95588": "service_number"}
MOBILE = "13800138000"


async def test_only_a_valid_mobile_is_called_back(phones, app, ami):  # noqa: F811
    settings = phones
    await pause(ami, True)  # no seat free: every caller waits long enough to be offered the callback
    try:
        # All four at once: each waits 7 s (the offer comes after 5 s), presses 1, and stays up to 35 s.
        results = await asyncio.gather(
            *(
                place_call(settings, did="96345", caller=caller, hold_ms=35000, dtmf=[7000, "1"])
                for caller in [*HOSTILE, MOBILE]
            )
        )
        for r in results:
            assert r.ok, r.output
        by_caller = dict(zip([*HOSTILE, MOBILE], results, strict=True))
        # The mobile was booked and hung up after the thanks; the others went back into the queue.
        assert by_caller[MOBILE].duration < 30
        assert all(by_caller[c].duration >= 34 for c in HOSTILE)
        booked = await wait_row(settings, Callback, lambda r: r.phone == "+8613800138000", timeout=10)
        assert booked.status == "waiting"
        for caller, reason in HOSTILE.items():
            row = await wait_row(settings, Callback, lambda r, c=caller: r.phone == c, timeout=10)
            assert (row.status, row.outcome, row.attempts) == ("refused", reason, 0)
        with session_scope(settings) as s:
            audited = s.exec(select(AuditEntry).where(AuditEntry.action == "dialout.refused")).all()
        assert {(e.target, e.detail["purpose"], e.detail["reason"]) for e in audited} >= {
            (c, "callback", reason) for c, reason in HOSTILE.items()
        }
        # The seats see the refused items with the reason, next to the one waiting.
        seat = await csrf_client(app, "seat1002")
        listed = {c["phone"]: c for c in (await seat.get("/api/callbacks")).json()}
        await seat.aclose()
        assert listed["+8613800138000"]["status"] == "waiting"
        for caller, reason in HOSTILE.items():
            assert (listed[caller]["status"], listed[caller]["reason"]) == ("refused", reason)
    finally:
        await pause(ami, False)
    # A seat is free: the mobile is called back, and only the mobile.
    async with (
        SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=2000),
        SippUAS(port=OUTSIDE_PORT, ring_ms=300, trace=True) as outside,
    ):
        connect = await ami.wait_for(
            lambda e: (
                e.get("Event") == "AgentConnect" and e.get("Channel", "").startswith("PJSIP/cc-outbound-")
            ),
            timeout=40,
        )
        await wait_row(settings, Callback, lambda r: r.id == booked.id and r.status == "done", timeout=30)
        await ami.wait_for("Hangup", Channel=connect["Channel"], timeout=20)
        log = outside.messages()
    # One call on the outside line (re-INVITEs inside its dialog carry no user part), to the mobile.
    dialled = re.findall(r"^INVITE sip:([^@;\s]+)@", log, flags=re.MULTILINE)
    call_ids = set(re.findall(r"^Call-ID:\s*(\S+)", log, flags=re.MULTILINE | re.IGNORECASE))
    assert dialled == [MOBILE] and len(call_ids) == 1, (dialled, call_ids)
    with session_scope(settings) as s:
        refused = s.exec(select(Callback).where(Callback.status == "refused")).all()
    assert sorted(r.phone for r in refused) == sorted(HOSTILE)  # never tried, never changed
