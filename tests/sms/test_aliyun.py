"""Aliyun SMS through its SDK against a local server speaking dysmsapi (signature checked)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from sms.models import SmsMessage, SmsStatus
from sms.providers import AliyunProvider, Outgoing, ProviderError
from sms.service import OutboxWorker, enqueue_sms
from sms.testing import FakeAliyun


@pytest.fixture
def aliyun():
    with FakeAliyun() as server:
        yield server


@pytest.fixture
def asettings(tmp_path, aliyun) -> Settings:
    env = aliyun.settings_env()
    s = set_settings(
        Settings(
            data_dir=tmp_path / "var",
            _env_file=None,
            sms_provider="aliyun",
            aliyun_access_key_id=env["CALLCENTER_ALIYUN_ACCESS_KEY_ID"],
            aliyun_access_key_secret=env["CALLCENTER_ALIYUN_ACCESS_KEY_SECRET"],
            aliyun_endpoint=env["CALLCENTER_ALIYUN_ENDPOINT"],
            aliyun_protocol="http",
            aliyun_sign_name="安宁社区",
            aliyun_template_code="SMS_000001",
            sms_retry_base_s=0.01,
        )
    )
    migrate(s)
    return s


async def test_outbox_through_the_aliyun_sdk(asettings, aliyun):
    with session_scope(asettings) as s:
        enqueue_sms(
            s,
            "13900000001",
            "工单GD1：请查看 http://x.cn/a 楼道灯不亮，回复“签收 1234”",
            idempotency_key="a1",
        )
        s.commit()
    aliyun.errors = 1  # one 503 first
    worker = OutboxWorker(asettings)
    await worker.run_once()
    await worker.run_once()
    import asyncio

    await asyncio.sleep(0.1)
    await worker.run_once()
    with session_scope(asettings) as s:
        [m] = s.exec(select(SmsMessage)).all()
    assert m.status == SmsStatus.SENT and m.attempts == 2 and m.provider_id
    [sent] = aliyun.messages
    assert sent["phone"] == "13900000001" and sent["template"] == "SMS_000001"
    assert "http" not in sent["params"]["content"]  # no links in domestic SMS
    assert sent["out_id"] == f"cc{m.id}"
    # After a crash the provider is asked by OutId before sending again.
    out = Outgoing(m.id, m.to, m.body, m.idempotency_key, datetime.now(UTC))
    assert AliyunProvider(asettings).lookup(out) == [f"cc{m.id}"]


def test_bad_signature_and_bad_number(asettings, aliyun):
    asettings.aliyun_access_key_secret = "wrong"
    out = Outgoing(1, "+8613900000001", "x", "k", datetime.now(UTC))
    with pytest.raises(ProviderError):
        AliyunProvider(asettings).send(out)
    assert aliyun.messages == []
    asettings.aliyun_access_key_secret = aliyun.key_secret
    with pytest.raises(ProviderError) as exc:
        AliyunProvider(asettings).send(Outgoing(1, "+86123", "x", "k", datetime.now(UTC)))
    assert exc.value.permanent


async def test_a_message_with_its_registered_template_goes_with_its_parameters(asettings, aliyun):
    """An administrator's template mapped to a registered Aliyun template: that code, and our
    variables under the platform's parameter names (the text itself is not sent)."""
    with session_scope(asettings) as s:
        enqueue_sms(
            s,
            "13900000001",
            "工单GD7，回复 签收 4321",
            idempotency_key="t1",
            template_code="SMS_270001",
            template_params={"no": "GD7", "code": "4321"},
        )
        s.commit()
    await OutboxWorker(asettings).run_once()
    [sent] = aliyun.messages
    assert sent["template"] == "SMS_270001" and sent["params"] == {"no": "GD7", "code": "4321"}


async def test_a_crash_after_midnight_in_china_finds_the_message_on_a_later_page(asettings, aliyun):
    """Between 00:00 and 08:00 in China the UTC date is the day before, and QuerySendDetails
    pages 50 records: a message sent at 01:30 China time, after 60 others to the same number
    that day, is found on page 2 of the China date, and is not sent again after a crash."""
    from datetime import timedelta

    from callcenter.config import CHINA_TZ

    yesterday = datetime.now(CHINA_TZ).date() - timedelta(days=1)
    sent_at = datetime(yesterday.year, yesterday.month, yesterday.day, 1, 30, tzinfo=CHINA_TZ)
    assert sent_at.astimezone(UTC).date() != sent_at.date()  # the UTC date is the day before
    aliyun.clock = lambda: sent_at
    provider = AliyunProvider(asettings)
    for i in range(60):
        provider.send(Outgoing(10_000 + i, "+8613900000001", f"通知{i}", f"other{i}", sent_at))
    with session_scope(asettings) as s:
        m = enqueue_sms(s, "13900000001", "工单GD2：楼道灯不亮", idempotency_key="midnight")
        m.created_at = sent_at.astimezone(UTC)
        s.commit()
        # Worker A claimed it, Aliyun took it, the worker died before recording that.
        provider.send(OutboxWorker._outgoing(m))
        m.status, m.claimed_by, m.attempts = SmsStatus.SENDING, "dead", 1
        m.claimed_at = datetime.now(UTC) - timedelta(minutes=5)
        s.add(m)
        s.commit()
        row_id = m.id
    assert len(aliyun.messages) == 61
    await OutboxWorker(asettings).run_once()
    with session_scope(asettings) as s:
        row = s.get(SmsMessage, row_id)
        assert row is not None and row.status == SmsStatus.SENT
    assert len(aliyun.messages) == 61  # found at Aliyun, not sent twice
    # A message Aliyun never got is sent after the crash, once.
    with session_scope(asettings) as s:
        lost = enqueue_sms(s, "13900000001", "工单GD3：电梯停运", idempotency_key="lost")
        lost.status, lost.claimed_by, lost.attempts = SmsStatus.SENDING, "dead", 1
        lost.claimed_at = datetime.now(UTC) - timedelta(minutes=5)
        s.add(lost)
        s.commit()
    aliyun.clock = lambda: datetime.now(UTC)
    worker = OutboxWorker(asettings)
    for _ in range(2):
        await worker.run_once()
    assert [m["out_id"] for m in aliyun.messages].count(f"cc{lost.id}") == 1


async def test_no_answer_in_time_is_looked_up_by_out_id_not_sent_again(asettings, aliyun):
    """Aliyun keeps the message but answers after the SDK's read timeout: the request reached it,
    so the outbox asks QuerySendDetails (by OutId) before any resend, and finds it."""
    import asyncio
    import time

    with session_scope(asettings) as s:
        for i in range(3):
            enqueue_sms(s, "13900000001", f"工单GD{i}：楼道灯不亮", idempotency_key=f"late{i}")
        s.commit()
    asettings.sms_timeout_s = 0.5
    asettings.sms_claim_timeout_s = 2.0
    aliyun.response_delay = 1.5
    worker = OutboxWorker(asettings)
    deadline = time.monotonic() + 20
    while True:
        await worker.run_once()
        with session_scope(asettings) as s:
            msgs = s.exec(select(SmsMessage)).all()
        if all(m.status == SmsStatus.SENT for m in msgs) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert [m.status for m in msgs] == [SmsStatus.SENT] * 3
    assert len(aliyun.messages) == 3 and aliyun.requests == 3  # each sent once
    assert {m.provider_id for m in msgs} == {f"cc{m.id}" for m in msgs}  # found by OutId
    assert all("did not answer" in m.last_error or m.last_error == "" for m in msgs)
