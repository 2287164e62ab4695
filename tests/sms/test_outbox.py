"""The outbox through the real Twilio SDK to a local server speaking Twilio's Messages API."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import select

from callcenter.database import session_scope
from sms.models import SmsMessage, SmsStatus
from sms.providers import ProviderError, TwilioProvider
from sms.service import OutboxWorker, enqueue_sms

from .conftest import OUTLET_PHONE


def _enqueue(settings, n: int, prefix: str = "t") -> list[int]:
    with session_scope(settings) as s:
        msgs = [
            enqueue_sms(
                s,
                "139 0000 0001",
                f"【安宁社区热线】工单{i}：楼道灯不亮，回复“签收 {1000 + i}”",
                idempotency_key=f"{prefix}{i}",
            )
            for i in range(n)
        ]
        s.commit()
        return [m.id for m in msgs]


def _messages(settings) -> list[SmsMessage]:
    with session_scope(settings) as s:
        return list(s.exec(select(SmsMessage).order_by(SmsMessage.id)))


async def _until(pred, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_enqueue_is_transactional_and_idempotent(msettings):
    with session_scope(msettings) as s:
        enqueue_sms(s, "13900000001", "x", idempotency_key="k1")
        s.rollback()  # the order change failed: no message
    assert _messages(msettings) == []
    with session_scope(msettings) as s:
        a = enqueue_sms(s, "13900000001", "一", idempotency_key="k1")
        b = enqueue_sms(s, "13900000001", "二", idempotency_key="k1")
        s.commit()
        assert a is b
    with session_scope(msettings) as s:
        c = enqueue_sms(s, "13900000001", "三", idempotency_key="k1")
        assert c.body == "一"
    [m] = _messages(msettings)
    assert m.to == OUTLET_PHONE and m.status == SmsStatus.QUEUED
    with session_scope(msettings) as s, pytest.raises(ValueError):
        enqueue_sms(s, "not a number", "x", idempotency_key="k2")


async def test_sdk_request_reaches_the_stand_in_and_status_callbacks_are_stored(msettings, twilio, live_app):
    ids = _enqueue(msettings, 3)
    worker = OutboxWorker(msettings)
    assert isinstance(worker.provider, TwilioProvider)
    assert await worker.run_once() == 3
    assert [m.to for m in twilio.messages] == [OUTLET_PHONE] * 3
    assert any(m.body.startswith("【安宁社区热线】工单0") for m in twilio.messages)  # sent concurrently
    msgs = _messages(msettings)
    assert [m.id for m in msgs] == ids
    assert all(
        m.status in (SmsStatus.SENT, SmsStatus.DELIVERED) and m.provider_id.startswith("SM") for m in msgs
    )
    assert {m.provider_id for m in msgs} == {m.sid for m in twilio.messages}
    # Twilio posts "sent" then "delivered", signed; the app stores both on the message.
    await _until(lambda: all(m.status == SmsStatus.DELIVERED for m in _messages(msettings)))
    assert [c["status"] for c in _messages(msettings)[0].callbacks] == ["sent", "delivered"]
    assert set(twilio.callback_results) == {("sent", 200), ("delivered", 200)}
    assert await worker.run_once() == 0  # nothing sent twice
    assert len(twilio.messages) == 3


async def test_provider_errors_then_back_every_message_once(msettings, twilio):
    _enqueue(msettings, 5)
    msettings.sms_max_attempts = 100
    twilio.errors = 12  # the next 12 create requests get HTTP 500
    worker = OutboxWorker(msettings)
    await worker.start()
    try:
        await _until(
            lambda: all(
                m.status != SmsStatus.QUEUED and m.status != SmsStatus.SENDING for m in _messages(msettings)
            ),
            20,
        )
    finally:
        await worker.stop()
    msgs = _messages(msettings)
    assert all(m.status == SmsStatus.SENT for m in msgs), [(m.status, m.last_error) for m in msgs]
    assert max(m.attempts for m in msgs) > 1
    assert len(twilio.messages) == 5
    assert sorted(m.body for m in twilio.messages) == sorted(m.body for m in msgs)
    assert twilio.requests == 5 + 12


async def test_provider_errors_then_no_answer_then_back_every_message_once(msettings, twilio, caplog):
    """Twilio answers errors, then takes messages without answering in time (the request reached
    it: sending again would send twice), then answers again. Every message reaches Twilio once:
    an unanswered one is looked up before any resend, and found."""
    import logging

    _enqueue(msettings, 5)
    msettings.sms_max_attempts = 100
    msettings.sms_timeout_s = 0.5
    msettings.sms_claim_timeout_s = 2.0
    twilio.errors = 3  # HTTP 500 at once
    twilio.response_delay = 1.5  # then each create is kept, and answered after the client gave up
    worker = OutboxWorker(msettings)
    with caplog.at_level(logging.WARNING, logger="sms.service"):
        await worker.start()
        try:
            await _until(lambda: len(twilio.messages) == 5, 20)
            twilio.response_delay = 0.0  # back
            await _until(lambda: all(m.status == SmsStatus.SENT for m in _messages(msettings)), 20)
        finally:
            await worker.stop()
    msgs = _messages(msettings)
    assert len(twilio.messages) == 5 and twilio.requests == 5 + 3  # none sent twice
    assert sorted(m.body for m in twilio.messages) == sorted(m.body for m in msgs)
    assert {m.provider_id for m in msgs} == {m.sid for m in twilio.messages}
    said = [r.getMessage() for r in caplog.records]
    assert any("unanswered" in line and "asked before any resend" in line for line in said), said


async def test_provider_down_messages_wait_then_all_go_once(msettings, twilio):
    twilio.stop()  # connection refused
    msettings.sms_max_attempts = 100
    _enqueue(msettings, 4)
    worker = OutboxWorker(msettings)
    await worker.start()
    try:
        await asyncio.sleep(1.0)
        msgs = _messages(msettings)
        assert all(m.status in (SmsStatus.QUEUED, SmsStatus.SENDING) for m in msgs)
        assert all(m.attempts >= 2 and "unreachable" in m.last_error for m in msgs)
        twilio.start()  # back on the same port
        await _until(lambda: all(m.status == SmsStatus.SENT for m in _messages(msettings)), 15)
    finally:
        await worker.stop()
    assert len(twilio.messages) == 4


async def test_permanent_error_is_not_retried(msettings, twilio):
    with session_scope(msettings) as s:
        m = enqueue_sms(s, "13900000001", "x", idempotency_key="bad")
        s.commit()
        # A number the provider refuses (as 21211 does): bypass the edge check to get one in.
        m.to = "+86bad"
        s.add(m)
        s.commit()
    worker = OutboxWorker(msettings)
    await worker.run_once()
    [m] = _messages(msettings)
    assert m.status == SmsStatus.FAILED and m.attempts == 1 and "21211" in m.last_error


def test_wrong_credentials_are_a_provider_error(msettings, twilio):
    msettings.twilio_auth_token = "wrong"
    provider = TwilioProvider(msettings)
    from datetime import UTC, datetime

    from sms.providers import Outgoing

    with pytest.raises(ProviderError) as exc:
        provider.send(Outgoing(1, OUTLET_PHONE, "x", "k", datetime.now(UTC)))
    assert "401" in str(exc.value) and not exc.value.permanent


async def test_a_claim_left_by_a_dead_worker_is_checked_with_the_provider(msettings, twilio):
    """The provider accepted the message but the worker died before recording it: not sent again."""
    from datetime import UTC, datetime, timedelta

    ids = _enqueue(msettings, 2)
    provider = TwilioProvider(msettings)
    with session_scope(msettings) as s:
        first = s.get(SmsMessage, ids[0])
        # Worker A: claimed both, sent the first, died.
        provider.send(OutboxWorker._outgoing(first))
        for i in ids:
            m = s.get(SmsMessage, i)
            m.status = SmsStatus.SENDING
            m.claimed_at = datetime.now(UTC) - timedelta(minutes=5)
            m.claimed_by = "dead"
            m.attempts = 1
            s.add(m)
        s.commit()
    assert len(twilio.messages) == 1
    worker = OutboxWorker(msettings)
    await worker.run_once()
    msgs = _messages(msettings)
    assert [m.status for m in msgs] == [SmsStatus.SENT, SmsStatus.SENT]
    assert len(twilio.messages) == 2  # the first was found at the provider, only the second went out
    assert msgs[0].provider_id == twilio.messages[0].sid


async def test_two_rows_with_the_same_text_are_not_taken_for_one(msettings, twilio):
    """Two reminders with the same text to the same number on one day: the provider has one of
    them; after the crash the other is still sent."""
    from datetime import UTC, datetime, timedelta

    with session_scope(msettings) as s:
        a = enqueue_sms(s, "13900000001", "催办：工单GD1", idempotency_key="same-a")
        b = enqueue_sms(s, "13900000001", "催办：工单GD1", idempotency_key="same-b")
        s.commit()
        TwilioProvider(msettings).send(OutboxWorker._outgoing(a))
        for m in (a, b):
            m.status, m.claimed_by, m.attempts = SmsStatus.SENDING, "dead", 1
            m.claimed_at = datetime.now(UTC) - timedelta(minutes=5)
            s.add(m)
        s.commit()
    await OutboxWorker(msettings).run_once()
    msgs = _messages(msettings)
    assert [m.status for m in msgs] == [SmsStatus.SENT, SmsStatus.SENT]
    assert len(twilio.messages) == 2 and len({m.provider_id for m in msgs}) == 2


async def test_a_message_still_queued_at_twilio_is_found_after_a_crash(msettings, twilio):
    """Twilio leaves DateSent empty while a message is queued, so its DateSent filter does not
    match it (as documented); the recovery reads the number's list instead and finds it."""
    from datetime import UTC, datetime, timedelta

    twilio.deliver_callbacks = False  # the message stays "queued" at Twilio
    [row_id] = _enqueue(msettings, 1, prefix="queued")
    provider = TwilioProvider(msettings)
    with session_scope(msettings) as s:
        m = s.get(SmsMessage, row_id)
        sid = provider.send(OutboxWorker._outgoing(m))
        m.status, m.claimed_by, m.attempts = SmsStatus.SENDING, "dead", 1
        m.claimed_at = datetime.now(UTC) - timedelta(minutes=5)
        s.add(m)
        s.commit()
        created = m.created_at
    # What a DateSent filter sees (the earlier recovery asked this): nothing.
    by_date = provider.client.messages.list(to=m.to, date_sent_after=created - timedelta(days=1))
    assert by_date == [] and twilio.messages[0].status == "queued"
    await OutboxWorker(msettings).run_once()
    [row] = _messages(msettings)
    assert row.status == SmsStatus.SENT and row.provider_id == sid
    assert len(twilio.messages) == 1


def test_twilio_list_pages_newest_first(msettings, twilio):
    """The stand-in pages as Twilio documents it; the SDK follows next_page_uri."""
    from datetime import UTC, datetime

    from sms.providers import Outgoing

    provider = TwilioProvider(msettings)
    for i in range(120):
        provider.send(Outgoing(i, OUTLET_PHONE, f"m{i}", f"k{i}", datetime.now(UTC)))
    listed = provider.client.messages.list(to=OUTLET_PHONE, page_size=50, limit=120)
    assert [m.body for m in listed] == [f"m{i}" for i in reversed(range(120))]


async def test_the_stand_in_plays_a_remote_providers_latency(msettings, twilio):
    """With ``latency`` the stand-in takes each message that long after the request reached it
    (benchmarks subtract it to leave what the app adds), and the SDK's send waits for it."""
    twilio.latency = 0.3
    [row_id] = _enqueue(msettings, 1, prefix="far")
    with session_scope(msettings) as s:
        out = OutboxWorker._outgoing(s.get(SmsMessage, row_id))
    started = time.time()
    TwilioProvider(msettings).send(out)
    took = time.time() - started
    [m] = twilio.messages
    assert took >= 0.3
    assert m.created.timestamp() - started >= 0.3


async def test_a_slow_answer_holds_up_only_its_own_message(msettings):
    """Messages are taken as sends finish, not a batch at a time: one answer that takes a second
    does not make the messages behind it wait for it."""
    import threading

    from sms.providers import LogProvider

    class OneSlowAnswer(LogProvider):
        def __init__(self) -> None:
            super().__init__()
            self.done: list[int] = []
            self.lock = threading.Lock()

        def send(self, msg) -> str:
            time.sleep(1.0 if msg.id == first else 0.05)
            with self.lock:
                self.done.append(msg.id)
            return super().send(msg)

    ids = _enqueue(msettings, 12)
    first = ids[0]
    provider = OneSlowAnswer()
    worker = OutboxWorker(msettings, provider=provider, batch=2)
    assert await worker.run_once() == 12
    # 11 quick sends on the one free slot came back while the slow one was out
    assert provider.done[-1] == first and sorted(provider.done) == sorted(ids)
    assert all(m.status == SmsStatus.SENT for m in _messages(msettings))


async def test_a_message_another_worker_took_does_not_end_the_round(msettings):
    """Two workers read the same due list; the one that loses a claim sends the rest anyway."""
    from sms.providers import LogProvider

    ids = _enqueue(msettings, 6)
    worker = OutboxWorker(msettings, provider=LogProvider(), batch=2)
    other = OutboxWorker(msettings, provider=LogProvider(), batch=2)
    claim = worker._claim
    taken: list[int] = []

    def the_other_claims_first(s, msg_id: int) -> bool:
        if not taken:  # the other worker's claim commits between this one's read and its claim
            taken.append(msg_id)
            with session_scope(msettings) as s2:
                assert other._claim(s2, msg_id)
        return claim(s, msg_id)

    worker._claim = the_other_claims_first  # type: ignore[method-assign]
    assert await worker.run_once() == 5
    rest = [m for m in _messages(msettings) if m.id != taken[0]]
    assert sorted(m.id for m in rest) == sorted(i for i in ids if i != taken[0])
    assert all(m.status == SmsStatus.SENT and m.attempts == 1 for m in rest)


async def test_a_message_enqueued_while_another_is_out_does_not_wait_for_its_answer(msettings):
    """The running worker sends a new message on a free slot at once, not when a send under way
    comes back: a provider's answer time must not add to every message queued behind it."""
    import threading

    from sms.providers import LogProvider

    class HeldFirstAnswer(LogProvider):
        def __init__(self) -> None:
            super().__init__()
            self.first_out = threading.Event()
            self.second_sent = threading.Event()
            self.order: list[str] = []

        def send(self, msg) -> str:
            if msg.idempotency_key == "held0":
                self.first_out.set()
                # held until the second message is through (or 10 s, when the worker waits for it)
                self.second_sent.wait(10)
                self.order.append("first")
            else:
                self.order.append("second")
                self.second_sent.set()
            return super().send(msg)

    provider = HeldFirstAnswer()
    worker = OutboxWorker(msettings, provider=provider, batch=4)
    await worker.start()
    try:
        _enqueue(msettings, 1, prefix="held")
        assert await asyncio.to_thread(provider.first_out.wait, 10)
        _enqueue(msettings, 1, prefix="next")  # its commit wakes the worker
        await _until(lambda: len(provider.order) == 2, timeout=15)
        assert provider.order == ["second", "first"]
    finally:
        provider.second_sent.set()
        await worker.stop()
