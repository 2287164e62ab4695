"""Desk phones: a real softphone (baresip) set up with what the administrator's page shows once,
registered over UDP, TCP and TLS, answering a resident's queue call with audio both ways; a seat
with no registered phone is unavailable and offered no call."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import wave
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import select

from asterisk_conf import process, tls
from asterisk_conf.baresip import Baresip, SipAccount, free_sip_port
from asterisk_conf.sipp import place_call
from callcenter.accounts.models import Account, sip_digest
from callcenter.accounts.service import hash_password
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import console_login, open_console_ws
from tests.conftest import require
from tests.e2e.conftest import next_message, seat_console

pytestmark = pytest.mark.e2e

EXT = "1011"
QUEUE = "deskq"
DID = "96377"
RESIDENT_HZ = 1000.0  # the resident's tone (sipp rtp_stream)
PHONE_HZ = 440.0  # baresip's microphone (aufile)


def _tone(path: Path, hz: int, seconds: int, *encoding: str) -> Path:
    """A sine tone, 8 kHz mono, in the given sox output encoding."""
    command = [require("sox"), "-n", "-r", "8000", "-c", "1", *encoding, str(path)]
    subprocess.run(
        [*command, "synth", str(seconds), "sine", str(hz)], check=True, capture_output=True, timeout=30
    )
    return path


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {
        # the phone's microphone (a WAV baresip plays) and the resident's raw mu-law for sipp
        "phone": _tone(folder / "phone.wav", 440, 60, "-b", "16", "-e", "signed-integer"),
        "resident": _tone(folder / "resident.ul", 1000, 30, "-e", "u-law", "-t", "raw"),
    }


@pytest.fixture(scope="module")
def desk_seat(app) -> dict[str, str]:
    """Seat 1011, alone in its queue, created on the administrator's page with a TLS certificate
    in place; returns the SIP account the page showed once."""
    require("baresip")
    require("openssl")
    settings = app.settings
    tls.make_self_signed(settings, ["127.0.0.1", "localhost"])
    with session_scope(settings) as s:
        if (
            s.get(CallQueue, QUEUE) is None
            and not s.exec(select(CallQueue).where(CallQueue.name == QUEUE)).first()
        ):
            s.add(CallQueue(name=QUEUE, title="桌面话机测试", agent_timeout=10, wrapup=0))
            s.add(ServiceNumber(number=DID, title="话机测试号码", queue_name=QUEUE))
            s.commit()

    async def create() -> dict[str, str]:
        admin = await console_login(app.base_url, "admin", DEMO_PASSWORD)
        token = re.search(r'name="csrf" value="([^"]+)"', (await admin.get("/admin/accounts")).text).group(1)
        r = await admin.post(
            "/admin/accounts",
            data={
                "csrf": token,
                "username": f"seat{EXT}",
                "display_name": "桌面话机座席",
                "role": "seat",
                "extension": EXT,
                "queues": QUEUE,
            },
        )
        await admin.aclose()
        assert r.status_code == 201, r.text[-2000:]
        shown = dict(re.findall(r'data-field="(sip-[a-z]+)">([^<]+)<', r.text))
        shown["transports"] = dict(re.findall(r'data-transport="([a-z]+)" data-port="(\d+)"', r.text))
        return shown

    shown = asyncio.run(create())
    with session_scope(settings) as s:
        seat = s.exec(select(Account).where(Account.extension == EXT)).one()
        # The console login for this test (the phone's password is what the page showed)
        seat.password_hash = hash_password(DEMO_PASSWORD)
        seat.must_change_password = False
        s.add(seat)
        s.commit()
    asyncio.run(wait_cli(settings, "pjsip show transports", "transport-tls"))
    return shown


async def wait_cli(settings, command: str, text: str, present: bool = True, timeout: float = 20) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out = ""
    while loop.time() < deadline:
        out = await asyncio.to_thread(process.cli_command, settings, command)
        if (text in out) == present:
            return out
        await asyncio.sleep(0.2)
    raise AssertionError(f"{command!r}: {text!r} {'never' if present else 'still'} there:\n{out}")


async def wait_contacts(settings, endpoint: str, count: int, timeout: float = 20) -> str:
    """``pjsip show aor`` once the endpoint has ``count`` registered contacts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        out = await asyncio.to_thread(process.cli_command, settings, f"pjsip show aor {endpoint}")
        if len(re.findall(rf"^ +Contact: +{endpoint}/", out, flags=re.M)) == count:
            return out
        assert loop.time() < deadline, out
        await asyncio.sleep(0.2)


def account_for(shown: dict, transport: str) -> SipAccount:
    return SipAccount(
        server=shown["sip-server"],
        port=int(shown["transports"][transport]),
        transport=transport,
        username=shown["sip-username"],
        password=shown["sip-password"],
    )


def tone_share(path: Path, hz: float) -> float:
    """The median share of each 100 ms block's energy at ``hz`` (Goertzel), over blocks with sound."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
        width = w.getsampwidth()
    assert width == 2
    samples = [int.from_bytes(raw[i : i + 2], "little", signed=True) for i in range(0, len(raw), 2)]
    n = rate // 10
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    shares = []
    for start in range(0, len(samples) - n, n):
        block = samples[start : start + n]
        energy = sum(x * x for x in block)
        if energy < n * 100**2:  # silence
            continue
        s1 = s2 = 0.0
        for x in block:
            s1, s2 = x + coeff * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - coeff * s1 * s2
        shares.append(2 * power / (n * energy))
    return sorted(shares)[len(shares) // 2] if len(shares) >= 5 else 0.0


def test_the_admin_page_shows_the_sip_account_once_and_keeps_only_its_digest(desk_seat, app):
    assert desk_seat["sip-username"] == f"seat{EXT}" and len(desk_seat["sip-password"]) >= 24
    assert set(desk_seat["transports"]) == {"udp", "tcp", "tls"}
    with session_scope(app.settings) as s:
        seat = s.exec(select(Account).where(Account.extension == EXT)).one()
        assert seat.sip_digest == sip_digest(f"seat{EXT}", seat.sip_realm, desk_seat["sip-password"])
    etc = app.settings.asterisk_instance_dir() / "etc"
    pjsip = (etc / "pjsip.conf").read_text()
    assert desk_seat["sip-password"] not in pjsip and f"password_digest = md5:{seat.sip_digest}" in pjsip


async def test_a_seat_with_no_registered_phone_is_unavailable_and_not_offered_calls(desk_seat, app, ami):
    settings = app.settings
    await wait_cli(settings, f"pjsip show aor seat{EXT}", "Contact:  seat", present=False)
    client, console = await seat_console(app, f"seat{EXT}")
    state, _ = await next_message(console, lambda m: m.get("type") == "state" and m.get("ext") == EXT)
    assert state["state"] == "unavailable"
    supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
    board = await open_console_ws(app.base_url, supervisor, path="/ws/wallboard")
    snap, _ = await next_message(board, lambda m: m.get("type") == "snapshot")
    row = next(s for s in snap["seats"] if s["ext"] == EXT)
    assert row["state"] == "unavailable"
    result = await place_call(settings, did=DID, caller="13919310077", hold_ms=6000)
    await ami.wait_for("QueueCallerAbandon", Queue=QUEUE, CallerIDNum="13919310077", timeout=20)
    assert not [e for e in ami.events if e.get("Event") == "AgentCalled" and e.get("Queue") == QUEUE]
    assert result.calls == 1
    await board.close()
    await console.close()
    await client.aclose()
    await supervisor.aclose()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_baresip_registers_and_answers_a_queue_call_with_audio_both_ways(
    desk_seat, app, ami, tones, transport
):
    settings = app.settings
    client, console = await seat_console(app, f"seat{EXT}")
    phone = Baresip(account_for(desk_seat, transport), audio=tones["phone"], port=free_sip_port())
    with phone:
        out = await wait_cli(settings, f"pjsip show aor seat{EXT}", f"seat{EXT}/sip:")
        # Asterisk keeps the phone's contact with the transport it registered on
        contact = re.search(r"^ contact +: (\S+)", out, flags=re.M).group(1).lower()
        assert ("transport=tcp" in contact) == (transport == "tcp"), contact
        await ami.wait_for(
            "QueueMemberStatus", Queue=QUEUE, Interface=f"Local/{EXT}@cc-ring-seat/nm", Status="1"
        )
        await next_message(
            console, lambda m: m.get("type") == "state" and m.get("ext") == EXT and m["state"] == "available"
        )
        ami.events.clear()
        # A caller new to this seat (a returning one rings the seat's own queue first)
        caller = {"udp": "13919310021", "tcp": "13919310022"}[transport]
        call = asyncio.create_task(
            place_call(settings, did=DID, caller=caller, hold_ms=9000, audio=tones["resident"])
        )
        connect = await ami.wait_for(
            "AgentConnect", Queue=QUEUE, Interface=f"Local/{EXT}@cc-ring-seat/nm", timeout=30
        )
        seat_channel = connect["DestChannel"]
        base = f"desk-{transport}-{connect['DestUniqueid']}"
        # Each direction of the seat's leg in its own file (the CLI: the AMI users may not
        # run MixMonitor, which needs the "system" write class).
        await asyncio.to_thread(
            process.cli_command,
            settings,
            f"mixmonitor start {seat_channel} {base}.wav,r({base}-from-phone.wav)t({base}-to-phone.wav)",
        )
        result = await call
        assert result.ok, result.errors
        await ami.wait_for("Hangup", Channel=seat_channel, timeout=20)
    monitor = settings.asterisk_instance_dir() / "spool" / "monitor"
    from_phone, to_phone = monitor / f"{base}-from-phone.wav", monitor / f"{base}-to-phone.wav"
    for _ in range(50):
        if from_phone.exists() and to_phone.exists():
            break
        await asyncio.sleep(0.1)
    # What the phone sent is its 440 Hz microphone; what it was sent is the resident's 1 kHz.
    assert tone_share(from_phone, PHONE_HZ) > 0.5, phone.log_text[-2000:]
    assert tone_share(from_phone, RESIDENT_HZ) < 0.1
    assert tone_share(to_phone, RESIDENT_HZ) > 0.5
    assert tone_share(to_phone, PHONE_HZ) < 0.1
    await console.close()
    await client.aclose()


async def test_tls_transport_accepts_a_tls_registration(desk_seat, app):
    settings = app.settings
    phone = Baresip(
        account_for(desk_seat, "tls"),
        audio=Path("/dev/null"),
        port=free_sip_port(),
        ca_file=settings.data_dir / "tls" / "sip.crt",
    )
    with phone:
        out = await wait_cli(settings, f"pjsip show aor seat{EXT}", f"seat{EXT}/sip:")
        assert "transport=tls" in re.search(r"^ contact +: (\S+)", out, flags=re.M).group(1).lower(), out
    await wait_cli(settings, f"pjsip show aor seat{EXT}", f"seat{EXT}/sip:", present=False, timeout=15)
    # A wrong password is refused: the phone gets no contact.
    wrong = SipAccount(**{**account_for(desk_seat, "tls").__dict__, "password": "not-the-password"})
    with Baresip(wrong, audio=Path("/dev/null"), port=free_sip_port(), ca_file=phone.ca_file) as impostor:
        assert await asyncio.to_thread(impostor.wait_log, "403", 15) or "401" in impostor.log()
        out = await asyncio.to_thread(process.cli_command, settings, f"pjsip show aor seat{EXT}")
        assert f"seat{EXT}/sip:" not in out


@pytest.mark.browser
async def test_the_seats_console_says_no_phone_is_registered(desk_seat, app, tones, browser):
    settings = app.settings
    await wait_cli(settings, f"pjsip show aor seat{EXT}", f"seat{EXT}/sip:", present=False, timeout=15)
    page = await browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    await page.goto(app.base_url + "/login")
    await page.fill("#username", f"seat{EXT}")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(app.base_url + "/console")
    await page.wait_for_selector('#seat-state[data-state="unavailable"]', timeout=10000)
    assert "话机未注册" in (await page.text_content("#seat-state-reason") or "")
    with Baresip(account_for(desk_seat, "udp"), audio=tones["phone"], port=free_sip_port()):
        await page.wait_for_selector('#seat-state[data-state="available"]', timeout=15000)
        assert "话机未注册" not in (await page.text_content("#seat-state-reason") or "")
    await page.wait_for_selector('#seat-state[data-state="unavailable"]', timeout=15000)
    await page.close()


async def test_a_seat_with_two_phones_registered_rings_both_on_a_seat_call(desk_seat, app, ami, tones):
    """A desk phone and a second phone (softphone) on one seat: a call to the seat's extension
    rings every registered phone; the first to answer takes it, the other stops ringing."""
    settings = app.settings
    desk = Baresip(account_for(desk_seat, "udp"), audio=tones["phone"], port=free_sip_port())
    soft = Baresip(account_for(desk_seat, "tcp"), audio=tones["phone"], port=free_sip_port())
    with desk, soft:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            out = await asyncio.to_thread(process.cli_command, settings, f"pjsip show aor seat{EXT}")
            if len(re.findall(r"^ +Contact: +seat", out, flags=re.M)) == 2:
                break
            assert loop.time() < deadline, (
                f"{out}\n--- udp phone:\n{desk.log()}\n--- tcp phone:\n{soft.log()}"
            )
            await asyncio.sleep(0.2)
        ami.events.clear()
        reply = await ami.manager.send_action(
            {
                "Action": "Originate",
                "Channel": f"Local/{EXT}@seats",
                "Application": "Wait",
                "Data": "2",
                "CallerID": "<1001>",
                "Async": "true",
            },
            as_list=False,
        )
        assert reply.get("Response") == "Success", reply
        await ami.wait_for(
            lambda e: (
                len(
                    [
                        x
                        for x in ami.events
                        if x.get("Event") == "DialEnd"
                        and str(x.get("DestChannel", "")).startswith(f"PJSIP/seat{EXT}-")
                    ]
                )
                >= 2
            ),
            timeout=20,
        )
        begun = ami.seen("DialBegin", DestChannel=f"PJSIP/seat{EXT}-")
        ended = ami.seen("DialEnd", DestChannel=f"PJSIP/seat{EXT}-")
        assert len(begun) == 2, begun
        assert sorted(e["DialStatus"] for e in ended) == ["ANSWER", "CANCEL"], ended


async def test_a_queue_call_rings_every_registered_phone_of_the_seat(desk_seat, app, ami, tones):
    """A queue dialling PJSIP/<endpoint> would ring only the first contact (Asterisk issue #837):
    the seat is a Local member that dials every contact. A desk phone that lets it ring and a
    softphone that answers are registered on the seat: both ring, the softphone takes the call
    with audio both ways, the desk phone stops ringing, and the seat gets the pop."""
    settings = app.settings
    client, console = await seat_console(app, f"seat{EXT}")
    desk = Baresip(
        replace(account_for(desk_seat, "udp"), answermode="manual"),
        audio=tones["phone"],
        port=free_sip_port(),
    )
    soft = Baresip(account_for(desk_seat, "tcp"), audio=tones["phone"], port=free_sip_port())
    with desk, soft:
        await wait_contacts(settings, f"seat{EXT}", 2)
        await next_message(
            console, lambda m: m.get("type") == "state" and m.get("ext") == EXT and m["state"] == "available"
        )
        ami.events.clear()
        call = asyncio.create_task(
            place_call(settings, did=DID, caller="13919310023", hold_ms=9000, audio=tones["resident"])
        )
        await ami.wait_for("AgentConnect", Queue=QUEUE, Interface=f"Local/{EXT}@cc-ring-seat/nm", timeout=30)
        answered = await ami.wait_for(
            lambda e: (
                e.get("Event") == "DialEnd"
                and e.get("DialStatus") == "ANSWER"
                and str(e.get("DestChannel", "")).startswith(f"PJSIP/seat{EXT}-")
            ),
            timeout=10,
        )
        seat_channel = answered["DestChannel"]
        base = f"both-phones-{answered['DestUniqueid']}"
        await asyncio.to_thread(
            process.cli_command,
            settings,
            f"mixmonitor start {seat_channel} {base}.wav,r({base}-from-phone.wav)t({base}-to-phone.wav)",
        )
        pop, _ = await next_message(console, lambda m: m.get("type") == "pop", timeout=10)
        assert pop["linkedid"] == answered["Linkedid"]
        begun = ami.seen("DialBegin", DestChannel=f"PJSIP/seat{EXT}-")
        assert len(begun) == 2, begun
        ended = await ami.wait_for(
            lambda e: (
                e.get("Event") == "DialEnd"
                and e.get("DialStatus") == "CANCEL"
                and str(e.get("DestChannel", "")).startswith(f"PJSIP/seat{EXT}-")
            ),
            timeout=10,
        )
        assert ended["DestChannel"] != seat_channel
        # The desk phone rang (its contact was dialled) and was left alone once the softphone answered.
        assert desk.running() and soft.running()
        result = await call
        assert result.ok, result.errors
        await ami.wait_for("Hangup", Channel=seat_channel, timeout=20)
    monitor = settings.asterisk_instance_dir() / "spool" / "monitor"
    from_phone, to_phone = monitor / f"{base}-from-phone.wav", monitor / f"{base}-to-phone.wav"
    for _ in range(50):
        if from_phone.exists() and to_phone.exists():
            break
        await asyncio.sleep(0.1)
    assert tone_share(from_phone, PHONE_HZ) > 0.5, soft.log_text[-2000:]
    assert tone_share(to_phone, RESIDENT_HZ) > 0.5
    await console.close()
    await client.aclose()
