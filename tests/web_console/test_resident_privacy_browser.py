"""The reason form on a resident's page and the wallboard's lookups alert, in a real browser
(Debian's Chromium through Playwright)."""

from __future__ import annotations

import pytest

from callcenter.database import session_scope
from callcenter.residents.models import ElderlyProfile, Resident

pytestmark = pytest.mark.browser


async def _login(browser, live, web, username: str, landing: str):
    page = await browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(live.base_url + "/login")
    await page.fill("#username", username)
    await page.fill("#password", web.password(username))
    await page.click("#login-submit")
    await page.wait_for_url(live.base_url + landing)
    return page, errors


async def test_a_stated_reason_opens_the_record_and_the_wallboard_hears_of_the_burst(live, browser, web):
    live.settings.resident_burst_lookups = 2
    with session_scope(live.settings) as s:
        r = Resident(name="王秀英", phone="+8613919310001", id_number="620102194501011234", lives_alone=True)
        s.add(r)
        s.flush()
        s.add(ElderlyProfile(resident_id=r.id, health_notes="高血压"))
        s.commit()
        rid = r.id
    board, board_errors = await _login(browser, live, web, "super", "/wallboard")
    await board.wait_for_selector('#conn[data-conn="online"]')
    seat, seat_errors = await _login(browser, live, web, "seat1001", "/console")

    await seat.goto(f"{live.base_url}/residents/{rid}")
    assert "高血压" not in await seat.content()
    assert "6201**********1234" in await seat.text_content(".resident-page")
    notice = await seat.text_content("#privacy-notice")
    assert "说明理由" in notice
    # A reason too short: the browser itself asks for more, nothing is sent.
    await seat.fill("#reveal-form input[name=reason]", "看")
    await seat.click("#reveal-form button[type=submit]")
    assert await seat.evaluate(
        "() => !document.querySelector('#reveal-form input[name=reason]').validity.valid"
    )
    await seat.fill("#reveal-form input[name=reason]", "居民来电反映老人摔倒，需联系家属")
    await seat.click("#reveal-form button[type=submit]")
    await seat.wait_for_selector("#elderly-form")
    assert await seat.input_value("#elderly-form input[name=health_notes]") == "高血压"
    assert await seat.text_content("#resident-phone") == "139 1931 0001"

    # Two lookups of a record not linked to the seat's work (the look, then the reason): alert.
    item = board.locator("#lookups-list li").first
    await item.wait_for()
    assert "seat1001" in await item.text_content() and await board.is_visible("#lookups")
    assert not seat_errors and not board_errors
