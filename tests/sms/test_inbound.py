"""Outlets' SMS replies through the signed Twilio webhook, posted by the stand-in as Twilio does."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from callcenter.database import session_scope
from dispatch.models import OrderHistory, Status, WorkOrder
from sms.models import SmsInbound

from .conftest import OTHER_OUTLET_PHONE, OUTLET_PHONE, OUTLET_PHONE2, STRANGER


def _order(order_id: int) -> WorkOrder:
    with session_scope() as s:
        return s.get(WorkOrder, order_id)


def _history(order_id: int) -> list[str]:
    with session_scope() as s:
        return [h.action for h in s.exec(select(OrderHistory).where(OrderHistory.order_id == order_id))]


async def _reply(twilio, base: str, sender: str, body: str, **kw):
    return await asyncio.to_thread(twilio.inbound, base + "/sms/twilio/inbound", sender, body, **kw)


async def test_accept_progress_resolve_by_sms(twilio, world, live_app):
    code = world.code(world.order)
    r = await _reply(twilio, live_app, "13900000001", f"签收 {code}")  # national form of OUTLET_PHONE
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert "已签收" in r.text and "<Message>" in r.text
    assert _order(world.order).status == Status.ACCEPTED
    r = await _reply(twilio, live_app, OUTLET_PHONE2, f"进度　{code}　已联系居民，明早上门")  # full-width
    assert "进度已记录" in r.text
    assert _order(world.order).status == Status.IN_PROGRESS
    r = await _reply(twilio, live_app, OUTLET_PHONE, f"办结 {code} 已更换灯泡")
    o = _order(world.order)
    assert o.status == Status.RESOLVED and o.resolution == "已更换灯泡"
    assert _history(world.order)[-3:] == ["签收", "办理", "办结"]
    with session_scope() as s:
        hist = s.exec(select(OrderHistory).where(OrderHistory.order_id == world.order)).all()
        assert hist[-1].actor == f"sms:{OUTLET_PHONE}" and hist[-1].role == "outlet"


async def test_return_needs_a_reason_and_applies_with_one(twilio, world, live_app):
    code = world.code(world.order)
    r = await _reply(twilio, live_app, OUTLET_PHONE, f"退单 {code}")
    assert "回复格式" in r.text and _order(world.order).status == Status.DISPATCHED
    r = await _reply(twilio, live_app, OUTLET_PHONE, f"退单 {code} 不属于本片区")
    o = _order(world.order)
    assert o.status == Status.RETURNED and o.return_reason == "不属于本片区"


async def test_unregistered_sender_changes_nothing(twilio, world, live_app):
    code = world.code(world.order)
    r = await _reply(twilio, live_app, STRANGER, f"签收 {code}")
    # A stranger gets no SMS back (each is paid), only an empty TwiML answer.
    assert r.status_code == 200 and "<Message" not in r.text and "未登记" not in r.text
    # Another outlet's number cannot act on this order either; it reads as an unknown code.
    r = await _reply(twilio, live_app, OTHER_OUTLET_PHONE, f"签收 {code}")
    assert "未找到编号" in r.text
    assert _order(world.order).status == Status.DISPATCHED
    assert _history(world.order) == ["受理", "派单"]
    with session_scope() as s:
        outcomes = [i.outcome for i in s.exec(select(SmsInbound).order_by(SmsInbound.id))]
    assert outcomes == ["unknown_sender", "unknown_code"]


async def test_unknown_code_malformed_and_refused_get_help(twilio, world, live_app):
    r = await _reply(twilio, live_app, OUTLET_PHONE, "签收 99999")
    assert "未找到编号99999" in r.text
    r = await _reply(twilio, live_app, OUTLET_PHONE, "好的收到")
    assert "回复格式" in r.text
    code = world.code(world.order)
    r = await _reply(twilio, live_app, OUTLET_PHONE, f"办结 {code} 修好了")  # not accepted yet
    assert "不能办结" in r.text
    assert _order(world.order).status == Status.DISPATCHED


async def test_forged_and_replayed_webhooks_are_rejected(twilio, world, live_app):
    code = world.code(world.order)
    url = live_app + "/sms/twilio/inbound"
    # Signed with another token (a forger who does not have ours).
    from twilio.request_validator import RequestValidator

    params = {
        "MessageSid": "SMforged",
        "AccountSid": twilio.account_sid,
        "From": OUTLET_PHONE,
        "Body": f"签收 {code}",
    }
    bad = RequestValidator("not-the-token").compute_signature(url, params)
    r = await asyncio.to_thread(twilio.post_signed, url, params, bad)
    assert r.status_code == 403
    r = await asyncio.to_thread(twilio.post_signed, url, params, "")
    assert r.status_code == 403
    # A valid signature for other parameters (the body changed on the way).
    good_for_other = twilio.sign(url, {**params, "Body": "签收 0000"})
    r = await asyncio.to_thread(twilio.post_signed, url, params, good_for_other)
    assert r.status_code == 403
    assert _order(world.order).status == Status.DISPATCHED

    r = await _reply(twilio, live_app, OUTLET_PHONE, f"签收 {code}", sid="SMreplay0001")
    assert r.status_code == 200 and _order(world.order).status == Status.ACCEPTED
    r = await _reply(twilio, live_app, OUTLET_PHONE, f"签收 {code}", sid="SMreplay0001")
    assert r.status_code == 409
    assert _history(world.order).count("签收") == 1
    with session_scope() as s:
        assert len(s.exec(select(SmsInbound)).all()) == 1


async def test_aliyun_push_of_replies(twilio, world, live_app, msettings):
    import httpx

    from sms.models import SmsMessage

    msettings.aliyun_inbound_token = "push-token-0123456789"
    code = world.code(world.order)
    url = live_app + "/sms/aliyun/inbound"
    base = {
        "phone_number": "13900000001",
        "send_time": "2026-11-29 09:01:00",
        "sign_name": "安宁社区",
        "dest_code": "1234",
    }
    items = [
        {
            "phone_number": "13900000001",
            "send_time": "2026-11-29 09:00:00",
            "content": f"签收 {code}",
            "sign_name": "安宁社区",
            "dest_code": "1234",
            "sequence_id": 9001,
        },
        {**base, "content": "收到", "sequence_id": 9002},
        {**base, "phone_number": "13700000099", "content": f"办结 {code} 好了", "sequence_id": 9003},
    ]
    async with httpx.AsyncClient(trust_env=False) as c:
        assert (await c.post(url, json=items)).status_code == 403
        assert (await c.post(url + "?token=wrong", json=items)).status_code == 403
        r = await c.post(url + "?token=push-token-0123456789", json=items)
        assert r.status_code == 200 and r.json() == {"code": 0, "msg": "接收成功"}
        r = await c.post(url + "?token=push-token-0123456789", json=items[:1])  # pushed again
        assert r.status_code == 200
    assert _order(world.order).status == Status.ACCEPTED
    assert _history(world.order).count("签收") == 1
    with session_scope() as s:
        replies = {
            m.idempotency_key: m for m in s.exec(select(SmsMessage)) if m.idempotency_key.startswith("reply:")
        }
    # The registered outlet is answered by SMS; the stranger is not.
    assert set(replies) == {"reply:aliyun:9001", "reply:aliyun:9002"}
    assert "回复格式" in replies["reply:aliyun:9002"].body and replies["reply:aliyun:9001"].to == OUTLET_PHONE


async def test_forged_status_callback_is_refused(twilio, world, live_app):
    from sms.models import SmsMessage

    with session_scope() as s:
        msg = s.exec(select(SmsMessage)).first()  # the 派单 notice in the outbox
    url = f"{live_app}/sms/twilio/status?m={msg.id}"
    params = {"AccountSid": twilio.account_sid, "MessageSid": "SMx", "MessageStatus": "delivered"}
    r = await asyncio.to_thread(twilio.post_signed, url, params, "forged")
    assert r.status_code == 403
    # Signed for another message id in the URL: the query is part of what is signed.
    sig = twilio.sign(f"{live_app}/sms/twilio/status?m=999999", params)
    r = await asyncio.to_thread(twilio.post_signed, url, params, sig)
    assert r.status_code == 403
    with session_scope() as s:
        after = s.get(SmsMessage, msg.id)
    assert after.status == msg.status and after.callbacks == msg.callbacks
    r = await asyncio.to_thread(twilio.post_signed, url, params)  # genuine
    assert r.status_code == 200
    with session_scope() as s:
        assert s.get(SmsMessage, msg.id).status == "delivered"


def test_cli_reply_goes_through_the_same_checks(world, msettings, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "CALLCENTER_DATA_DIR": str(msettings.data_dir)}
    code = world.code(world.order)

    def run(sender: str, *text: str):
        return subprocess.run(
            [sys.executable, "-m", "hotline.cli", "sms-reply", "--from", sender, *text],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = run(STRANGER, "签收", code)
    assert r.returncode == 1 and r.stdout.startswith("unknown_sender")
    r = run(OUTLET_PHONE, "签收", code)
    assert r.returncode == 0 and r.stdout.startswith("applied") and "已签收" in r.stdout
    assert _order(world.order).status == Status.ACCEPTED


async def test_the_answer_to_a_return_is_the_administrators_template(twilio, world, live_app):
    """退单 by SMS: the outlet's answer is the text an administrator set (template ``reply_applied``)."""
    from dispatch import categories, message_templates

    with session_scope() as s:
        admin = categories.Editor("admin", "admin")
        message_templates.save(s, admin, "reply_applied", {"body": "【热线】{number}：{verb}，谢谢"})
        s.commit()
    code = world.code(world.order)
    r = await _reply(twilio, live_app, OUTLET_PHONE, f"退单 {code} 不属于本片区")
    number = _order(world.order).number
    assert f"【热线】{number}：已退单，谢谢" in r.text
    assert _order(world.order).status == Status.RETURNED


async def test_a_refusal_is_the_administrators_template(twilio, world, live_app):
    """办结 before 签收: the refusal's answer is the text an administrator set (``reply_refused_state``)."""
    from dispatch import categories, message_templates

    with session_scope() as s:
        admin = categories.Editor("admin", "admin")
        message_templates.save(
            s, admin, "reply_refused_state", {"body": "{number}现为{status}，暂不能{command}"}
        )
        s.commit()
    code = world.code(world.order)
    r = await _reply(twilio, live_app, OUTLET_PHONE, f"办结 {code} 修好了")
    order = _order(world.order)
    assert f"{order.number}现为{order.status}，暂不能办结" in r.text
    assert order.status == Status.DISPATCHED
