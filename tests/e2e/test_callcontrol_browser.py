"""Call control in Chromium: the seat hangs up a real call with Alt+H, plays the
call's recording in the page; a supervisor listens in from the wallboard."""

from __future__ import annotations

import asyncio

import pytest

from asterisk_conf.sipp import place_call
from asterisk_conf.sipp_media import MediaUAS
from tests.e2e.conftest import SEAT_PORT, SUPERVISOR_PORT
from tests.e2e.test_callcontrol import SUPERVISOR_EXT, phones  # noqa: F401  (the module fixture)
from tests.e2e.test_console_browser import SCREENSHOTS, login_page

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_seat_hangs_up_and_plays_the_recording_supervisor_listens(phones, app, ami, browser):  # noqa: F811
    settings = phones
    seat = await login_page(browser, app, "seat1001")
    boss = await login_page(browser, app, "supervisor")
    async with (
        MediaUAS(port=SEAT_PORT, ring_ms=300, talk_ms=None),
        MediaUAS(port=SUPERVISOR_PORT, ring_ms=200, talk_ms=1500),
    ):
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=30000))
        await seat.wait_for_selector('#pop[data-state="talking"]', timeout=20000)
        await seat.wait_for_selector('#call-control [data-block="on-call"]:not([hidden])')
        # The wallboard shows the seat on a call, with listen / whisper / barge.
        listen = boss.locator('#seats tr[data-ext="1001"][data-state="talking"] button[data-spy="listen"]')
        await listen.wait_for(timeout=10000)
        await boss.screenshot(path=str(SCREENSHOTS / "wallboard-listen.png"))
        await listen.click()
        spy = await ami.wait_for("ChanSpyStart", SpyerChannel=f"PJSIP/seat{SUPERVISOR_EXT}-", timeout=15)
        assert spy["SpyeeChannel"].startswith("PJSIP/seat1001-")
        await seat.screenshot(path=str(SCREENSHOTS / "console-call-control.png"))
        await asyncio.sleep(2)  # a little talk, for the recording
        await seat.keyboard.press("Alt+H")
        await seat.wait_for_selector("#pop", state="detached", timeout=15000)
        result = await call
        assert result.ok and result.duration < 25  # the seat ended it, not the caller
    # The call is in "my calls today" with its recording, played in the page.
    play = seat.locator('#my-calls tr[data-linkedid] button:text("播放录音")').first
    await play.wait_for(timeout=15000)
    await play.click()
    audio = seat.locator("#my-calls audio").first
    await audio.wait_for(timeout=5000)
    await seat.wait_for_function(
        "() => { const a = document.querySelector('#my-calls audio'); return a && a.duration > 0.5; }",
        timeout=10000,
    )
    await seat.close()
    await boss.close()


async def test_a_refused_click_to_call_says_why_in_the_console(phones, app, browser):  # noqa: F811
    seat = await login_page(browser, app, "seat1001")
    await seat.fill('#call-control [data-form="dial"] [name="number"]', "110")
    await seat.press('#call-control [data-form="dial"] [name="number"]', "Enter")
    # The engine refuses it (the dial-out policy); the console shows the catalogue's reason.
    await seat.wait_for_function(
        "() => (document.querySelector('#call-control [data-field=\"cc-message\"]') || {}).textContent"
        " .includes('紧急电话号码')",
        timeout=15000,
    )
    await seat.close()
