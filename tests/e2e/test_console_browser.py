"""A real call pops in the seat's console in Chromium before the seat's phone answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from asterisk_conf.sipp import SippUAS, place_call
from hotline.demo import DEMO_PASSWORD, HOTLINE_QUEUE_TITLE
from tests.e2e.conftest import SEAT_PORT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

XSS = '<script>alert("x")</script>\'"'
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def test_real_call_pops_in_chromium_before_answer(app, ami, browser):  # noqa: F811
    page = await browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
    await page.goto(app.base_url + "/login")
    await page.fill("#username", "seat1001")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(app.base_url + "/console")
    await page.wait_for_selector('#conn[data-conn="online"]', timeout=10000)

    with SippUAS(port=SEAT_PORT, ring_ms=4000, talk_ms=0):
        call = asyncio.create_task(
            place_call(app.settings, did="96345", caller="13919310001", caller_name=XSS, hold_ms=8000)
        )
        await page.wait_for_selector(
            '#pop[data-state="ringing"] [data-field="resident-name"]:text("王秀英")', timeout=20000
        )
        shown_at = time.time()
        # The seat's phone has not been answered yet.
        assert not [e for e in ami.events if e.get("Event") == "AgentConnect"]
        assert await page.text_content('#pop [data-field="caller-name"]') == XSS
        assert await page.locator("#pop script").count() == 0
        masked = await page.text_content('#pop [data-field="resident-id"]')
        assert len(masked) == 18 and masked[4:14] == "*" * 10
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "console-pop.png"))
        await page.keyboard.press("Alt+I")  # the full number, on request (audited)
        await page.wait_for_function(
            "() => !document.querySelector('#pop [data-field=\"resident-id\"]').textContent.includes('*')"
        )
        await page.wait_for_selector('#pop[data-state="talking"]', timeout=10000)
        connect = await ami.wait_for(lambda e: e.get("Event") == "AgentConnect")
        assert float(connect["Timestamp"]) > shown_at - 0.5
        await page.wait_for_selector("#pop", state="detached", timeout=20000)
        assert (await call).ok
    assert dialogs == []
    await page.close()


async def login_page(browser, app, username):  # noqa: F811
    page = await browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    await page.goto(app.base_url + "/login")
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_load_state("networkidle")
    await page.wait_for_selector('#conn[data-conn="online"]', timeout=10000)
    return page


async def test_pause_in_the_console_shows_on_the_wallboard(app, browser):  # noqa: F811
    board = await login_page(browser, app, "supervisor")
    assert board.url.endswith("/wallboard")
    seat = await login_page(browser, app, "seat1001")
    await board.wait_for_selector('#seats tr[data-ext="1001"][data-state="available"]', timeout=5000)
    await seat.select_option("#pause-reason", "培训")
    clicked = time.time()
    await seat.click("#pause-toggle")
    await board.wait_for_selector('#seats tr[data-ext="1001"][data-state="paused"]', timeout=1000)
    assert time.time() - clicked < 1.0
    assert await board.text_content('#seats tr[data-ext="1001"] [data-field="reason"]') == "培训"
    await seat.wait_for_selector('#seat-state[data-state="paused"]', timeout=2000)
    assert await seat.text_content("#pause-toggle") == "恢复接听"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await board.screenshot(path=str(SCREENSHOTS / "wallboard.png"))
    await seat.keyboard.press("Alt+P")  # resume from the keyboard
    await board.wait_for_selector('#seats tr[data-ext="1001"][data-state="available"]', timeout=2000)
    await seat.close()
    await board.close()


async def test_unknown_caller_registered_from_the_pop(app, browser):  # noqa: F811
    page = await login_page(browser, app, "seat1001")
    with SippUAS(port=SEAT_PORT, ring_ms=20000, talk_ms=0):
        call = asyncio.create_task(
            place_call(app.settings, did="96345", caller="13800009999", caller_name="陌生来电", hold_ms=8000)
        )
        await page.wait_for_selector('#pop[data-resident="unknown"] [data-form="register"]', timeout=20000)
        await page.fill('#pop [data-form="register"] input[name="name"]', "赵新民")
        await page.wait_for_selector('#pop select[name="community_id"] option:nth-child(2)', state="attached")
        await page.select_option('#pop select[name="community_id"]', index=1)
        await page.fill('#pop [data-form="register"] input[name="address"]', "西路街道12号")
        await page.click('#pop [data-form="register"] button[type="submit"]')
        # The engine rebuilds the pop: the caller is now a resident, while the phone still rings.
        await page.wait_for_selector(
            '#pop[data-resident="known"] [data-field="resident-name"]:text("赵新民")', timeout=5000
        )
        assert await page.get_attribute("#pop", "data-state") == "ringing"
        # Let the caller hang up by itself (a killed sipp sends no BYE and leaves the call up).
        await call
    await page.close()


async def test_status_bar_and_my_calls(app, ami, browser):  # noqa: F811
    page = await login_page(browser, app, "seat1001")
    # The callers waiting, by the queue's name (the whole list in the tooltip)
    await page.wait_for_selector(f'#my-queues[title*="{HOTLINE_QUEUE_TITLE} 等待 0"]', timeout=5000)
    await ami.manager.send_action(
        {
            "Action": "QueuePause",
            "Interface": "Local/1001@cc-ring-seat/nm",
            "Paused": "true",
            "Reason": "整理工单",
        },
        as_list=False,
    )
    await page.wait_for_selector('#seat-state[data-state="paused"]', timeout=3000)
    assert await page.text_content("#seat-state-reason") == "整理工单"
    with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=0):
        call = asyncio.create_task(place_call(app.settings, did="96345", caller="13919310001", hold_ms=9000))
        await page.wait_for_selector(f'#my-queues:text("{HOTLINE_QUEUE_TITLE} 1")', timeout=10000)
        assert f"{HOTLINE_QUEUE_TITLE} 等待 1" in await page.get_attribute("#my-queues", "title")
        await ami.manager.send_action(
            {"Action": "QueuePause", "Interface": "Local/1001@cc-ring-seat/nm", "Paused": "false"},
            as_list=False,
        )
        await page.wait_for_selector('#pop[data-state="talking"]', timeout=10000)
        assert (await call).ok
    row = page.locator("#my-calls tbody tr", has_text="139 1931 0001").first
    await row.wait_for(timeout=10000)
    assert "王秀英" in await row.text_content()
    await page.close()
