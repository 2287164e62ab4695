"""The category tree and the routing rules' coverage report in Chromium, as an administrator:
add, move, a refused national code shown in the page's language, the uncovered pairs listed."""

from __future__ import annotations

import pytest
from sqlmodel import select

from callcenter.database import session_scope
from dispatch import routing
from dispatch.models import Category, RoutingRule
from dispatch.testing import build_world

pytestmark = pytest.mark.browser


async def _admin_page(live, browser):
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(live.base_url + "/login")
    await page.fill("#username", "admin")
    await page.fill("#password", "pw-admin-Secret!")
    await page.click("#login-submit")
    await page.wait_for_load_state()
    return page, errors


async def test_the_category_tree_in_chromium(live, browser):
    with session_scope(live.settings) as s:
        world = build_world(s)
    page, errors = await _admin_page(live, browser)
    await page.goto(live.base_url + "/admin/categories")
    await page.fill('#add-category input[name="name"]', "管道疏通")
    await page.select_option('#add-category select[name="parent_id"]', str(world.cat_water))
    await page.fill('#add-category input[name="national_code"]', "010101")
    await page.click('#add-category button[type="submit"]')
    await page.wait_for_selector("#done")
    with session_scope(live.settings) as s:
        pipe = s.exec(select(Category).where(Category.name == "管道疏通")).one()
    row = page.locator(f'#categories tr[data-id="{pipe.id}"]')
    assert await row.get_attribute("data-depth") == "2"
    # Move it under elder care with a wrong national code: refused, with the catalogue's words.
    await row.locator("summary").click()
    form = row.locator('form[data-form="edit"]')
    await form.locator('select[name="parent_id"]').select_option(str(world.cat_elder))
    await form.locator('input[name="national_code"]').fill("12a")
    await form.locator('button[type="submit"]').click()
    assert "国标编码须为6位数字" in await page.text_content("#error")
    row = page.locator(f'#categories tr[data-id="{pipe.id}"]')
    await row.locator("summary").click()
    form = row.locator('form[data-form="edit"]')
    await form.locator('select[name="parent_id"]').select_option(str(world.cat_elder))
    await form.locator('button[type="submit"]').click()
    await page.wait_for_selector("#done")
    with session_scope(live.settings) as s:
        assert s.get(Category, pipe.id).parent_id == world.cat_elder
    # A used category offers no delete button; the unused leaf does.
    assert (
        await page.locator(f'#categories tr[data-id="{world.cat_water}"] [data-action="delete"]').count() == 0
    )
    await page.click(f'#categories tr[data-id="{pipe.id}"] [data-action="delete"]')
    await page.wait_for_selector("#done")
    assert await page.locator(f'#categories tr[data-id="{pipe.id}"]').count() == 0
    assert errors == []
    await page.close()


async def test_the_coverage_report_in_chromium(live, browser):
    with session_scope(live.settings) as s:
        world = build_world(s)
        # Only water in the first community is left covered.
        for r in s.exec(select(RoutingRule)):
            if not (r.category_id == world.cat_water):
                s.delete(r)
        routing.invalidate(s)
        s.commit()
    page, errors = await _admin_page(live, browser)
    await page.goto(live.base_url + "/admin/routing")
    await page.click("#coverage-link")
    await page.wait_for_selector("#uncovered")
    pairs = await page.eval_on_selector_all(
        "#uncovered tr[data-category]", "rows => rows.map(r => [r.dataset.category, r.dataset.community])"
    )
    assert sorted(pairs) == sorted(
        [[str(world.cat_elder), str(world.community)], [str(world.cat_elder), str(world.other_community)]]
    )
    assert errors == []
    await page.close()


async def test_the_holiday_calendar_and_its_banner_in_chromium(live, browser, web):
    live.settings.clock = "2030-11-02T10:00:00"  # the business clock: never the wall date
    page, errors = await _admin_page(live, browser)
    await page.goto(live.base_url + "/admin/calendar?year=2031")
    banner = await page.text_content("#calendar-banner")
    assert "2030、2031" in banner
    assert await page.get_attribute("#year-state", "data-known") == "0"
    await page.fill('#add-day input[name="day"]', "2031-01-01")
    await page.fill('#add-day input[name="name"]', "元旦")
    await page.click('#add-day button[type="submit"]')
    await page.wait_for_selector('#holidays tr[data-day="2031-01-01"][data-workday="0"]')
    assert "2031" not in await page.text_content("#calendar-banner")
    assert await page.get_attribute("#year-state", "data-known") == "1"
    # A make-up working day on a Wednesday is refused with the catalogue's words.
    await page.fill('#add-day input[name="day"]', "2031-01-08")
    await page.select_option('#add-day select[name="workday"]', "1")
    await page.click('#add-day button[type="submit"]')
    assert "调休上班日须在周末" in await page.text_content("#error")
    # A seat's pages carry no banner.
    seat = web.TestClient(live.app)
    assert web.login(seat, "seat1001").status_code == 303
    assert "calendar-banner" not in seat.get("/orders").text
    assert errors == []
    await page.close()


async def test_deadline_policies_in_chromium(live, browser):
    page, errors = await _admin_page(live, browser)
    await page.goto(live.base_url + "/admin/deadlines")
    row = page.locator('#policies tr[data-type="投诉"][data-urgency="normal"]')
    assert await row.get_attribute("data-custom") == "0"
    await row.locator('input[name="amount"]').fill("7")
    await row.locator('input[name="escalate_to"]').fill("13900002222")
    await row.locator('button[type="submit"]').click()
    await page.wait_for_selector("#done")
    row = page.locator('#policies tr[data-type="投诉"][data-urgency="normal"]')
    assert await row.get_attribute("data-custom") == "1"
    assert await row.locator('input[name="escalate_to"]').input_value() == "+8613900002222"
    assert errors == []
    await page.close()
