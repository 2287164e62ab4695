"""Call control through the real Asterisk: transfers ending on the right seat,
hang-up, click-to-call, listen-in, recordings, queue login, reload during a call."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time

import pytest
from sqlmodel import select

from asterisk_conf.apply import reload_running
from asterisk_conf.render import render_config
from asterisk_conf.sipp import SippUAS, place_call
from asterisk_conf.sipp_media import MediaUAS
from callcenter.accounts.models import Account
from callcenter.audit.models import AuditEntry
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from callcenter.statistics.follower import queue_log_path
from callcenter.statistics.queue_log import parse_line
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import console_login
from tests.e2e.conftest import (
    OUTSIDE_PORT,
    SEAT2_PORT,
    SEAT_PORT,
    SUPERVISOR_PORT,
    TRUNK12345_PORT,
    next_message,
    seat_console,
)

pytestmark = pytest.mark.e2e

SEAT2 = "1006"  # a seat in no queue: only transfers reach its phone
SUPERVISOR_EXT = "1900"


@pytest.fixture(scope="module")
def phones(app):
    """Seat 1006 (no queue) and the supervisor's phone, configured in Asterisk by a reload."""
    from callcenter.accounts.service import hash_password

    settings = app.settings
    with session_scope(settings) as s:
        if s.exec(select(Account).where(Account.extension == SEAT2)).first() is None:
            s.add(
                Account(
                    username=f"seat{SEAT2}",
                    display_name="转接座席",
                    password_hash=hash_password(DEMO_PASSWORD),
                    role="seat",
                    extension=SEAT2,
                    sip_contact=f"sip:seat{SEAT2}@127.0.0.1:{SEAT2_PORT}",
                )
            )
        boss = s.exec(select(Account).where(Account.username == "supervisor")).one()
        boss.extension = SUPERVISOR_EXT
        boss.sip_contact = f"sip:seat{SUPERVISOR_EXT}@127.0.0.1:{SUPERVISOR_PORT}"
        s.add(boss)
        s.commit()
    render_config(settings)
    asyncio.run(reload_running(settings))
    time.sleep(5.5)  # the engine's directory cache (5 s) sees the new seat
    return settings


async def csrf_client(app, username: str):
    client = await console_login(app.base_url, username, DEMO_PASSWORD)
    page = await client.get("/console" if username.startswith("seat") else "/wallboard")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.headers["X-CSRF-Token"] = token
    return client


async def answered_call(ami, n_before: int, timeout: float = 30) -> dict:
    """The next AgentConnect (after ``n_before`` of them) for seat 1001. Its ``DestChannel`` is the
    seat's leg in the caller's bridge (the member's Local channel); ``PhoneChannel`` is added: the
    channel of the seat's phone that answered, which the app's call control acts on."""

    def pred(e):
        return e.get("Event") == "AgentConnect" and e.get("Interface") == "Local/1001@cc-ring-seat/nm"

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [e for e in ami.events if pred(e)]
        if len(hits) > n_before:
            connect = hits[n_before]
            phone = await ami.wait_for(
                lambda e, linkedid=connect["Linkedid"]: (
                    e.get("Event") == "DialEnd"
                    and e.get("DialStatus") == "ANSWER"
                    and e.get("Linkedid") == linkedid
                    and e.get("DestChannel", "").startswith("PJSIP/seat1001-")
                ),
                timeout=10,
            )
            return {**connect, "PhoneChannel": phone["DestChannel"]}
        await asyncio.sleep(0.05)
    raise AssertionError("seat 1001 never answered")


def connects(ami) -> int:
    return sum(
        1
        for e in ami.events
        if e.get("Event") == "AgentConnect" and e.get("Interface") == "Local/1001@cc-ring-seat/nm"
    )


async def wait_model(seconds: float = 0.5) -> None:
    # The engine applies AgentConnect from its own AMI connection: give it a moment.
    await asyncio.sleep(seconds)


def bridged_with(ami, channel_prefix: str, linkedid: str) -> list[dict]:
    return [
        e
        for e in ami.events
        if e.get("Event") == "BridgeEnter"
        and e.get("Channel", "").startswith(channel_prefix)
        and e.get("Linkedid") == linkedid
    ]


async def test_blind_transfer_ends_on_the_target_seat(phones, app, ami):
    settings = phones
    seat = await csrf_client(app, "seat1001")
    async with (
        SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=None),
        SippUAS(port=SEAT2_PORT, ring_ms=300) as target,
    ):
        n = connects(ami)
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=14000))
        connect = await answered_call(ami, n)
        linkedid = connect["Linkedid"]
        await wait_model()
        r = await seat.post(
            "/api/call/transfer",
            json={"linkedid": linkedid, "mode": "blind", "kind": "seat", "target": SEAT2},
        )
        assert r.status_code == 202, r.text
        # The caller's channel is bridged with seat 1006's phone; seat 1001's leg is gone.
        await ami.wait_for(lambda e: bool(bridged_with(ami, f"PJSIP/seat{SEAT2}-", linkedid)), timeout=15)
        await ami.wait_for("Hangup", Channel=connect["DestChannel"])
        result = await call
        assert result.ok, result.output
        ended = await ami.wait_for("Hangup", Channel=connect["Channel"], timeout=10)
        assert ended["ConnectedLineNum"] == SEAT2, ended
        with session_scope(settings) as s:
            logged = s.exec(select(AuditEntry).where(AuditEntry.action == "call.transfer")).all()
        assert [(e.actor, e.target, e.detail["mode"], e.detail["linkedid"]) for e in logged][-1] == (
            "seat1001",
            SEAT2,
            "blind",
            linkedid,
        )
        await asyncio.sleep(1.2)  # sipp writes its statistics every second
        assert int(target.stats().get("SuccessfulCall(C)", 0)) >= 1
    await seat.aclose()


async def test_attended_transfer_ends_on_the_target_seat(phones, app, ami):
    settings = phones
    seat = await csrf_client(app, "seat1001")
    # Seat 1001 hangs up 6 s after answering: that completes the attended transfer.
    async with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=6000), SippUAS(port=SEAT2_PORT, ring_ms=300):
        n = connects(ami)
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=16000))
        connect = await answered_call(ami, n)
        linkedid = connect["Linkedid"]
        await wait_model()
        r = await seat.post(
            "/api/call/transfer",
            json={"linkedid": linkedid, "mode": "attended", "kind": "seat", "target": SEAT2},
        )
        assert r.status_code == 202, r.text
        done = await ami.wait_for("AttendedTransfer", timeout=20)
        assert done["Result"] == "Success", done
        assert done["OrigTransfererChannel"] == connect["DestChannel"]
        # The caller talks to seat 1006 until the caller hangs up.
        result = await call
        assert result.ok, result.output
        ended = await ami.wait_for("Hangup", Channel=connect["Channel"], timeout=10)
        assert ended["ConnectedLineNum"] == SEAT2, ended
        assert bridged_with(ami, f"PJSIP/seat{SEAT2}-", linkedid)
    await seat.aclose()


async def test_hang_up_only_ones_own_call(phones, app, ami):
    settings = phones
    seat = await csrf_client(app, "seat1001")
    other, other_ws = await seat_console(app, "seat1002")
    page = await other.get("/console")
    other.headers["X-CSRF-Token"] = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    async with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=None):
        n = connects(ami)
        started = time.monotonic()
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=30000))
        connect = await answered_call(ami, n)
        await wait_model()
        # Another seat may not hang it up: refused by the engine, the call goes on.
        r = await other.post("/api/call/hangup", json={"linkedid": connect["Linkedid"]})
        assert r.status_code == 202
        refused, _ = await next_message(other_ws, lambda m: m.get("type") == "callcontrol", timeout=10)
        assert refused["ok"] is False and refused["error"] == "not your call"
        assert not ami.seen("Hangup", Channel=connect["DestChannel"])
        # No CSRF token: refused at the door.
        r = await seat.post(
            "/api/call/hangup", json={"linkedid": connect["Linkedid"]}, headers={"X-CSRF-Token": "x"}
        )
        assert r.status_code == 403
        r = await seat.post("/api/call/hangup", json={"linkedid": connect["Linkedid"]})
        assert r.status_code == 202
        await ami.wait_for("Hangup", Channel=connect["DestChannel"], timeout=10)
        result = await call
        assert result.ok and time.monotonic() - started < 25  # ended by the seat, not the caller
    await other_ws.close()
    await other.aclose()
    await seat.aclose()


async def test_click_to_call_rings_the_seat_then_the_resident_with_the_service_number(phones, app, ami):
    seat = await csrf_client(app, "seat1001")
    async with (
        SippUAS(port=SEAT_PORT, ring_ms=200, talk_ms=None),
        SippUAS(port=OUTSIDE_PORT, ring_ms=300, talk_ms=None, trace=True) as resident,
    ):
        r = await seat.post("/api/call/dial", json={"number": "139 1931 0001"})
        assert r.status_code == 202
        # The seat's phones first (through the seat's member interface, as a queue call rings
        # them), then the resident, from the hotline's number. The call is the Local channel's.
        seat_leg = await ami.wait_for(
            lambda e: (
                e.get("Event") == "Newchannel"
                and e.get("Channel", "").startswith("Local/1001@cc-ring-seat-")
                and e.get("Uniqueid") == e.get("Linkedid")
            )
        )
        phone = await ami.wait_for(
            lambda e: (
                e.get("Event") == "Newchannel"
                and e.get("Channel", "").startswith("PJSIP/seat1001-")
                and e.get("Linkedid") == seat_leg["Uniqueid"]
            )
        )
        out = await ami.wait_for("Newchannel", Channel="PJSIP/cc-outbound-", timeout=15)
        assert out["Linkedid"] == seat_leg["Uniqueid"]
        await ami.wait_for("BridgeEnter", Channel=out["Channel"], timeout=15)
        # Another seat may not end it; the seat hangs it up from the console.
        other = await csrf_client(app, "seat1002")
        assert (
            await other.post("/api/call/hangup", json={"linkedid": seat_leg["Uniqueid"]})
        ).status_code == 202
        await asyncio.sleep(1)
        assert not ami.seen("Hangup", Channel=out["Channel"])
        await other.aclose()
        r = await seat.post("/api/call/hangup", json={"linkedid": seat_leg["Uniqueid"]})
        assert r.status_code == 202
        await ami.wait_for("Hangup", Channel=phone["Channel"], timeout=10)
        await ami.wait_for("Hangup", Channel=out["Channel"], timeout=10)
        invite = resident.messages().split("INVITE sip:", 1)[1].split("\n\n", 1)[0]
        assert invite.startswith("13919310001@")  # digits only: the spaces are gone
        assert re.search(r"From: [^\n]*<sip:96345@", invite), invite
    # The seat's call record: the resident called, the recording named.
    rec = _record(phones, seat_leg["Uniqueid"])
    assert rec.seat == "1001" and rec.source == "outbound" and rec.caller == "+8613919310001"
    assert rec.recording == f"{seat_leg['Uniqueid']}.wav"
    await seat.aclose()


async def test_supervisor_listens_whispers_barges_and_seats_may_not(phones, app, ami):
    settings = phones
    boss = await csrf_client(app, "supervisor")
    seat = await csrf_client(app, "seat1001")
    r = await seat.post("/api/spy", json={"ext": "1001", "mode": "listen"})
    assert r.status_code == 403
    async with (
        MediaUAS(port=SEAT_PORT, ring_ms=300, talk_ms=None),
        MediaUAS(port=SUPERVISOR_PORT, ring_ms=200, talk_ms=2000),
    ):
        # (Phones that send sound, as real phones do: ChanSpy notices the supervisor's hang-up
        # only when it has frames to handle.)
        n = connects(ami)
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=20000))
        connect = await answered_call(ami, n)
        await wait_model()
        spyers: set[str] = set()
        for mode, option in (("listen", "qE"), ("whisper", "qwE"), ("barge", "qBE")):
            r = await boss.post("/api/spy", json={"ext": "1001", "mode": mode})
            assert r.status_code == 202, r.text
            start = await ami.wait_for(
                lambda e: (
                    e.get("Event") == "ChanSpyStart"
                    and e.get("SpyeeChannel") == connect["PhoneChannel"]
                    and e.get("SpyerChannel", "").startswith(f"PJSIP/seat{SUPERVISOR_EXT}-")
                    and e.get("SpyerChannel") not in spyers
                ),
                timeout=15,
            )
            spyers.add(start["SpyerChannel"])
            answered = ami.seen("OriginateResponse", Channel=start["SpyerChannel"])
            assert answered and answered[0]["Data"] == f"{connect['PhoneChannel']},{option}", answered
        assert not ami.seen("Hangup", Channel=connect["PhoneChannel"])
        assert (await call).ok
    with session_scope(settings) as s:
        actions = {a.action for a in s.exec(select(AuditEntry).where(AuditEntry.actor == "supervisor")).all()}
    assert {"call.listen", "call.whisper", "call.barge"} <= actions
    await boss.aclose()
    await seat.aclose()


def _record(settings, linkedid: str, timeout: float = 10) -> CallRecord:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with session_scope(settings) as s:
            rec = s.exec(select(CallRecord).where(CallRecord.linkedid == linkedid)).first()
            if rec:
                return rec
        time.sleep(0.2)
    raise AssertionError(f"no call record for {linkedid}")


async def test_answered_call_is_recorded_with_sound_played_and_downloaded_with_audit(phones, app, ami):
    settings = phones
    async with MediaUAS(port=SEAT_PORT, ring_ms=300, talk_ms=None):
        n = connects(ami)
        result = await place_call(settings, did="96345", caller="13919310001", hold_ms=9000)
        assert result.ok
        connect = await answered_call(ami, n)
    linkedid = connect["Linkedid"]
    rec = _record(settings, linkedid)
    assert rec.recording == f"{connect['Uniqueid']}.wav"
    path = settings.asterisk_instance_dir() / "spool" / "monitor" / rec.recording
    deadline = time.time() + 10
    while not path.exists() and time.time() < deadline:
        await asyncio.sleep(0.2)
    # Seconds of 8 kHz 16-bit sound (only while sound flows), and not silence.
    assert path.stat().st_size > 16_000, path.stat().st_size  # over a second
    stat = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True).stderr
    rms = float(re.search(r"RMS\s+amplitude:\s+([0-9.]+)", stat).group(1))
    assert rms > 0.001, stat

    seat = await csrf_client(app, "seat1001")
    r = await seat.get(f"/api/recordings/{linkedid}")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and len(r.content) == path.stat().st_size
    r = await seat.get(f"/api/recordings/{linkedid}?download=1")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    other = await csrf_client(app, "seat1002")
    assert (await other.get(f"/api/recordings/{linkedid}")).status_code == 403
    boss = await csrf_client(app, "supervisor")
    assert (await boss.get(f"/api/recordings/{linkedid}")).status_code == 200
    with session_scope(settings) as s:
        entries = s.exec(select(AuditEntry).where(AuditEntry.target == f"call:{linkedid}")).all()
    assert sorted((e.actor, e.action) for e in entries) == [
        ("seat1001", "recording.download"),
        ("seat1001", "recording.play"),
        ("supervisor", "recording.play"),
    ]
    for client in (seat, other, boss):
        await client.aclose()


async def test_queue_login_and_logout_survive_an_app_restart(phones, app, ami):
    from callcenter.directory.models import CallQueue

    settings = phones
    with session_scope(settings) as s:
        if s.exec(select(CallQueue).where(CallQueue.name == "helpdesk")).first() is None:
            s.add(CallQueue(name="helpdesk", title="协助队列", strategy="rrmemory", agent_timeout=15))
            s.commit()
    await asyncio.to_thread(render_config, settings)
    await reload_running(settings)
    await asyncio.sleep(5.5)  # the engine's directory cache
    client, ws = await seat_console(app, "seat1001")
    page = await client.get("/console")
    client.headers["X-CSRF-Token"] = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    queues = (await client.get("/api/seat/queues")).json()
    assert {"name": "helpdesk", "title": "协助队列", "static": False} in queues
    assert any(q["name"] == "hotline" and q["static"] for q in queues)

    r = await client.post("/api/seat/queues", json={"queue": "helpdesk", "login": True})
    assert r.status_code == 202
    state, _ = await next_message(
        ws, lambda m: m.get("type") == "state" and "helpdesk" in m.get("queues", [])
    )
    # The app restarts: the seat's queues come back from Asterisk (QueueStatus), not from memory.
    await ws.close()
    await client.aclose()
    app.stop()
    app.start()
    client, ws = await seat_console(app, "seat1001")
    page = await client.get("/console")
    client.headers["X-CSRF-Token"] = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    state, _ = await next_message(ws, lambda m: m.get("type") == "state")
    assert "helpdesk" in state["queues"] and "hotline" in state["queues"]
    r = await client.post("/api/seat/queues", json={"queue": "helpdesk", "login": False})
    assert r.status_code == 202
    await ami.wait_for("QueueMemberRemoved", Queue="helpdesk", Interface="Local/1001@cc-ring-seat/nm")
    state, _ = await next_message(
        ws, lambda m: m.get("type") == "state" and "helpdesk" not in m.get("queues", [])
    )
    assert "hotline" in state["queues"]
    await ws.close()
    await client.aclose()


async def test_reload_during_a_live_call_does_not_drop_it(phones, app, ami):
    settings = phones
    async with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=None):
        n = connects(ami)
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=10000))
        connect = await answered_call(ami, n)
        # Re-render everything and reload pjsip, queues and the dialplan, twice, mid-call.
        for _ in range(2):
            await asyncio.to_thread(render_config, settings)
            await reload_running(settings)
        reason, talk_s = await completed(settings, ami, connect["Uniqueid"])
        assert reason == "caller" and talk_s >= 7, (reason, talk_s)
        assert (await call).ok


ENDS = {"COMPLETECALLER": "caller", "COMPLETEAGENT": "agent"}  # queue_log's, as AgentComplete's Reason


async def completed(settings, ami, uniqueid: str, timeout: float = 30.0) -> tuple[str, int]:
    """Who ended a queue call and its talk time, as Asterisk tells: its AgentComplete event or its
    queue_log line. Once in CI the AMI event of a call whose queues were reloaded mid-call never
    came, while queue_log had COMPLETECALLER with the whole talk time: the call was not dropped."""
    path = queue_log_path(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in ami.seen("AgentComplete", Uniqueid=uniqueid):
            return event["Reason"], int(event["TalkTime"])
        for entry in filter(None, map(parse_line, path.read_text(errors="replace").splitlines())):
            if entry.callid == uniqueid and entry.event in ENDS:
                return ENDS[entry.event], int(entry.get("calltime") or 0)
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {uniqueid}: no AgentComplete and no COMPLETE line in queue_log")


async def test_a_12345_call_goes_back_to_12345_with_its_order_number(phones, app, ami):
    settings = phones
    seat = await csrf_client(app, "seat1001")
    async with (
        SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=None),
        SippUAS(port=TRUNK12345_PORT, ip=settings.trunk12345_match, ring_ms=300, trace=True) as platform,
    ):
        n = connects(ami)
        call = asyncio.create_task(
            place_call(
                settings,
                did="12345",
                caller="13800001111",
                headers={settings.header_12345_order: "GS2026112800999"},
                source_ip=settings.trunk12345_match,
                hold_ms=12000,
            )
        )
        connect = await answered_call(ami, n)
        await wait_model()
        r = await seat.post(
            "/api/call/transfer", json={"linkedid": connect["Linkedid"], "mode": "blind", "kind": "12345"}
        )
        assert r.status_code == 202
        await ami.wait_for("Hangup", Channel=connect["DestChannel"], timeout=15)
        assert (await call).ok
        ended = await ami.wait_for("Hangup", Channel=connect["Channel"], timeout=10)
        assert ended["ConnectedLineNum"] == "12345", ended
        invite = platform.messages().split("INVITE sip:", 1)[1].split("\n\n", 1)[0]
    assert invite.startswith(f"12345@{settings.trunk12345_match}:{TRUNK12345_PORT}")
    assert "X-12345-OrderNo: GS2026112800999" in invite, invite
    await seat.aclose()


async def test_blind_transfer_to_an_outside_number(phones, app, ami):
    settings = phones
    seat = await csrf_client(app, "seat1001")
    async with (
        SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=None),
        SippUAS(port=OUTSIDE_PORT, ring_ms=300, trace=True) as outside,
    ):
        n = connects(ami)
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=10000))
        connect = await answered_call(ami, n)
        await wait_model()
        r = await seat.post(
            "/api/call/transfer",
            json={
                "linkedid": connect["Linkedid"],
                "mode": "blind",
                "kind": "outside",
                "target": "0931-8123456",
            },
        )
        assert r.status_code == 202
        assert (await call).ok
        ended = await ami.wait_for("Hangup", Channel=connect["Channel"], timeout=10)
        assert ended["ConnectedLineNum"] == "09318123456", ended
        assert outside.messages().split("INVITE sip:", 1)[1].startswith("09318123456@")
    await seat.aclose()
