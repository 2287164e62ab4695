"""The outbox on PostgreSQL with two workers (two engines) claiming at once: each message once."""

from __future__ import annotations

import asyncio
import uuid

from sqlmodel import col, select

from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from sms.models import SmsMessage, SmsStatus
from sms.service import OutboxWorker, enqueue_sms
from sms.testing import FakeTwilio


async def test_two_workers_on_postgres_send_each_message_once(postgres_url, tmp_path):
    with FakeTwilio() as twilio:
        env = twilio.settings_env()
        settings = set_settings(
            Settings(
                data_dir=tmp_path / "var",
                database_url=postgres_url,
                _env_file=None,
                sms_provider="twilio",
                twilio_account_sid=twilio.account_sid,
                twilio_auth_token=twilio.auth_token,
                twilio_api_base=env["CALLCENTER_TWILIO_API_BASE"],
                sms_from=env["CALLCENTER_SMS_FROM"],
            )
        )
        migrate(settings)
        run = uuid.uuid4().hex[:8]
        with session_scope(settings) as s:
            ids = [
                enqueue_sms(s, f"1390000{i:04d}", f"工单{run}-{i}", idempotency_key=f"pg-{run}-{i}").id
                for i in range(30)
            ]
            s.commit()
        a, b = OutboxWorker(settings, batch=4), OutboxWorker(settings, batch=4)
        await asyncio.gather(a.run_once(), b.run_once())
        with session_scope(settings) as s:
            rows = s.exec(
                select(SmsMessage).where(col(SmsMessage.idempotency_key).startswith(f"pg-{run}-"))
            ).all()
        assert len(rows) == 30 and all(m.status == SmsStatus.SENT and m.attempts == 1 for m in rows)
        # (a.sent + b.sent may count other tests' messages in the shared database.)
        mine = [m for m in twilio.messages if m.body.startswith(f"工单{run}-")]
        assert sorted(m.body for m in mine) == sorted(f"工单{run}-{i}" for i in range(30))
        assert len(ids) == 30
