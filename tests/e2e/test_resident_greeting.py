"""The resident is answered fast: on a line without a menu the seats ring while the welcome plays."""

from __future__ import annotations

import asyncio

import pytest

from asterisk_conf import sounds
from asterisk_conf.sipp import SippUAS, place_call
from tests.e2e.conftest import SEAT_PORT
from tests.e2e.test_call_path import call_record

pytestmark = pytest.mark.e2e


async def test_the_seat_rings_while_the_greeting_plays(app, ami):
    settings = app.settings
    welcome_s = sounds.wav_seconds(sounds.greeting_moh_dir(settings) / "1-welcome.wav")
    with SippUAS(port=SEAT_PORT, ring_ms=1500, talk_ms=0):
        call = asyncio.create_task(place_call(settings, did="96345", caller="13800002222", hold_ms=4000))
        moh = await ami.wait_for(
            lambda e: e.get("Event") == "MusicOnHoldStart" and e.get("Class") == sounds.GREETING_CLASS,
            timeout=15,
        )
        called = await ami.wait_for(
            lambda e: e.get("Event") == "AgentCalled" and e.get("Linkedid") == moh["Linkedid"], timeout=15
        )
        stop = await ami.wait_for(
            lambda e: e.get("Event") == "MusicOnHoldStop" and e.get("Channel") == moh["Channel"], timeout=15
        )
        assert (await call).ok
    # The seat's phone began ringing while the welcome (the class's first file) was playing,
    # and the greeting went on until the seat answered.
    assert float(moh["Timestamp"]) <= float(called["Timestamp"]) < float(moh["Timestamp"]) + welcome_s
    assert float(stop["Timestamp"]) > float(called["Timestamp"])
    rec = call_record(settings, moh["Linkedid"])
    assert rec.outcome == "answered"
    assert rec.first_ring_s is not None and rec.first_ring_s < 1.5, rec.first_ring_s
