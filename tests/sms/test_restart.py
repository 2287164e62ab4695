"""The outbox across a crash: a separate sender process (``python -m hotline.outbox_workers``)
is killed while the provider holds its requests, then started again. Every message reaches the
provider exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import select

from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from sms.models import SmsMessage, SmsStatus
from sms.service import enqueue_sms
from sms.testing import FakeTwilio

ROOT = Path(__file__).resolve().parents[2]
N = 20


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


def _rows(settings) -> list[SmsMessage]:
    with session_scope(settings) as s:
        return list(s.exec(select(SmsMessage).order_by(SmsMessage.id)))


def _start(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hotline.outbox_workers"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_outage_then_crash_then_restart_delivers_each_message_once(tmp_path):
    twilio = FakeTwilio()
    twilio.deliver_callbacks = False  # no web app here; delivery receipts are tested elsewhere
    data = tmp_path / "var"
    env = {
        **os.environ,
        **twilio.settings_env(),
        "PYTHONPATH": str(ROOT),
        "CALLCENTER_DATA_DIR": str(data),
        "CALLCENTER_SMS_RETRY_BASE_S": "0.1",
        "CALLCENTER_SMS_RETRY_MAX_S": "0.5",
        "CALLCENTER_SMS_MAX_ATTEMPTS": "1000",
        "CALLCENTER_SMS_POLL_INTERVAL_S": "0.1",
        "CALLCENTER_SMS_CLAIM_TIMEOUT_S": "1",
    }
    settings = set_settings(Settings(data_dir=data, _env_file=None))
    migrate(settings)
    with session_scope(settings) as s:
        for i in range(N):
            enqueue_sms(
                s,
                f"1390000{i:04d}",
                f"【安宁社区热线】工单GD{i:05d}：请回复“签收 {2000 + i}”",
                idempotency_key=f"r{i}",
            )
        s.commit()

    log = tmp_path / "sender.log"
    proc = _start(env, log)  # the provider is down: nothing is listening on its port yet
    try:
        _wait(lambda: all(m.attempts >= 2 for m in _rows(settings)), 30, "retries while the provider is down")
        assert all(m.status in (SmsStatus.QUEUED, SmsStatus.SENDING) for m in _rows(settings))

        # The provider comes back but answers slowly; the sender dies while requests are in flight.
        twilio.response_delay = 3.0
        twilio.start()
        _wait(lambda: len(twilio.messages) >= 3, 20, "the provider accepted messages")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        in_flight = [m for m in _rows(settings) if m.status == SmsStatus.SENDING]
        assert in_flight, "the crash should leave messages the provider has but we did not record"
        accepted_before_restart = len(twilio.messages)

        twilio.response_delay = 0.0
        proc = _start(env, log)
        _wait(lambda: all(m.status == SmsStatus.SENT for m in _rows(settings)), 40, "all sent after restart")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        twilio.stop()

    rows = _rows(settings)
    bodies = [m.body for m in twilio.messages]
    assert sorted(bodies) == sorted(m.body for m in rows), log.read_text()[-3000:]
    assert len(bodies) == N  # none twice
    assert accepted_before_restart >= 3
    sids = {m.sid for m in twilio.messages}
    assert {m.provider_id for m in rows} == sids
    assert "already has it" in log.read_text()
