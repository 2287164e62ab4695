"""The out-of-hours list on the seat's console, in Chromium: voicemails and callback requests
shown as text, a voicemail playable, an item marked handled (and gone from the list)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from callcenter.database import session_scope
from callcenter.ivr.models import CallerRequest
from tests.web_console.test_console_browser import _login

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"


async def test_seat_sees_and_closes_out_of_hours_items(live, browser, web):  # noqa: F811
    with session_scope(live.settings) as s:
        s.add(
            CallerRequest(
                kind="voicemail",
                caller="+8613919310001",
                did="96346",
                recording="1.2.wav",
                created_at=datetime.now(UTC),
            )
        )
        s.add(CallerRequest(kind="callback", caller_raw=HOSTILE, did="96346", created_at=datetime.now(UTC)))
        s.commit()
    page = await browser.new_page(locale="zh-CN")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    await _login(page, live, "seat1001", web.password("seat1001"))
    await page.wait_for_selector('#caller-requests tr[data-kind="callback"]')
    rows = page.locator("#caller-requests tbody tr")
    assert await rows.count() == 2
    voicemail = page.locator('#caller-requests tr[data-kind="voicemail"]')
    assert "留言" in await voicemail.inner_text() and await voicemail.locator("audio").count() == 1
    callback = page.locator('#caller-requests tr[data-kind="callback"]')
    assert HOSTILE in await callback.inner_text()  # shown as text
    assert await page.locator("#caller-requests img").count() == 0
    await callback.locator('button[data-action="done"]').click()
    await page.wait_for_selector('#caller-requests tr[data-kind="callback"]', state="detached")
    assert await rows.count() == 1 and not dialogs
    with session_scope(live.settings) as s:
        done = s.exec(select(CallerRequest).where(CallerRequest.kind == "callback")).one()
        assert done.done_at is not None and done.done_by == "seat1001"
