"""The browser phone under repeated use: registration, answer-to-audio and two-way audio over
CALLS real calls through Asterisk to a browser seat.

The stack runs as in production (Asterisk, ``callcenter serve`` in its own process). Seat 1003's
phone is the console's browser phone, in headless Chromium (Playwright) whose fake microphone
plays a 440 Hz tone; it alone is in the queue of the number BROWSER_DID. Residents are sipp
calls that speak a 1 kHz tone (a PCMU pcap) from Asterisk's answer on.

1. Registration: the console page is loaded REGISTRATIONS times; each load's time from the start
   of navigation to the phone's first REGISTER answered 200 (JsSIP "registered", in the page's
   own clock) is one sample.
2. Calls, one at a time: the seat has auto-answer on. Per call, answer-to-audio is the time from
   JsSIP "accepted" to the first RTP packet counted by the browser's getStats (polled every
   10 ms). Two-way: Asterisk records RECORD_MS of the seat's leg with each direction in its own
   file (MixMonitor r()/t(), started from the CLI); a call is two-way when the Goertzel detector
   finds the seat's 440 Hz in more than half the 50 ms blocks of what the browser sent and the
   resident's 1 kHz in more than half of what it received. The seat hangs up from the page.

Prints progress to stderr and one JSON line last on stdout:
{"bench": "webrtc", "webrtc_register_p95_s", "webrtc_answer_to_audio_p95_ms",
 "webrtc_two_way_ratio", "webrtc_calls", ...}. p99 figures are given only from 1000 samples on;
below that the maximum is reported instead.

Sizes: BENCH_WEBRTC_CALLS (100), BENCH_WEBRTC_REGISTRATIONS (20), BENCH_WEBRTC_RECORD_MS (1000).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from asterisk_conf import process  # noqa: E402
from asterisk_conf.sipp import place_call  # noqa: E402
from asterisk_conf.tones import read_wav, tone_share, write_tone_pcap, write_tone_wav  # noqa: E402
from benchmarks.common import CACHE_ROOT, fresh_data_dir, log, on_stack, percentile, ports  # noqa: E402
from callcenter import ids  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import saved_id, session_scope  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, AmiWatch  # noqa: E402

CALLS = int(os.environ.get("BENCH_WEBRTC_CALLS", "100"))
REGISTRATIONS = int(os.environ.get("BENCH_WEBRTC_REGISTRATIONS", "20"))
RECORD_MS = int(os.environ.get("BENCH_WEBRTC_RECORD_MS", "1000"))

CACHE = CACHE_ROOT / "webrtc"
EXT = "1003"
SEAT = f"seat{EXT}"
INTERFACE = ids.seat_interface(EXT)  # the seat as a queue member (a Local channel to its phones)
DID = "96350"
QUEUE = "browser"
PORTS = ports(
    ami_port=29038,
    sip_port=29060,
    agi_port=28573,
    web_port=32080,
    rtp_start=16000,
    rtp_end=16999,
    doctor_sip_port=29099,
    asterisk_http_port=32088,
)


def prepare() -> Settings:
    settings = set_settings(Settings(data_dir=CACHE / "var", _env_file=None, **PORTS))
    fresh_data_dir(settings, CACHE)
    from callcenter.accounts.models import Account, Phone, QueueMembership
    from callcenter.directory.models import CallQueue, ServiceNumber
    from hotline.demo import load_demo

    with session_scope(settings) as s:
        load_demo(s, residents=50, seat_contact_base_port=None, must_change_password=False)
        seat = s.exec(select(Account).where(Account.extension == EXT)).one()
        seat.phone = Phone.BROWSER
        s.add(seat)
        s.add(CallQueue(name=QUEUE, title="网页话机", strategy="ringall", agent_timeout=20, wrapup=0))
        s.add(ServiceNumber(number=DID, title="网页话机", queue_name=QUEUE))
        s.flush()
        s.add(QueueMembership(account_id=saved_id(seat), queue_name=QUEUE, penalty=0))
        s.commit()
    return settings


def tail_figure(values: list[float], name: str, unit: str, scale: float = 1.0) -> dict:
    """p50 and p95, and p99 only from 1000 samples on (else the maximum, named so)."""
    if not values:
        return {}
    out = {
        f"{name}_p50_{unit}": round(percentile(values, 50) * scale, 3),
        f"{name}_p95_{unit}": round(percentile(values, 95) * scale, 3),
    }
    if len(values) >= 1000:
        out[f"{name}_p99_{unit}"] = round(percentile(values, 99) * scale, 3)
    else:
        out[f"{name}_max_{unit}"] = round(max(values) * scale, 3)
    return out


async def login(page, base_url: str) -> None:
    from hotline.demo import DEMO_PASSWORD

    await page.goto(base_url + "/login")
    await page.fill("#username", SEAT)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(base_url + "/console")


async def received_more(page, packets: int, timeout: float = 10) -> None:
    stats = "() => window.ccPhone.stats()"
    start = (await page.evaluate(stats))["packetsReceived"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await page.evaluate(stats))["packetsReceived"] - start >= packets:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the browser stopped receiving audio")


async def agent_connect(ami: AmiWatch, after: int, timeout: float = 10) -> dict:
    """The browser seat's AgentConnect after ``after`` earlier ones."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in ami.seen("AgentConnect") if e.get("Interface") == INTERFACE]
        if len(found) > after:
            return found[after]
        await asyncio.sleep(0.02)
    raise RuntimeError("no AgentConnect for the browser seat")


async def phone_channel(ami: AmiWatch, connect: dict, timeout: float = 10) -> str:
    """The browser phone's own channel that answered the call of ``connect`` (the queue's leg is
    the member's Local channel, which dialled the phone)."""
    answered = await ami.wait_for(
        lambda e: (
            e.get("Event") == "DialEnd"
            and e.get("DialStatus") == "ANSWER"
            and e.get("Linkedid") == connect["Linkedid"]
            and str(e.get("DestChannel", "")).startswith(f"PJSIP/{SEAT}-")
        ),
        timeout=timeout,
    )
    return str(answered["DestChannel"])


async def two_way(settings: Settings, ami: AmiWatch, page, channel: str) -> bool:
    folder = settings.asterisk_instance_dir() / "spool" / "monitor"
    name = f"bench-{uuid.uuid4().hex[:10]}"
    stops = len(ami.seen("MixMonitorStop", Channel=channel))
    cli = process.cli_command
    await asyncio.to_thread(
        cli, settings, f"mixmonitor start {channel} {name}.wav,r({name}-from-seat.wav)t({name}-to-seat.wav)"
    )
    await received_more(page, RECORD_MS // 20)
    await asyncio.to_thread(cli, settings, f"mixmonitor stop {channel}")
    await ami.wait_for(lambda e: len(ami.seen("MixMonitorStop", Channel=channel)) > stops, timeout=10)
    sent, got = folder / f"{name}-from-seat.wav", folder / f"{name}-to-seat.wav"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (sent.exists() and got.exists()):
        await asyncio.sleep(0.05)
    try:
        s_samples, s_rate = read_wav(sent)
        g_samples, g_rate = read_wav(got)
    except (OSError, EOFError, ValueError):
        return False
    finally:
        for f in (sent, got, folder / f"{name}.wav"):
            f.unlink(missing_ok=True)
    return tone_share(s_samples, s_rate, 440) > 0.5 and tone_share(g_samples, g_rate, 1000) > 0.5


async def measure(app) -> dict:
    from playwright.async_api import async_playwright

    settings = app.settings
    tone = write_tone_wav(CACHE / "seat440.wav", 440, 10)
    pcap = write_tone_pcap(CACHE / "resident1k.pcap", 1000, 60)
    ami = await AmiWatch().open(settings)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={tone}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    register_s: list[float] = []
    delays_ms: list[float] = []
    two_way_calls = 0
    done = 0
    failures: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        page = await browser.new_page()
        await login(page, app.base_url)
        await page.evaluate(f"() => localStorage.setItem('cc.phone.autoAnswer.{EXT}', '1')")
        for _ in range(REGISTRATIONS):
            await page.reload()
            await page.wait_for_selector('#phone-status[data-phone="registered"]', timeout=30000)
            t = await page.evaluate("() => window.ccPhone.timings().registeredAt")
            register_s.append(t / 1000)
        log(f"registration p95 {percentile(register_s, 95):.3f} s over {len(register_s)} page loads")

        for i in range(CALLS):
            before = len([e for e in ami.seen("AgentConnect") if e.get("Interface") == INTERFACE])
            call = asyncio.create_task(
                place_call(settings, did=DID, caller=f"1391932{i:04d}", hold_ms=60000, audio=pcap, timeout=90)
            )
            try:
                await page.wait_for_selector('#phone[data-call="talking"]', timeout=30000)
                channel = await phone_channel(ami, await agent_connect(ami, before))
                delays_ms.append(await page.evaluate("() => window.ccPhone.audioDelay()"))
                if await two_way(settings, ami, page, channel):
                    two_way_calls += 1
                await page.click('[data-phone="hangup"]')
                await page.wait_for_selector('#phone[data-call="idle"]', timeout=10000)
                result = await asyncio.wait_for(call, 30)
                if result.ok:
                    done += 1
                else:
                    failures.append(f"call {i}: sipp {result.errors[-300:]}")
            except Exception as exc:  # one bad call is counted, the run goes on
                failures.append(f"call {i}: {exc!r}"[:300])
                if not call.done():
                    call.cancel()
                    with contextlib.suppress(BaseException):
                        await call
                if await page.evaluate("() => window.ccPhone.state().call") != "idle":
                    await page.click('[data-phone="hangup"]')
            if (i + 1) % 10 == 0:
                p95 = percentile(delays_ms, 95) if delays_ms else float("nan")
                log(f"{i + 1} calls: {two_way_calls} two-way, answer-to-audio p95 {p95:.0f} ms")
        await browser.close()
    ami.close()
    for f in failures[:10]:
        log(f)
    return {
        "bench": "webrtc",
        **tail_figure(register_s, "webrtc_register", "s"),
        **tail_figure(delays_ms, "webrtc_answer_to_audio", "ms"),
        "webrtc_two_way_ratio": round(two_way_calls / CALLS, 4) if CALLS else 0.0,
        "webrtc_calls": CALLS,
        "webrtc_calls_completed": done,
        "webrtc_registrations": len(register_s),
        "webrtc_failures": len(failures),
    }


def main() -> None:
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is not installed")
    settings = prepare()
    result = on_stack(settings, measure)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
