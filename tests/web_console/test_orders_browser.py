"""The console's order form in Chromium: a pop pre-fills it (resident, community, the IVR's
category, the call), shows the routing suggestion and the resident's archive; the seat overrides
the outlet and saves; the order is stored with the call linked. Then the outlet's mobile page."""

from __future__ import annotations

import pytest
from sqlmodel import select

from callcenter.accounts.models import Account
from callcenter.database import Reads, session_scope
from callcenter.residents.models import ElderlyProfile, HouseholdMember, Resident
from dispatch import service
from dispatch.models import OrderCall, Status, WorkOrder
from dispatch.profile import resident_extras
from dispatch.testing import build_world

pytestmark = pytest.mark.browser


async def _login(page, base: str, username: str, password: str, lands: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_url(base + lands)


async def test_order_from_pop_in_browser(live, browser, web):
    settings = live.settings
    with session_scope(settings) as s:
        w = build_world(s)
        s.add(HouseholdMember(resident_id=w.resident, name="李建华", relation="儿子", phone="13800001234"))
        s.add(ElderlyProfile(resident_id=w.resident, health_notes="高血压<b>", caregiver="张护工"))
        r = s.get(Resident, w.resident)
        outlet_user = s.exec(select(Account).where(Account.username == "outlet")).one()
        outlet_user.outlet_id = w.outlet_b
        s.add(outlet_user)
        earlier = service.create_order(
            s, w.seat, order_type="求助", summary="上周的助餐申请", resident_id=w.resident
        )
        s.commit()
        earlier_id = earlier.id
        extras = resident_extras(Reads(s), w.resident)
    page = await browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await _login(page, live.base_url, "seat1001", web.password("seat1001"), "/console")
    await page.wait_for_selector('#conn[data-conn="online"]')
    pop = web.pop(
        "1764300000.42",
        state="talking",
        caller="+8613919310001",
        resident={
            "id": w.resident,
            "name": r.name,
            "community": "十里店社区",
            "community_id": w.community,
            "address": r.address,
            "elderly": True,
            "lives_alone": True,
            "age": 84,
        },
        dispatch=extras,
        ivr_category="LIFE-WATER",
        summary_12345="",
    )
    await live.bus.publish("seat.1001", pop)
    await page.wait_for_selector('#pop [data-block="dispatch"][data-filled="1"]')
    block = await page.text_content('#pop [data-block="dispatch"]')
    assert "李建华" in block and "高血压<b>" in block and "张护工" in block  # text, not markup
    href = await page.get_attribute('#pop [data-action="resident-file"]', "href")
    assert href == f"/residents/{w.resident}"
    # She rings about an open order too: this call joins it.
    await page.click('#pop [data-action="link-call"]')
    await page.wait_for_selector('#pop [data-action="link-call"]:text("已关联本次来电")')
    with session_scope(settings) as s:
        linked = s.exec(select(OrderCall.linkedid).where(OrderCall.order_id == earlier_id)).all()
        assert "1764300000.42" in linked
    await page.wait_for_selector("#order-panel:not([hidden])")
    form = page.locator("#order-form")
    assert await form.get_attribute("data-linkedid") == "1764300000.42"
    assert await page.input_value('#order-form select[name="category_id"]') == str(
        w.cat_water
    )  # from the IVR
    assert await page.input_value('#order-form select[name="community_id"]') == str(w.community)
    assert await page.input_value('#order-form input[name="address"]') == r.address
    await page.wait_for_function(
        "() => document.querySelector('[data-field=order-suggestion]').textContent"
        " .includes('安宁水电维修公司')"
    )
    assert await page.input_value('#order-form select[name="outlet_id"]') == str(w.supplier)
    # The seat overrides the suggestion and saves.
    await page.select_option('#order-form select[name="outlet_id"]', str(w.outlet_b))
    await page.fill('#order-form textarea[name="summary"]', "厨房水管爆裂，需要上门维修")
    await page.click("#order-save")
    await page.wait_for_selector("#order-message[data-number]")
    number = await page.get_attribute("#order-message", "data-number")
    assert (await page.get_attribute("#order-message a", "href")).startswith("/orders/")
    assert errors == []
    with session_scope(settings) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).one()
        assert order.status == Status.DISPATCHED and order.outlet_id == w.outlet_b
        assert order.suggested_outlet_id == w.supplier and order.category_id == w.cat_water
        assert order.resident_id == w.resident and order.call_linkedid == "1764300000.42"
        assert s.exec(select(OrderCall.linkedid).where(OrderCall.order_id == order.id)).all() == [
            "1764300000.42"
        ]
        order_id = order.id

    # The outlet (a phone-sized screen) accepts and resolves it.
    phone = await browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    await _login(phone, live.base_url, "outlet", web.password("outlet"), "/outlet")
    await phone.click(f'[data-number="{number}"] a')
    await phone.click('form[data-action="签收"] button')
    await phone.wait_for_selector("#order-flash")
    # (docs/screenshots/outlet-page.png is taken by test_visual_browser.py, with its layout audit)
    await phone.fill('form[data-action="办结"] textarea[name="note"]', "已更换水管")
    await phone.click('form[data-action="办结"] button')
    await phone.wait_for_selector("#order-flash")
    with session_scope(settings) as s:
        assert s.get(WorkOrder, order_id).status == Status.RESOLVED
