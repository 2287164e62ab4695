"""The FastAGI routes of the telephony work over real TCP: out-of-hours items announced on the bus
(only for checked arguments), and the incoming route's hours, priority and last-seat answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from agi_scripts.testing import run_agi_call
from callcenter.audit.models import AuditEntry
from callcenter.bus import InProcessBus
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from callcenter.ivr.models import CallerRequest, ServiceHours
from callcenter.ivr.routing import REQUEST_TOPIC
from callcenter.ivr.voicemail import voicemail_dir
from hotline.engine import Engine
from tests.conftest import free_port


@pytest.fixture
async def engine(settings):
    settings.agi_port = free_port()
    settings.agi_read_timeout = 0.5
    bus = InProcessBus()
    e = Engine(settings, bus)
    await e.ivr.start()
    await e.start_agi()
    yield e
    await e.stop_agi()
    await e.ivr.stop()


async def test_out_of_hours_items_are_announced_for_checked_arguments(engine):
    sub = engine.bus.subscribe(REQUEST_TOPIC)
    await sub.ready.wait()
    port = engine.settings.agi_port
    set_vars, _ = await run_agi_call(
        "127.0.0.1",
        port,
        "after_hours",
        args=["voicemail", "96346", "17.3", "17.3"],
        env={"agi_callerid": "13919310001"},
    )
    assert set_vars == {"CC_REQUEST_OK": "1"}
    _topic, payload = await sub.get(5)
    assert payload["kind"] == "voicemail" and payload["caller"] == "+8613919310001"
    assert payload["recording"] == "17.3.wav" and payload["did"] == "96346"
    for bad in (
        ["fax", "96346", "17.3", "17.3"],
        ["callback", "9;6", "17.3", ""],
        ["callback", "963²", "17.3", ""],
        ["callback", "96346", "../x", ""],
    ):
        set_vars, _ = await run_agi_call("127.0.0.1", port, "after_hours", args=bad)
        assert set_vars == {}
    assert sub.queue.empty()


async def test_incoming_route_closed_hours_and_the_last_seat(engine, settings):
    with session_scope(settings) as s:
        s.add(ServiceHours(number="96346", schedule="workdays", open_time="08:30", close_time="17:30"))
        s.add(CallRecord(linkedid="x1", caller="+8617000000001", seat="1003", started_at=datetime.now(UTC)))
        s.commit()
    await engine.bus.publish("engine.config.applied", {})  # the hours are read again
    settings.clock = "2026-10-01T10:00:00"  # National Day
    for _ in range(50):
        if "96346" in engine.ivr.hours:
            break
        await asyncio.sleep(0.05)
    port = settings.agi_port
    args = ["carrier", "96346", "hotline", "1700000000.9"]
    set_vars, sent = await run_agi_call(
        "127.0.0.1", port, "incoming", args=args, env={"agi_callerid": "17000000001"}
    )
    assert set_vars["CC_OPEN"] == "0" and set_vars["CC_PREFERRED_SEAT"] == "1003"
    assert any(line.startswith("EXEC MSet") for line in sent)  # one round trip for them all
    settings.clock = "2026-11-27T10:00:00"  # a working Friday
    set_vars, _ = await run_agi_call(
        "127.0.0.1", port, "incoming", args=args, env={"agi_callerid": "17000000002"}
    )
    assert (
        "CC_OPEN" not in set_vars and "CC_PREFERRED_SEAT" not in set_vars and set_vars["CC_ROUTE_OK"] == "1"
    )


async def test_a_caller_leaves_only_a_few_items_a_day(engine, settings):
    settings.caller_requests_daily_cap = 2
    port = engine.settings.agi_port
    answers = []
    for i in range(4):
        set_vars, _ = await run_agi_call(
            "127.0.0.1",
            port,
            "after_hours",
            args=["callback" if i % 2 else "voicemail", "96346", f"30.{i}", f"30.{i}"],
            env={"agi_callerid": "13919310009"},
        )
        answers.append(set_vars["CC_REQUEST_OK"])
    assert answers == ["1", "1", "0", "0"]  # the dialplan records nothing for the refused ones
    # Another caller still has their share.
    set_vars, _ = await run_agi_call(
        "127.0.0.1",
        port,
        "after_hours",
        args=["voicemail", "96346", "31.1", "31.1"],
        env={"agi_callerid": "13919310010"},
    )
    assert set_vars == {"CC_REQUEST_OK": "1"}
    # The writer counts in the database too (several engines, or a message that got through).
    folder = voicemail_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(3):
        (folder / f"40.{n}.wav").write_bytes(b"RIFF")
        engine.ivr.writer._write(
            {
                "kind": "voicemail",
                "did": "96346",
                "linkedid": f"40.{n}",
                "caller": "+8613919310011",
                "caller_raw": "13919310011",
                "resident_id": None,
                "recording": f"40.{n}.wav",
            }
        )
    assert (folder / "40.1.wav").exists() and not (folder / "40.2.wav").exists()
    with session_scope(settings) as s:
        assert len(s.exec(select(CallerRequest).where(CallerRequest.caller == "+8613919310011")).all()) == 2
        refused = s.exec(select(AuditEntry).where(AuditEntry.action == "caller_request.refused")).one()
        assert refused.target == "+8613919310011"
    # A restarted engine remembers today's items.
    engine.ivr.shares.load()
    assert not engine.ivr.shares.take("+8613919310011")
