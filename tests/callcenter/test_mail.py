"""E-mail through aiosmtplib to a real aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import datetime

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from callcenter.config import CHINA_TZ, Settings
from callcenter.database import session_scope
from callcenter.directory.models import Community, Jurisdiction, Outlet
from callcenter.mail import MailError, send_mail
from dispatch.notices import order_notice
from dispatch.summaries import enqueue_daily_summaries
from tests.conftest import SmtpFront


class Inbox:
    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"hotline",
            b"mail-secret",
        )
        return AuthResult(success=ok)

    port = _free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


@pytest.fixture
def mail_settings(settings: Settings, smtp) -> Settings:
    settings.smtp_host = "127.0.0.1"
    settings.smtp_port = smtp.port
    settings.smtp_user = "hotline"
    settings.smtp_password = "mail-secret"
    settings.mail_from = "hotline@anning.example"
    settings.supervisor_emails = ["banzhang@anning.example"]
    return settings


async def test_send_mail_with_html_and_attachment(mail_settings, smtp):
    await send_mail(
        mail_settings,
        ["a@anning.example", "b@anning.example"],
        "日报\r\nBcc: evil@example.com",
        "正文",
        "<p>正文</p>",
        [("report.csv", "工单,状态\n".encode(), "text/csv")],
    )
    [env] = smtp.envelopes
    assert env.mail_from == "hotline@anning.example"
    assert env.rcpt_tos == ["a@anning.example", "b@anning.example"]
    [msg] = smtp.messages()
    assert msg["Subject"] == "日报 Bcc: evil@example.com"  # one line: no injected header
    assert msg["Bcc"] is None
    assert msg.get_body(("plain",)).get_content().strip() == "正文"
    assert msg.get_body(("html",)).get_content().strip() == "<p>正文</p>"
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == "report.csv" and att.get_content().startswith("工单")


async def test_wrong_password_and_bad_addresses_raise(mail_settings, smtp):
    mail_settings.smtp_password = "wrong"
    mail_settings.smtp_timeout_s = 2  # aiosmtpd leaves a refused LOGIN hanging until the timeout
    with pytest.raises(MailError):
        await send_mail(mail_settings, ["a@anning.example"], "s", "t")
    with pytest.raises(MailError):
        await send_mail(mail_settings, ["not an address"], "s", "t")
    mail_settings.smtp_port = _free_port()  # nobody listening
    mail_settings.smtp_password = "mail-secret"
    with pytest.raises(MailError):
        await send_mail(mail_settings, ["a@anning.example"], "s", "t")
    assert smtp.envelopes == []


def _order_world(settings):
    from dispatch import service as dispatch
    from dispatch import transitions

    seat = dispatch.Actor("seat1001", "seat")
    with session_scope(settings) as s:
        j = Jurisdiction(name="十里店街道")
        s.add(j)
        s.flush()
        c = Community(jurisdiction_id=j.id, name="十里店社区")
        s.add(c)
        s.flush()
        outlet = Outlet(
            name="十里店社区服务站",
            phone="+8613900000001",
            email="zhan@anning.example",
            emails="b@anning.example",
        )
        s.add(outlet)
        s.flush()
        o = dispatch.create_order(
            s,
            seat,
            order_type="求助",
            summary="<b>楼道灯</b>不亮",
            community_id=c.id,
            address="十里店南街28号",
        )
        s.flush()
        transitions.transition(s, o, "派单", seat, outlet_id=outlet.id)
        s.commit()
        return o.id


async def test_order_notice_to_the_outlet(mail_settings, smtp):
    from dispatch.models import WorkOrder

    order_id = _order_world(mail_settings)
    with session_scope(mail_settings) as s:
        order = s.get(WorkOrder, order_id)
        to, subject, text, html = order_notice(s, order, "派单")
    await send_mail(mail_settings, to, subject, text, html)
    [msg] = smtp.messages()
    assert msg["To"] == "zhan@anning.example, b@anning.example"
    assert f"工单{order.number}" in msg["Subject"]
    plain = msg.get_body(("plain",)).get_content()
    assert f"签收 {order.short_code}" in plain and "<b>楼道灯</b>不亮" in plain
    body = msg.get_body(("html",)).get_content()
    assert "&lt;b&gt;楼道灯&lt;/b&gt;" in body and "<b>楼道灯" not in body  # escaped in HTML


async def test_dispatch_queues_the_notice_and_the_worker_sends_it_once(mail_settings, smtp):
    from sqlmodel import select

    from callcenter.mail import MailWorker
    from callcenter.records.models import MailMessage

    order_id = _order_world(mail_settings)  # 派单 in one transaction with its e-mail
    with session_scope(mail_settings) as s:
        [row] = s.exec(select(MailMessage)).all()
        assert row.order_id == order_id and row.to == ["zhan@anning.example", "b@anning.example"]
    mail_settings.smtp_port = _free_port()  # the mail server is down at first
    mail_settings.sms_retry_base_s = 0.01
    worker = MailWorker(mail_settings)
    await worker.run_once()
    with session_scope(mail_settings) as s:
        row = s.get(MailMessage, row.id)
        assert row.status == "queued" and row.attempts == 1 and "SMTP" in row.last_error
    mail_settings.smtp_port = smtp.port
    import asyncio

    await asyncio.sleep(0.05)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    [msg] = smtp.messages()
    assert "派单" in msg["Subject"] and msg["Message-ID"].endswith("@anning.example>")
    # The signed link to the outlet page for this order only (e-mail may carry links).
    import re

    from dispatch.links import read_token
    from dispatch.models import WorkOrder

    token = re.search(r"/o/([A-Za-z0-9_.-]+)", msg.get_body(("plain",)).get_content()).group(1)
    with session_scope(mail_settings) as s:
        order = s.get(WorkOrder, order_id)
        assert read_token(s, mail_settings, token) == (order_id, order.outlet_id)
    assert f'href="{mail_settings.public_url("")}/o/{token}"' in msg.get_body(("html",)).get_content()


async def test_daily_summaries_once_a_day_after_the_hour(mail_settings, smtp):
    from callcenter.mail import MailWorker

    _order_world(mail_settings)
    today = datetime.now(CHINA_TZ)
    mail_settings.daily_summary_at = "18:00"
    early = MailWorker(
        mail_settings, clock=lambda: today.replace(hour=9, minute=0), summaries=enqueue_daily_summaries
    )
    assert early.queue_summaries() == 0
    late = MailWorker(
        mail_settings, clock=lambda: today.replace(hour=18, minute=5), summaries=enqueue_daily_summaries
    )
    assert late.queue_summaries() == 2
    assert late.queue_summaries() == 0  # already queued today
    restarted = MailWorker(
        mail_settings, clock=lambda: today.replace(hour=18, minute=6), summaries=enqueue_daily_summaries
    )
    assert restarted.queue_summaries() == 0  # nor after a restart: keyed by the day
    await late.run_once()
    tos = sorted(tuple(e.rcpt_tos) for e in smtp.envelopes)
    assert ("banzhang@anning.example",) in tos
    subjects = [m["Subject"] for m in smtp.messages()]
    assert any("全区" in x and "新增1件" in x for x in subjects), subjects
    assert any("十里店社区服务站" in x and "日报" in x for x in subjects), subjects


async def test_a_mail_server_that_is_down_costs_one_try_a_round(mail_settings, smtp, caplog):
    import asyncio
    import logging

    from sqlmodel import select

    from callcenter.mail import MailWorker, enqueue_mail
    from callcenter.records.models import MailMessage

    with session_scope(mail_settings) as s:
        for i in range(3):
            enqueue_mail(s, ["zhan@anning.example"], f"通知 {i}", "正文", idempotency_key=f"down:{i}")
        s.commit()
    mail_settings.smtp_port = _free_port()  # nothing listens there
    mail_settings.sms_retry_base_s = 0.01
    worker = MailWorker(mail_settings)
    with caplog.at_level(logging.WARNING, logger="callcenter.mail"):
        assert await worker.run_once() == 3
    [line] = [r.getMessage() for r in caplog.records if r.name == "callcenter.mail"]
    assert "3 message(s) wait for the next try" in line
    with session_scope(mail_settings) as s:
        rows = s.exec(select(MailMessage)).all()
        assert [(r.status, r.attempts) for r in rows] == [("queued", 1)] * 3
        assert all("MailServerUnreachable" in r.last_error for r in rows)
    # Still down at the next round: the outage was said already, the log stays quiet.
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="callcenter.mail"):
        caplog.clear()
        assert await worker.run_once() == 3
    assert [r.getMessage() for r in caplog.records if r.name == "callcenter.mail"] == []
    mail_settings.smtp_port = smtp.port  # back: every message goes, once, and that is said once
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="callcenter.mail"):
        caplog.clear()
        assert await worker.run_once() == 3
    assert [r.getMessage() for r in caplog.records if r.name == "callcenter.mail"] == [
        f"mail: SMTP 127.0.0.1:{smtp.port} answers again"
    ]
    assert sorted(m["Subject"] for m in smtp.messages()) == ["通知 0", "通知 1", "通知 2"]


async def test_a_mail_server_answering_errors_then_silent_then_back_delivers_each_mail_once(
    mail_settings, smtp, caplog
):
    """Errors (451), then a server that accepts connections and never answers, then the real one:
    no round waits a timeout per message, each mail arrives once, the log says what happened."""
    import asyncio
    import logging
    import time

    from sqlmodel import select

    from callcenter.mail import MailWorker, enqueue_mail
    from callcenter.records.models import MailMessage

    with session_scope(mail_settings) as s:
        for i in range(5):
            enqueue_mail(s, ["zhan@anning.example"], f"派单通知 {i}", "正文", idempotency_key=f"flaky:{i}")
        s.commit()
    mail_settings.sms_retry_base_s = 0.01
    mail_settings.sms_retry_max_s = 0.05
    mail_settings.smtp_timeout_s = 0.5
    worker = MailWorker(mail_settings)

    def rows():
        with session_scope(mail_settings) as s:
            return s.exec(select(MailMessage).order_by(MailMessage.id)).all()

    front = await SmtpFront(_free_port(), smtp.port).start()
    mail_settings.smtp_port = front.port
    front.mode = "errors"
    assert await worker.run_once() == 5
    assert all(r.status == "queued" and "451" in r.last_error for r in rows())
    front.mode = "silent"
    await asyncio.sleep(0.1)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="callcenter.mail"):
        started = time.monotonic()
        assert await worker.run_once() == 5
        took = time.monotonic() - started
    assert took < 5 * 0.5  # one timeout for the round, not one per message
    said = [r.getMessage() for r in caplog.records if r.name == "callcenter.mail"]
    assert len(said) == 1 and "does not answer within 0.5 s" in said[0], said
    assert all(r.status == "queued" for r in rows())
    front.mode = "ok"
    deadline = time.monotonic() + 10
    while any(r.status != "sent" for r in rows()) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        await worker.run_once()
    assert [r.status for r in rows()] == ["sent"] * 5
    assert sorted(m["Subject"] for m in smtp.messages()) == [f"派单通知 {i}" for i in range(5)]
    front.close()


async def test_a_mail_delivered_just_before_the_database_goes_away_is_not_sent_again(
    mail_settings, smtp, monkeypatch
):
    """The server took the mail, then writing "sent" failed (PostgreSQL restarting): when the
    row comes round again it is marked sent, not delivered a second time (found by
    bench_faults: the same Message-ID twice)."""
    import asyncio

    from sqlalchemy.exc import OperationalError
    from sqlmodel import select

    from callcenter.mail import MailWorker, enqueue_mail
    from callcenter.records.models import MailMessage

    with session_scope(mail_settings) as s:
        enqueue_mail(s, ["zhan@anning.example"], "派单通知", "正文", idempotency_key="once")
        s.commit()
    mail_settings.sms_claim_timeout_s = 0.05
    worker = MailWorker(mail_settings)
    record = worker._record
    failures = iter([True])

    def record_once_failing(row_id, error):
        if error is None and next(failures, False):
            raise OperationalError("UPDATE mail_message", {}, Exception("server closed the connection"))
        record(row_id, error)

    monkeypatch.setattr(worker, "_record", record_once_failing)
    with pytest.raises(OperationalError):
        await worker.run_once()
    assert len(smtp.messages()) == 1
    await asyncio.sleep(0.1)  # the claim runs out: the row is due again
    assert await worker.run_once() == 1
    with session_scope(mail_settings) as s:
        assert [r.status for r in s.exec(select(MailMessage)).all()] == ["sent"]
    assert len(smtp.messages()) == 1
