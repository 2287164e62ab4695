"""A real call through Asterisk pops in Chromium, and the seat creates the work order from the pop:
pre-filled from the call, routed by the rules, saved with the call linked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import select

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from callcenter.directory.models import Outlet
from dispatch.models import Category, OrderCall, Status, WorkOrder
from hotline.demo import DEMO_PASSWORD
from tests.e2e.conftest import SEAT_PORT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def test_order_created_from_a_real_calls_pop(app, browser):  # noqa: F811
    page = await browser.new_page(viewport={"width": 1366, "height": 1000}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(app.base_url + "/login")
    await page.fill("#username", "seat1001")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(app.base_url + "/console")
    await page.wait_for_selector('#conn[data-conn="online"]', timeout=10000)
    with session_scope(app.settings) as s:
        repair = s.exec(select(Category).where(Category.code == "LIFE-REPAIR")).one()
        station = s.exec(select(Outlet).where(Outlet.name == "物业维修服务站")).one()

    with SippUAS(port=SEAT_PORT, ring_ms=1500, talk_ms=0):
        call = asyncio.create_task(place_call(app.settings, did="96345", caller="13919310001", hold_ms=12000))
        try:
            linkedid, number = await _take_order(page, repair, station)
        finally:
            result = await call  # never leave a calling sipp behind (it sends no BYE when killed)
        assert result.ok
    assert errors == []
    with session_scope(app.settings) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).one()
        assert order.status == Status.DISPATCHED and order.outlet_id == station.id
        assert order.call_linkedid == linkedid and order.caller_phone == "+8613919310001"
        assert s.exec(select(OrderCall.linkedid).where(OrderCall.order_id == order.id)).all() == [linkedid]
    # The call's record (written when it ends) is the call the order links to.
    for _ in range(50):
        with session_scope(app.settings) as s:
            rec = s.exec(select(CallRecord).where(CallRecord.linkedid == linkedid)).first()
        if rec is not None:
            break
        await asyncio.sleep(0.2)
    assert rec is not None and rec.resident_id == order.resident_id and rec.outcome == "answered"
    await page.close()


async def _take_order(page, repair, station) -> tuple[str, str]:
    await page.wait_for_selector(
        '#pop[data-state="talking"] [data-field="resident-name"]:text("王秀英")', timeout=20000
    )
    linkedid = await page.get_attribute("#pop", "data-linkedid")
    # The pop shows her elderly profile and earlier orders; the form is pre-filled from the call.
    await page.wait_for_selector('#pop [data-block="dispatch"][data-filled="1"]', timeout=10000)
    assert "高血压" in await page.text_content('#pop [data-block="dispatch"]')
    await page.wait_for_selector("#order-panel:not([hidden])")
    assert await page.get_attribute("#order-form", "data-linkedid") == linkedid
    assert await page.input_value('#order-form input[name="address"]') == "培黎街56号2单元301室"
    await page.select_option('#order-form select[name="category_id"]', str(repair.id))
    # Repairs in her community go to the property repair station (a community rule).
    await page.wait_for_function(
        "() => document.querySelector('[data-field=order-suggestion]').textContent"
        " .includes('物业维修服务站')"
    )
    assert await page.input_value('#order-form select[name="outlet_id"]') == str(station.id)
    await page.fill('#order-form textarea[name="summary"]', "厨房水管漏水，请尽快上门维修")
    await page.click("#order-save")
    await page.wait_for_selector("#order-message[data-number]", timeout=10000)
    number = await page.get_attribute("#order-message", "data-number")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "console-order.png"))
    return linkedid, number
