"""The browser phone for real: Chromium with a fake microphone that plays 440 Hz registers seat
1003 through the console's /sip relay; a resident (sipp) speaking 1 kHz calls the browser
seat's number; the page rings with the pop, the test clicks answer, and Asterisk records each
direction of the seat's leg separately (MixMonitor r()/t()): 440 Hz must be in what the browser
sends, 1 kHz in what it receives. Mute silences the seat's leg, hold plays music on hold to the
resident, a keypad key reaches Asterisk as DTMF, and after an Asterisk restart the phone
registers again by itself and the next call rings."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import pytest
from sqlmodel import select

from asterisk_conf import process
from asterisk_conf.baresip import Baresip, SipAccount, free_sip_port
from asterisk_conf.sipp import place_call
from asterisk_conf.sipp_media import MediaUAS
from asterisk_conf.tones import read_wav, tone_share, write_tone_pcap, write_tone_wav
from callcenter.accounts.models import Account
from callcenter.accounts.service import hash_password
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import console_login
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, missing_part, require
from tests.e2e.conftest import BROWSER_DID, BROWSER_EXT, BROWSER_EXT2, OUTSIDE_PORT
from tests.web_console.test_visual_browser import on_screen

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SEAT = f"seat{BROWSER_EXT}"
PHONE = f"PJSIP/{SEAT}"  # the browser seat's endpoint (its phone's channels: PHONE-<n>)
INTERFACE = f"Local/{BROWSER_EXT}@cc-ring-seat/nm"  # the seat as a queue member


def fake_media_args(tone: Path) -> list[str]:
    """Chromium with a microphone that plays ``tone`` and no permission prompt."""
    return [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={tone}",
        "--autoplay-policy=no-user-gesture-required",
    ]


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {
        "seat": write_tone_wav(folder / "seat440.wav", 440, 10),
        "resident": write_tone_pcap(folder / "resident1k.pcap", 1000, 90),
    }


@pytest.fixture
async def phone_browser(tones):
    if not CHROMIUM.exists():
        missing_part(f"{CHROMIUM} is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=fake_media_args(tones["seat"]), headless=True
        )
        try:
            yield b
        finally:
            await b.close()


async def phone_page(browser, app, username: str = SEAT):
    page = await browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    await page.goto(app.base_url + "/login")
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(app.base_url + "/console")
    return page


async def registered(page, timeout: float = 15000) -> None:
    await page.wait_for_selector('#phone-status[data-phone="registered"]', timeout=timeout)


async def agent_connect(ami, after: int, timeout: float = 20) -> dict:
    """The first AgentConnect of the browser seat after ``after`` earlier ones."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in ami.seen("AgentConnect") if e.get("Interface") == INTERFACE]
        if len(found) > after:
            return found[after]
        await asyncio.sleep(0.05)
    raise AssertionError("the browser seat was never connected")


async def answered_by(ami, connect: dict, prefix: str, timeout: float = 10) -> str:
    """The phone channel (``prefix``-...) that answered the queue call of ``connect``: the queue
    rings the seat through a Local channel, which dials the seat's phones."""
    answered = await ami.wait_for(
        lambda e: (
            e.get("Event") == "DialEnd"
            and e.get("DialStatus") == "ANSWER"
            and e.get("Linkedid") == connect["Linkedid"]
            and str(e.get("DestChannel", "")).startswith(prefix)
        ),
        timeout=timeout,
    )
    return answered["DestChannel"]


async def stats(page) -> dict:
    return await page.evaluate("() => window.ccPhone.stats()")


async def media_for(page, ms: int) -> dict:
    """Wait until the browser has received ``ms`` more milliseconds of RTP (20 ms packets)."""
    start = (await stats(page))["packetsReceived"]
    deadline = time.monotonic() + ms / 1000 + 10
    while time.monotonic() < deadline:
        now = await stats(page)
        if now["packetsReceived"] - start >= ms // 20:
            return now
        await asyncio.sleep(0.1)
    raise AssertionError(f"the browser received no audio for {ms} ms")


class Recorder:
    """MixMonitor on the seat's channel with each direction in its own file: r() what the
    browser sent, t() what Asterisk sent to it (files in the instance's spool/monitor)."""

    def __init__(self, ami, settings, channel: str) -> None:
        self.settings = settings
        self.ami = ami
        self.channel = channel
        self.folder = settings.asterisk_instance_dir() / "spool" / "monitor"

    async def cli(self, command: str) -> str:
        return await asyncio.to_thread(process.cli_command, self.settings, command)

    async def record(self, page, ms: int) -> tuple[Path, Path]:
        name = f"webrtc-{uuid.uuid4().hex[:10]}"
        stops = len(self.ami.seen("MixMonitorStop", Channel=self.channel))
        # The CLI, as an operator would: the AMI action needs the "system" right our users lack.
        await self.cli(
            f"mixmonitor start {self.channel} {name}.wav,r({name}-from-seat.wav)t({name}-to-seat.wav)"
        )
        await media_for(page, ms)
        await self.cli(f"mixmonitor stop {self.channel}")
        await self.ami.wait_for(lambda e: len(self.ami.seen("MixMonitorStop", Channel=self.channel)) > stops)
        files = (self.folder / f"{name}-from-seat.wav", self.folder / f"{name}-to-seat.wav")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(f.exists() and f.stat().st_size > 8000 for f in files):
            await asyncio.sleep(0.1)
        return files


def shares(path: Path) -> dict[int, float]:
    samples, rate = read_wav(path)
    return {hz: tone_share(samples, rate, hz) for hz in (440, 1000)}


async def test_browser_seat_answers_and_audio_flows_both_ways(app, ami, phone_browser, tones):
    page = await phone_page(phone_browser, app)
    await registered(page)
    assert await page.evaluate("() => window.ccPhone.state().leader") is True
    before = len([e for e in ami.seen("AgentConnect") if e.get("Interface") == INTERFACE])

    call = asyncio.create_task(
        place_call(
            app.settings, did=BROWSER_DID, caller="13919310350", hold_ms=90000, audio=tones["resident"]
        )
    )
    try:
        # The page rings and the pop shows, together.
        await page.wait_for_selector('#phone[data-call="ringing"]', timeout=20000)
        await page.wait_for_selector('#pop[data-state="ringing"]', timeout=10000)
        await page.wait_for_function("() => document.title.includes('☎')", timeout=3000)
        await page.click('[data-phone="answer"]')
        connect = await agent_connect(ami, before)
        channel = await answered_by(ami, connect, PHONE + "-")
        await page.wait_for_selector('#phone[data-call="talking"]', timeout=5000)
        # At 1366x768 the pop, the call's controls, the order form and this phone share the screen.
        await page.set_viewport_size({"width": 1366, "height": 768})
        await page.wait_for_selector('#pop[data-state="talking"]', timeout=5000)
        await page.wait_for_selector("#order-panel:not([hidden])", timeout=5000)
        assert await on_screen(page, (1366, 768)) == {}
        recorder = Recorder(ami, app.settings, channel)
        # The level meter moves with the seat's (fake) microphone; the device lists are filled.
        await page.wait_for_function(
            "() => document.querySelector('[data-field=\"phone-level\"]').value > 0.05", timeout=5000
        )
        assert await page.locator('[data-phone="mic"] option').count() >= 2

        # Two-way audio: 440 Hz from the browser, 1 kHz to it.
        from_seat, to_seat = await recorder.record(page, 3000)
        heard = shares(from_seat)
        sent = shares(to_seat)
        assert heard[440] > 0.6 and heard[1000] < 0.1, heard
        assert sent[1000] > 0.6 and sent[440] < 0.1, sent
        counters = await stats(page)
        assert counters["packetsReceived"] > 100 and counters["packetsSent"] > 100, counters

        # Mute: the seat's leg goes silent (no 440 Hz reaches Asterisk), then comes back.
        await page.click('[data-phone="mute"]')
        await page.wait_for_selector('[data-phone="mute"][aria-pressed="true"]')
        muted_from_seat, _ = await recorder.record(page, 2000)
        assert shares(muted_from_seat)[440] < 0.05
        await page.click('[data-phone="mute"]')
        await page.wait_for_selector('[data-phone="mute"][aria-pressed="false"]')

        # A keypad key reaches Asterisk as RFC 4733 DTMF from the seat's channel.
        await page.click('[data-field="phone-keypad"] [data-key="5"]')
        await ami.wait_for("DTMFEnd", Channel=channel, Digit="5", Direction="Received", timeout=10)

        # Hold: Asterisk plays music on hold to the resident; resume ends it.
        await page.click('[data-phone="hold"]')
        await ami.wait_for("Hold", Channel=channel, timeout=10)
        await ami.wait_for("MusicOnHoldStart", Channel=connect["Channel"], timeout=10)
        await page.wait_for_selector('[data-phone="hold"][aria-pressed="true"]')
        await page.click('[data-phone="hold"]')
        await ami.wait_for("Unhold", Channel=channel, timeout=10)
        await page.wait_for_selector('[data-phone="hold"][aria-pressed="false"]')

        await page.click('[data-phone="hangup"]')
        await page.wait_for_selector('#phone[data-call="idle"]', timeout=10000)
        assert (await asyncio.wait_for(call, 30)).ok
    finally:
        if not call.done():
            await ami.manager.send_action({"Action": "Hangup", "Channel": f"/^{PHONE}-.*/"}, as_list=False)
            await asyncio.wait_for(call, 30)
        await page.close()


async def test_click_to_call_rings_the_browser_phone_which_answers_by_itself(app, ami, phone_browser):
    page = await phone_page(phone_browser, app)
    await registered(page)
    await page.wait_for_selector('#conn[data-conn="online"]', timeout=10000)
    # The resident answers and speaks (Debian's G.711 speech pcap).
    async with MediaUAS(port=OUTSIDE_PORT, ring_ms=300, talk_ms=None):
        await page.fill('[data-form="dial"] [name="number"]', "139 1931 0352")
        await page.click('[data-form="dial"] [type="submit"]')
        # The seat's own phone rings first (through the seat's member interface, the Local
        # channel that starts the call) and is answered without a second click.
        start = await ami.wait_for("Newchannel", Channel=f"Local/{BROWSER_EXT}@cc-ring-seat-", timeout=15)
        seat_leg = await ami.wait_for("Newchannel", Channel=PHONE + "-", timeout=15)
        assert seat_leg["Linkedid"] == start["Linkedid"] == start["Uniqueid"]
        await page.wait_for_selector('#phone[data-call="talking"]', timeout=10000)
        out = await ami.wait_for("Newchannel", Channel="PJSIP/cc-outbound-", timeout=15)
        assert out["Linkedid"] == start["Uniqueid"]
        await ami.wait_for("BridgeEnter", Channel=out["Channel"], timeout=15)
        await media_for(page, 500)
        await page.click('[data-phone="hangup"]')
        await ami.wait_for("Hangup", Channel=out["Channel"], timeout=10)
        await page.wait_for_selector('#phone[data-call="idle"]', timeout=10000)
    await page.close()


async def test_blind_transfer_to_another_browser_seat_rings_its_page_and_audio_follows(
    app, ami, phone_browser, tones
):
    page = await phone_page(phone_browser, app)
    other_context = await phone_browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    other = await other_context.new_page()
    await other.goto(app.base_url + "/login")
    await other.fill("#username", f"seat{BROWSER_EXT2}")
    await other.fill("#password", DEMO_PASSWORD)
    await other.click("#login-submit")
    await other.wait_for_url(app.base_url + "/console")
    await registered(page)
    await registered(other)
    call = asyncio.create_task(
        place_call(
            app.settings, did=BROWSER_DID, caller="13919310353", hold_ms=60000, audio=tones["resident"]
        )
    )
    try:
        await page.wait_for_selector('#phone[data-call="ringing"]', timeout=20000)
        await page.click('[data-phone="answer"]')
        await page.wait_for_selector('#pop[data-state="talking"]', timeout=10000)
        # The console's transfer panel: blind to the other seat.
        await page.select_option("#cc-kind", "seat")
        await page.fill("#cc-target", BROWSER_EXT2)
        await page.click('[data-action="blind"]')
        await page.wait_for_selector('#phone[data-call="idle"]', timeout=10000)
        await other.wait_for_selector('#phone[data-call="ringing"]', timeout=20000)
        await other.click('[data-phone="answer"]')
        await other.wait_for_selector('#phone[data-call="talking"]', timeout=10000)
        counters = await media_for(other, 1000)
        assert counters["packetsSent"] > 0
        await other.click('[data-phone="hangup"]')
        assert (await asyncio.wait_for(call, 30)).ok
    finally:
        if not call.done():
            await ami.manager.send_action(
                {"Action": "Hangup", "Channel": "/^PJSIP/carrier-.*/"}, as_list=False
            )
            await asyncio.wait_for(call, 30)
        await page.close()
        await other_context.close()


async def test_credentials_come_over_the_session_and_are_never_cached(app, phone_browser):
    page = await phone_page(phone_browser, app)
    reply = await page.request.get(app.base_url + "/api/phone")
    assert reply.status == 200
    assert "no-store" in reply.headers["cache-control"]
    body = await reply.json()
    assert body["enabled"] is True and body["authorization_user"] == SEAT and body["ha1"]
    assert "password" not in body  # only the digest: the phone registered with it above
    html = await (await page.request.get(app.base_url + "/console")).text()
    assert body["ha1"] not in html
    await page.close()


async def test_two_tabs_hold_one_registration(app, phone_browser):
    context = await phone_browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    first = await context.new_page()
    await first.goto(app.base_url + "/login")
    await first.fill("#username", SEAT)
    await first.fill("#password", DEMO_PASSWORD)
    await first.click("#login-submit")
    await first.wait_for_url(app.base_url + "/console")
    await registered(first)
    second = await context.new_page()
    await second.goto(app.base_url + "/console")
    await second.wait_for_function("() => window.ccPhone && window.ccPhone.state().leader === false")
    await second.wait_for_selector('#phone-status[data-phone="registered"]', timeout=5000)
    # The first tab closes: the second takes the registration over.
    await first.close()
    await second.wait_for_function("() => window.ccPhone.state().leader === true", timeout=10000)
    await registered(second)
    await context.close()


async def test_phone_registers_again_after_asterisk_restart_and_rings(app, ami, phone_browser, tones):
    page = await phone_page(phone_browser, app)
    await registered(page)
    await asyncio.to_thread(process.restart, app.settings)
    await page.wait_for_selector('#phone-status:not([data-phone="registered"])', timeout=15000)
    await registered(page, timeout=30000)
    call = asyncio.create_task(
        place_call(
            app.settings, did=BROWSER_DID, caller="13919310351", hold_ms=30000, audio=tones["resident"]
        )
    )
    try:
        await page.wait_for_selector('#phone[data-call="ringing"]', timeout=30000)
        await page.click('[data-phone="answer"]')
        await page.wait_for_selector('#phone[data-call="talking"]', timeout=10000)
        counters = await media_for(page, 1000)
        assert counters["packetsSent"] > 0
        await page.click('[data-phone="hangup"]')
        assert (await asyncio.wait_for(call, 30)).ok
    finally:
        if not call.done():
            call.cancel()
        await page.close()


# A seat with both phones (Phone.BOTH): a desk phone (baresip) on seat<ext>, the browser on web<ext>
BOTH_EXT = "1012"
BOTH_QUEUE = "bothq"
BOTH_DID = "96379"


async def _cli_until(settings, command: str, pattern: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = await asyncio.to_thread(process.cli_command, settings, command)
        if re.search(pattern, out, flags=re.M):
            return out
        await asyncio.sleep(0.2)
    raise AssertionError(f"{command!r}: {pattern!r} never there:\n{out}")


@pytest.fixture(scope="module")
def both_seat(app) -> SipAccount:
    """Seat 1012 made on the administrator's page, alone in its queue, given both phones there;
    returns its desk phone's SIP account (the page showed the password once)."""
    require("baresip")
    settings = app.settings
    with session_scope(settings) as s:
        if not s.exec(select(CallQueue).where(CallQueue.name == BOTH_QUEUE)).first():
            s.add(CallQueue(name=BOTH_QUEUE, title="两种话机测试", agent_timeout=20, wrapup=0))
            s.add(ServiceNumber(number=BOTH_DID, title="两种话机测试号码", queue_name=BOTH_QUEUE))
            s.commit()

    async def create() -> dict[str, str]:
        admin = await console_login(app.base_url, "admin", DEMO_PASSWORD)
        token = re.search(r'name="csrf" value="([^"]+)"', (await admin.get("/admin/accounts")).text).group(1)
        r = await admin.post(
            "/admin/accounts",
            data={
                "csrf": token,
                "username": f"seat{BOTH_EXT}",
                "display_name": "两种话机座席",
                "role": "seat",
                "extension": BOTH_EXT,
                "queues": BOTH_QUEUE,
            },
        )
        assert r.status_code == 201, r.text[-2000:]
        shown = dict(re.findall(r'data-field="(sip-[a-z]+)">([^<]+)<', r.text))
        shown["udp"] = re.search(r'data-transport="udp" data-port="(\d+)"', r.text).group(1)
        with session_scope(settings) as s:
            seat_id = s.exec(select(Account).where(Account.extension == BOTH_EXT)).one().id
        r = await admin.post(f"/admin/accounts/{seat_id}/phone", data={"csrf": token, "phone": "both"})
        assert r.status_code == 200, r.text[-2000:]
        await admin.aclose()
        return shown

    shown = asyncio.run(create())
    with session_scope(settings) as s:
        seat = s.exec(select(Account).where(Account.extension == BOTH_EXT)).one()
        seat.password_hash = hash_password(DEMO_PASSWORD)
        seat.must_change_password = False
        s.add(seat)
        s.commit()
    asyncio.run(_cli_until(settings, f"pjsip show endpoint web{BOTH_EXT}", "webrtc"))
    return SipAccount(
        server=shown["sip-server"],
        port=int(shown["udp"]),
        transport="udp",
        username=shown["sip-username"],
        password=shown["sip-password"],
        answermode="manual",  # it rings and lets the browser answer
    )


async def test_a_seat_with_both_phones_rings_both_and_the_browser_takes_the_call(
    app, ami, phone_browser, tones, both_seat
):
    """Desk phone and browser on one seat: a queue call rings both, the browser answers with audio
    both ways, and the desk phone stops ringing."""
    settings = app.settings
    assert both_seat.username == f"seat{BOTH_EXT}"
    with Baresip(both_seat, audio=Path("/dev/null"), port=free_sip_port()):
        page = await phone_page(phone_browser, app, f"seat{BOTH_EXT}")
        await registered(page)
        # One seat, two endpoints, each with its phone's contact
        await _cli_until(settings, f"pjsip show aor seat{BOTH_EXT}", rf"^ +Contact: +seat{BOTH_EXT}/")
        await _cli_until(settings, f"pjsip show aor web{BOTH_EXT}", rf"^ +Contact: +web{BOTH_EXT}/")
        await page.wait_for_selector('#seat-state[data-state="available"]', timeout=15000)
        ami.events.clear()
        call = asyncio.create_task(
            place_call(settings, did=BOTH_DID, caller="13919310360", hold_ms=60000, audio=tones["resident"])
        )
        try:
            await page.wait_for_selector('#phone[data-call="ringing"]', timeout=20000)
            await page.wait_for_selector('#pop[data-state="ringing"]', timeout=10000)
            # Both phones ring: the desk phone's contact and the browser's were dialled.
            desk_ring = await ami.wait_for("DialBegin", DestChannel=f"PJSIP/seat{BOTH_EXT}-", timeout=10)
            await ami.wait_for("DialBegin", DestChannel=f"PJSIP/web{BOTH_EXT}-", timeout=10)
            await ami.wait_for(
                "DialState", DestChannel=desk_ring["DestChannel"], DialStatus="RINGING", timeout=10
            )
            await page.click('[data-phone="answer"]')
            connect = await ami.wait_for(
                "AgentConnect", Queue=BOTH_QUEUE, Interface=f"Local/{BOTH_EXT}@cc-ring-seat/nm", timeout=20
            )
            channel = await answered_by(ami, connect, f"PJSIP/web{BOTH_EXT}-")
            # The desk phone stops ringing: its leg is cancelled, not answered.
            cancelled = await ami.wait_for(
                "DialEnd", DestChannel=desk_ring["DestChannel"], DialStatus="CANCEL", timeout=10
            )
            assert cancelled["Linkedid"] == connect["Linkedid"]
            await ami.wait_for("Hangup", Channel=desk_ring["DestChannel"], timeout=10)
            await page.wait_for_selector('#phone[data-call="talking"]', timeout=5000)
            await page.wait_for_selector('#pop[data-state="talking"]', timeout=10000)
            # Two-way audio on the browser's leg: 440 Hz from it, the resident's 1 kHz to it.
            from_seat, to_seat = await Recorder(ami, settings, channel).record(page, 3000)
            heard, sent = shares(from_seat), shares(to_seat)
            assert heard[440] > 0.6 and heard[1000] < 0.1, heard
            assert sent[1000] > 0.6 and sent[440] < 0.1, sent
            await page.click('[data-phone="hangup"]')
            await page.wait_for_selector('#phone[data-call="idle"]', timeout=10000)
            assert (await asyncio.wait_for(call, 30)).ok
        finally:
            if not call.done():
                await ami.manager.send_action(
                    {"Action": "Hangup", "Channel": f"/^PJSIP/web{BOTH_EXT}-.*/"}, as_list=False
                )
                await asyncio.wait_for(call, 30)
            await page.close()


async def test_click_to_call_rings_both_phones_of_the_seat_and_the_browser_takes_it(
    app, ami, phone_browser, both_seat
):
    """Click-to-call goes through the seat's member interface like a queue call: the desk phone
    and the browser ring, the browser answers its own call by itself, the desk phone stops."""
    with Baresip(both_seat, audio=Path("/dev/null"), port=free_sip_port()):
        page = await phone_page(phone_browser, app, f"seat{BOTH_EXT}")
        await registered(page)
        await _cli_until(app.settings, f"pjsip show aor seat{BOTH_EXT}", rf"^ +Contact: +seat{BOTH_EXT}/")
        await page.wait_for_selector('#conn[data-conn="online"]', timeout=10000)
        ami.events.clear()
        async with MediaUAS(port=OUTSIDE_PORT, ring_ms=300, talk_ms=None):
            await page.fill('[data-form="dial"] [name="number"]', "139 1931 0361")
            await page.click('[data-form="dial"] [type="submit"]')
            start = await ami.wait_for("Newchannel", Channel=f"Local/{BOTH_EXT}@cc-ring-seat-", timeout=15)
            desk = await ami.wait_for("DialBegin", DestChannel=f"PJSIP/seat{BOTH_EXT}-", timeout=10)
            web = await ami.wait_for("DialBegin", DestChannel=f"PJSIP/web{BOTH_EXT}-", timeout=10)
            assert desk["Linkedid"] == web["Linkedid"] == start["Uniqueid"]
            await page.wait_for_selector('#phone[data-call="talking"]', timeout=10000)
            await ami.wait_for("DialEnd", DestChannel=desk["DestChannel"], DialStatus="CANCEL", timeout=10)
            out = await ami.wait_for("Newchannel", Channel="PJSIP/cc-outbound-", timeout=15)
            assert out["Linkedid"] == start["Uniqueid"]
            await ami.wait_for("BridgeEnter", Channel=out["Channel"], timeout=15)
            counters = await media_for(page, 500)
            assert counters["packetsSent"] > 0
            await page.click('[data-phone="hangup"]')
            await ami.wait_for("Hangup", Channel=out["Channel"], timeout=10)
            await page.wait_for_selector('#phone[data-call="idle"]', timeout=10000)
        await page.close()
