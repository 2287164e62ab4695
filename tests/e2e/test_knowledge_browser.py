"""The knowledge base in the seat's console for a real call: while the phone rings the pop's
panel suggests articles (from the caller's recent orders), the seat searches per keystroke in
pinyin, opens the spoken answer with Alt+1, and "answered with this article" records a 直接答复
order linked to the call and the article."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlmodel import select

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.database import session_scope
from callcenter.knowledge.models import Article, Use
from dispatch.models import OrderCall, Status, WorkOrder
from hotline.demo import DEMO_PASSWORD
from tests.e2e.conftest import SEAT_PORT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def test_suggestions_on_the_ringing_pop_and_answered_with_an_article(app, ami, browser):  # noqa: F811
    page = await browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    await page.goto(app.base_url + "/login")
    await page.fill("#username", "seat1001")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(app.base_url + "/console")
    await page.wait_for_selector('#conn[data-conn="online"]', timeout=10000)

    with SippUAS(port=SEAT_PORT, ring_ms=10000, talk_ms=0):
        call = asyncio.create_task(place_call(app.settings, did="96345", caller="13919310001", hold_ms=17000))
        await page.wait_for_selector(
            '#pop[data-state="ringing"] [data-field="resident-name"]:text("王秀英")', timeout=20000
        )
        popped = time.monotonic()
        # Suggestions arrive while the phone still rings (it rings 10 s: a loaded machine may take seconds).
        await page.wait_for_selector("#kb-results li button", timeout=9000)
        # The first one from what she asked about last time (高龄补贴, in the demo's orders).
        assert await page.text_content("#kb-results li:first-child button") == "高龄补贴申领"
        suggested_after = time.monotonic() - popped
        assert await page.get_attribute("#pop", "data-state") == "ringing"
        assert not [e for e in ami.events if e.get("Event") == "AgentConnect"]
        assert await page.text_content("#kb-source") == "来电推荐（按语音菜单和近期工单）"
        linkedid = await page.get_attribute("#pop", "data-linkedid")

        # Per keystroke: pinyin typed letter by letter finds 低保 before the word is finished.
        await page.keyboard.press("Alt+K")
        await page.keyboard.type("dib", delay=80)
        await page.wait_for_selector('#kb-results li button:has-text("低保")', timeout=6000)
        await page.keyboard.press("Alt+1")
        await page.wait_for_selector("#kb-article:not([hidden])", timeout=3000)
        spoken = await page.text_content('#kb-article [data-field="spoken"]')
        assert "街道" in spoken or "低保" in spoken
        title = await page.text_content('#kb-article [data-field="title"]')
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "console-knowledge.png"))
        await page.click("#kb-answered")
        await page.wait_for_selector('#kb-message:has-text("已记录直接答复工单")', timeout=5000)
        assert (await call).ok

    with session_scope(app.settings) as s:
        article = s.exec(select(Article).where(Article.title == title)).one()
        use = s.exec(select(Use).where(Use.article_id == article.id)).one()
        order = s.get(WorkOrder, use.order_id)
        assert (
            order.order_type == "咨询" and order.status == Status.CLOSED and order.call_linkedid == linkedid
        )
        assert s.exec(select(OrderCall).where(OrderCall.order_id == order.id)).one().linkedid == linkedid
        assert order.resident_id is not None and use.seat == "seat1001"
    assert suggested_after < 5.0
    await page.close()
