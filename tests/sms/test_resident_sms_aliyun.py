"""Residents' SMS through the Aliyun stand-in: the receipt goes out through the SDK, the rating
comes back in Aliyun's push (SmsUp) and becomes the 回访; TD stops the progress notices."""

from __future__ import annotations

from dispatch.models import Status, WorkOrder
from tests.sms.test_aliyun_inbound import TOKEN, _drain, _push, aliyun, msettings  # noqa: F401
from tests.sms.test_resident_sms import _get, _order, _order_dispatched_at_once


async def test_receipt_rating_and_unsubscribe_through_aliyun(aliyun, world, live_app, msettings):  # noqa: F811
    order_id = _order(msettings, "13800138000", world.outlet, ("派单", "签收", "办结"))
    await _drain(msettings)
    order: WorkOrder = _get(order_id)
    sent = [m["params"]["content"] for m in aliyun.messages if m["phone"] == "13800138000"]
    assert any(order.number in c and order.query_code in c and msettings.resident_page() in c for c in sent)
    assert len(sent) == 3
    url = f"{live_app}/sms/aliyun/inbound?token={TOKEN}"
    r = await _push(aliyun, url, [aliyun.up_message("13800138000", "3")])
    assert r.status_code == 200
    order = _get(order_id)
    assert order.status == Status.FOLLOWED_UP and order.satisfaction == "基本满意"
    await _drain(msettings)
    assert "感谢" in aliyun.messages[-1]["params"]["content"]
    # 退订, then a new order: the receipt only.
    await _push(aliyun, url, [aliyun.up_message("13800138000", "TD")])
    before = len(aliyun.messages)
    second = _order(msettings, "13800138000", world.outlet, ("派单",))
    await _drain(msettings)
    later = [m["params"]["content"] for m in aliyun.messages[before:] if m["phone"] == "13800138000"]
    assert any("已退订" in c for c in later)
    assert [c for c in later if _get(second).number in c and "已受理" in c]
    assert not [c for c in later if "已交承办单位" in c]


async def test_taken_and_dispatched_at_once_one_sms_through_aliyun(aliyun, world, msettings):  # noqa: F811
    order_id = _order_dispatched_at_once(msettings, "13800138000", world.outlet)
    await _drain(msettings)
    order: WorkOrder = _get(order_id)
    [sent] = [m for m in aliyun.messages if m["phone"] == "13800138000"]
    # No registered template of its own yet: the provider's default template carries the text.
    assert sent["template"] == msettings.aliyun_template_code
    content = sent["params"]["content"]
    assert "已受理并交承办单位办理" in content and order.number in content and order.query_code in content
