"""A message template edited on the administrators' page in Chromium is the text the Twilio
stand-in receives for the next dispatch; the page previews it with a real order and counts its
length and SMS segments as it is typed."""

from __future__ import annotations

import pytest
from sqlmodel import select

from callcenter.accounts.models import Account
from callcenter.accounts.service import hash_password
from callcenter.database import session_scope
from dispatch import service as dispatch
from dispatch import transitions
from dispatch.models import WorkOrder
from sms.service import OutboxWorker

pytestmark = pytest.mark.browser

PASSWORD = "pw-admin-Secret!"


async def test_an_edited_template_is_what_twilio_receives(msettings, twilio, live_app, world, browser):
    with session_scope(msettings) as s:
        s.add(
            Account(
                username="admin", display_name="管理员", password_hash=hash_password(PASSWORD), role="admin"
            )
        )
        first = s.get(WorkOrder, world.order)
        s.commit()
        number = first.number
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(live_app + "/login")
    await page.fill("#username", "admin")
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_load_state()
    await page.goto(live_app + "/admin/templates")
    form = page.locator('[data-template="outlet_order"] form[data-form="template"]')
    body = "{signature}新工单{number}：{summary}{address}，请于{deadline}前办结。回复“签收 {code}”签收。"
    counter = page.locator("#counter-outlet_order")
    await form.locator('textarea[name="body"]').fill("工单{number}")
    assert (await counter.get_attribute("data-length"), await counter.get_attribute("data-segments")) == (
        "10",
        "1",
    )
    await form.locator('textarea[name="body"]').fill(body)  # 74 characters as written: two Chinese SMS
    assert (await counter.get_attribute("data-length"), await counter.get_attribute("data-segments")) == (
        "74",
        "2",
    )
    # A variable the template does not have: refused with the catalogue's words, nothing saved.
    await form.locator('textarea[name="body"]').fill(body + "{resident_id_card}")
    await form.locator('button[type="submit"]').click()
    assert "不是此模板可用的变量" in await page.text_content("#error")
    form = page.locator('[data-template="outlet_order"] form[data-form="template"]')
    await form.locator('textarea[name="body"]').fill(body)
    await form.locator('button[type="submit"]').click()
    await page.wait_for_selector('[data-template="outlet_order"][data-custom="1"]')
    # The preview with a real order.
    preview = page.locator('[data-template="outlet_order"] form[data-form="preview"]')
    await preview.locator('input[name="order"]').fill(number)
    await preview.locator('button[type="submit"]').click()
    text = await page.text_content('#preview-result [data-field="preview-body"]')
    assert text.startswith(f"【安宁社区热线】新工单{number}：楼道灯不亮")
    assert errors == []
    await page.close()

    # The next dispatch's SMS, through the outbox and the Twilio SDK, is the edited text.
    seat = dispatch.Actor("seat1001", "seat")
    with session_scope(msettings) as s:
        order = dispatch.create_order(s, seat, order_type="求助", summary="水管爆裂", address="培黎街3号")
        s.flush()
        transitions.transition(s, order, "派单", seat, outlet_id=world.outlet)
        s.commit()
        expected_start = f"【安宁社区热线】新工单{order.number}：水管爆裂，地址：培黎街3号，请于"
        code = order.short_code
    worker = OutboxWorker(msettings)
    await worker.run_once()
    bodies = [m.body for m in twilio.messages]
    mine = [b for b in bodies if b.startswith(expected_start)]
    assert len(mine) == 1 and mine[0].endswith(f"前办结。回复“签收 {code}”签收。"), bodies
    with session_scope(msettings) as s:
        assert s.exec(select(WorkOrder).where(WorkOrder.number == number)).one()
