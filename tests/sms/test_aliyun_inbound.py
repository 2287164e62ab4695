"""Aliyun's push of outlets' replies (SmsUp), posted by the stand-in in the documented format
(https://help.aliyun.com/zh/sms/developer-reference/smsup-http) to the live app, with the answers
sent back through the Aliyun SDK to the stand-in's dysmsapi: only registered outlet numbers, only
the documented fields, only a current (or, while rotating, the previous) token."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlmodel import select

from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from dispatch.models import OrderHistory, Status, WorkOrder
from sms.models import SmsInbound, SmsMessage
from sms.service import OutboxWorker
from sms.testing import FakeAliyun

TOKEN = "push-token-new-0123456789"
OLD_TOKEN = "push-token-old-0123456789"


@pytest.fixture
def aliyun():
    with FakeAliyun() as server:
        yield server


@pytest.fixture
def msettings(tmp_path, aliyun: FakeAliyun, web_port: int) -> Settings:
    """The SMS settings of this module: Aliyun's SDK against the stand-in (overrides conftest's)."""
    s = set_settings(
        Settings(
            data_dir=tmp_path / "var",
            _env_file=None,
            sms_provider="aliyun",
            aliyun_access_key_id=aliyun.key_id,
            aliyun_access_key_secret=aliyun.key_secret,
            aliyun_endpoint=aliyun.endpoint,
            aliyun_protocol="http",
            aliyun_sign_name="安宁社区",
            aliyun_template_code="SMS_000001",
            aliyun_inbound_token=TOKEN,
            public_base_url=f"http://127.0.0.1:{web_port}",
            sms_retry_base_s=0.05,
            session_secret="s" * 40,
        )
    )
    migrate(s)
    return s


def _status(order_id: int) -> str:
    with session_scope() as s:
        order = s.get(WorkOrder, order_id)
        assert order is not None
        return order.status


async def _push(aliyun: FakeAliyun, url: str, items: list):
    return await asyncio.to_thread(aliyun.push_replies, url, items)


async def _drain(settings: Settings) -> None:
    worker = OutboxWorker(settings)
    for _ in range(3):
        await worker.run_once()


async def test_a_registered_outlet_is_answered_through_the_aliyun_sdk(aliyun, world, live_app, msettings):
    code = world.code(world.order)
    await _drain(msettings)  # the dispatch notices, sent before the reply
    before = len(aliyun.messages)
    url = f"{live_app}/sms/aliyun/inbound?token={TOKEN}"
    r = await _push(aliyun, url, [aliyun.up_message("13900000001", f"签收 {code}")])
    assert r.status_code == 200 and r.json() == {"code": 0, "msg": "接收成功"}
    assert _status(world.order) == Status.ACCEPTED
    await _drain(msettings)
    [answer] = aliyun.messages[before:]
    assert answer["phone"] == "13900000001" and "已签收" in answer["params"]["content"]
    assert answer["sign"] == "安宁社区" and answer["template"] == "SMS_000001"


async def test_unregistered_and_forged_senders_get_nothing(aliyun, world, live_app, msettings, caplog):
    caplog.set_level(logging.WARNING, logger="sms.views")
    code = world.code(world.order)
    await _drain(msettings)
    before = len(aliyun.messages)
    url = f"{live_app}/sms/aliyun/inbound?token={TOKEN}"
    up = aliyun.up_message
    no_send_time = up("13900000001", f"签收 {code}")
    del no_send_time["send_time"]
    items = [
        up("13700000099", f"签收 {code}"),  # a stranger's number: not registered for any outlet
        up("+8613700000099", f"办结 {code} 好了"),
        up("13900000001;13700000099", f"签收 {code}"),  # forged sender fields
        up("13900000001\n", f"签收 {code}"),
        up("+1 555 0100", f"签收 {code}"),
        up("outlet", f"签收 {code}"),
        {**up("13900000001", f"签收 {code}"), "phone_number": 13900000001},
        up("13900000001", f"签收 {code}", sign_name="别家商城"),  # a reply to another sender's SMS
        {**up("13900000001", f"签收 {code}"), "from_admin": True},  # not a field Aliyun sends
        {**up("13900000001", f"签收 {code}"), "sequence_id": "1; DROP"},
        {**up("13900000001", f"签收 {code}"), "send_time": "yesterday"},
        up("13900000001", "签收 " + code + " " + "好" * 600),  # longer than a reply can be
        no_send_time,
        "签收",
    ]
    r = await _push(aliyun, url, items)
    assert r.status_code == 200 and r.json()["code"] == 0  # taken, so Aliyun does not push again
    assert _status(world.order) == Status.DISPATCHED
    with session_scope() as s:
        assert s.exec(select(SmsInbound)).all() == []
        assert [
            h.action for h in s.exec(select(OrderHistory).where(OrderHistory.order_id == world.order))
        ] == [
            "受理",
            "派单",
        ]
        assert not [m for m in s.exec(select(SmsMessage)) if m.idempotency_key.startswith("reply:")]
    await _drain(msettings)
    assert aliyun.messages[before:] == []  # no answer costs a message to a stranger
    # Each refusal is logged, with the number masked.
    assert caplog.text.count("unregistered number 137****0099") == 1
    assert "unregistered number +86****0099" in caplog.text
    for reason in (
        "sign_name is not ours",
        "phone_number is not a mainland mobile number",
        "are not SmsUp's",
    ):
        assert reason in caplog.text
    # A body that is not the documented JSON array is refused outright.
    for body in ({"phone_number": "13900000001"}, "签收"):
        r = await _push(aliyun, url, body)  # type: ignore[arg-type]
        assert r.status_code == 400


async def test_the_token_rotates_with_two_valid_at_a_time(aliyun, world, live_app, msettings):
    code, other = world.code(world.order), world.code(world.other_order)
    push = f"{live_app}/sms/aliyun/inbound?token="
    # Rotation: the new token is current, the old one still works until the console is updated.
    msettings.aliyun_inbound_token_previous = OLD_TOKEN
    r = await _push(aliyun, push + OLD_TOKEN, [aliyun.up_message("13900000001", f"签收 {code}")])
    assert r.status_code == 200 and _status(world.order) == Status.ACCEPTED
    # Rotation done: the old token is refused, whatever it carries.
    msettings.aliyun_inbound_token_previous = ""
    r = await _push(aliyun, push + OLD_TOKEN, [aliyun.up_message("13900000002", f"签收 {other}")])
    assert r.status_code == 403 and _status(world.other_order) == Status.DISPATCHED
    for bad in ("", "wrong", TOKEN + "x", TOKEN[:-1]):
        r = await _push(aliyun, push + bad, [aliyun.up_message("13900000002", f"签收 {other}")])
        assert r.status_code == 403
    r = await _push(
        aliyun, f"{live_app}/sms/aliyun/inbound", [aliyun.up_message("13900000002", f"签收 {other}")]
    )
    assert r.status_code == 403 and _status(world.other_order) == Status.DISPATCHED
    r = await _push(aliyun, push + TOKEN, [aliyun.up_message("13900000002", f"签收 {other}")])
    assert r.status_code == 200 and _status(world.other_order) == Status.ACCEPTED
    # No current token configured: the webhook is off, even for the previous one.
    msettings.aliyun_inbound_token, msettings.aliyun_inbound_token_previous = "", TOKEN
    r = await _push(aliyun, push + TOKEN, [aliyun.up_message("13900000002", f"进度 {other} 已联系")])
    assert r.status_code == 403


async def test_only_aliyuns_addresses_when_they_are_configured(aliyun, world, live_app, msettings):
    code = world.code(world.order)
    url = f"{live_app}/sms/aliyun/inbound?token={TOKEN}"
    msettings.aliyun_inbound_sources = ["100.64.0.0/10"]
    r = await _push(aliyun, url, [aliyun.up_message("13900000001", f"签收 {code}")])
    assert r.status_code == 403 and _status(world.order) == Status.DISPATCHED
    msettings.aliyun_inbound_sources = ["100.64.0.0/10", "127.0.0.0/8"]
    r = await _push(aliyun, url, [aliyun.up_message("13900000001", f"签收 {code}")])
    assert r.status_code == 200 and _status(world.order) == Status.ACCEPTED


async def test_a_push_is_bounded_in_size_even_without_a_length(aliyun, world, live_app):
    import httpx

    async def chunks():
        yield b"["
        for _ in range(400):  # about 400 KB, sent chunked (no Content-Length)
            yield b'{"phone_number": "13900000001", "content": "' + b"x" * 1000 + b'"},'
        yield b"{}]"

    async with httpx.AsyncClient(trust_env=False) as c:
        url = f"{live_app}/sms/aliyun/inbound?token={TOKEN}"
        r = await c.post(url, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and _status(world.order) == Status.DISPATCHED


def test_the_source_networks_are_checked_when_configured():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="aliyun_inbound_sources"):
        Settings(_env_file=None, aliyun_inbound_sources=["100.64.0.0/10", "aliyun"])
