"""The resident's page in Chromium at a phone's size (390×844) with WeChat's in-app browser's
user agent: wrong codes refused then throttled, the timeline in plain words without staff names
or notes, a rating that becomes the order's 回访; a dissatisfied one goes to the supervisors for
重办 review, and the resident sees the order handled again. Every request stays on the app's own
host."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from sqlmodel import select

from callcenter.database import session_scope
from callcenter.mail import MailMessage
from dispatch import transitions
from dispatch.models import OrderHistory, Status, WorkOrder
from dispatch.service import create_order
from dispatch.testing import build_world
from tests.web_console.conftest import csrf_from

pytestmark = pytest.mark.browser

WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MicroMessenger/8.0.47.2560"
)


def resolved_order(settings) -> tuple[str, str, int]:
    with session_scope(settings) as s:
        w = build_world(s)
        o = create_order(
            s, w.seat, order_type="求助", summary="楼道灯不亮，王师傅说明天来", caller_phone="13800138000"
        )
        s.flush()
        transitions.transition(s, o, "派单", w.seat, outlet_id=w.outlet_a, settings=settings)
        transitions.transition(s, o, "签收", w.outlet, settings=settings)
        transitions.transition(s, o, "办理", w.outlet, note="内部备注：张三负责", settings=settings)
        transitions.transition(s, o, "办结", w.outlet, note="已更换灯泡", settings=settings)
        s.commit()
        assert o.id is not None
        return o.number, o.query_code, o.id


async def test_resident_follows_and_rates_an_order_on_a_phone(live, browser):
    number, code, order_id = resolved_order(live.settings)
    live.settings.supervisor_emails = ["duty@example.org"]
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA,
        locale="zh-CN",
        is_mobile=True,
        has_touch=True,
    )
    page = await context.new_page()
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(live.base_url + "/q")
    assert await page.title() == "工单进度查询"
    # A wrong code: refused, and the page reads the same for an order that does not exist.
    wrong = "000000" if code != "000000" else "111111"
    await page.fill('input[name="number"]', number)
    await page.fill('input[name="code"]', wrong)
    await page.click("#q-form button")
    assert "不正确" in await page.text_content("#q-error")
    await page.fill('input[name="number"]', "GD20990101-00001")
    await page.fill('input[name="code"]', wrong)
    await page.click("#q-form button")
    assert "不正确" in await page.text_content("#q-error")
    # The right code: the timeline, in plain words, without staff, outlet or notes.
    await page.fill('input[name="number"]', number.lower())
    await page.fill('input[name="code"]', code)
    await page.click("#q-form button")
    await page.wait_for_selector("#q-timeline")
    text = await page.text_content("main")
    steps = await page.locator("#q-timeline li").all_text_contents()
    assert [s.rsplit(" ", 1)[-1] for s in steps] == [
        "您的诉求已受理",
        "已交承办单位办理",
        "承办单位已接收",
        "正在办理",
        "已办结",
    ]
    for secret in ("seat1001", "outlet-a", "张三", "内部备注", "服务站", "楼道灯", "王师傅"):
        assert secret not in text, secret
    # The page fits the phone's width (no sideways scrolling).
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    # Dissatisfied, with a comment: the 回访, for a supervisor to review (重办).
    await page.check('input[name="rating"][value="5"]')
    await page.fill('textarea[name="comment"]', "灯还是不亮<script>")
    await page.click("#q-rate button")
    assert "感谢" in await page.text_content("#q-rated")
    assert await page.locator("#q-rate").count() == 0
    with session_scope(live.settings) as s:
        order = s.get(WorkOrder, order_id)
        assert order is not None
        assert order.status == Status.FOLLOWED_UP and order.satisfaction == "不满意"
        assert order.resident_comment == "灯还是不亮<script>"
        last = s.exec(select(OrderHistory).where(OrderHistory.order_id == order_id)).all()[-1]
        assert last.action == "回访" and last.detail["channel"] == "page" and last.detail["rating"] == 5
        # The supervisors are told, with the resident's words
        mails = s.exec(select(MailMessage).where(MailMessage.order_id == order_id)).all()
        review = [m for m in mails if "重办审核" in m.subject]
        assert len(review) == 1 and review[0].to == ["duty@example.org"]
        assert number in review[0].subject and "非常不满意，居民查询页" in review[0].text
        assert "灯还是不亮<script>" in review[0].text
    assert "正在复核" in await page.text_content("#q-status")
    # A supervisor finds it among the orders awaiting 重办 review and re-opens it.
    sup = await live.login("super")
    listed = await sup.get("/orders")
    assert "1 件工单居民评价不满意，待重办审核" in listed.text
    listed = await sup.get("/orders", params={"review": "true"})
    assert f'data-number="{number}"' in listed.text and "共 1 条" in listed.text
    detail = await sup.get(f"/orders/{order_id}")
    r = await sup.post(f"/orders/{order_id}/action", data={"csrf": csrf_from(detail.text), "action": "重办"})
    assert r.status_code == 303, r.text
    assert "共 0 条" in (await sup.get("/orders", params={"review": "true"})).text
    await sup.aclose()
    # The resident's page says it is being handled again.
    await page.goto(live.base_url + "/q")
    await page.fill('input[name="number"]', number)
    await page.fill('input[name="code"]', code)
    await page.click("#q-form button")
    await page.wait_for_selector("#q-timeline")
    assert "正在办理" in await page.text_content("#q-status")
    steps = await page.locator("#q-timeline li").all_text_contents()
    assert [x.rsplit(" ", 1)[-1] for x in steps[-2:]] == ["已回访", "已安排重新办理"]
    with session_scope(live.settings) as s:
        order = s.get(WorkOrder, order_id)
        assert order is not None and order.status == Status.DISPATCHED and order.reopen_count == 1
    assert hosts == {urlparse(live.base_url).netloc} and not errors
    await context.close()


async def test_wrong_codes_are_throttled(live, browser):
    number, code, _order_id = resolved_order(live.settings)
    page = await browser.new_page(viewport={"width": 390, "height": 844}, user_agent=WECHAT_UA)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(live.settings.login_max_failures):
        await page.goto(live.base_url + "/q")
        await page.fill('input[name="number"]', number)
        await page.fill('input[name="code"]', wrong)
        await page.click("#q-form button")
        assert "不正确" in await page.text_content("#q-error")
    # Now even the right code waits: guessing stops here.
    await page.goto(live.base_url + "/q")
    await page.fill('input[name="number"]', number)
    await page.fill('input[name="code"]', code)
    await page.click("#q-form button")
    assert "次数过多" in await page.text_content("#q-error")
    assert await page.locator("#q-timeline").count() == 0
