"""The supervisors' messaging desk shows the outboxes and replies, escaped."""

from __future__ import annotations

from callcenter.database import session_scope
from sms.models import SmsInbound, SmsMessage


def test_messages_page(db, app, web):
    with session_scope(db) as s:
        s.add(
            SmsMessage(
                idempotency_key="k",
                to="+8613900000001",
                body="<script>x</script>工单",
                status="delivered",
                callbacks=[{"status": "sent"}, {"status": "delivered"}],
            )
        )
        s.add(
            SmsInbound(
                provider="twilio",
                provider_id="SM1",
                sender="+8613700000099",
                body="<img src=x>",
                outcome="unknown_sender",
            )
        )
        s.commit()
    with web.TestClient(app) as c:
        assert web.login(c, "super").status_code == 303
        page = c.get("/admin/messages")
        assert page.status_code == 200
        assert "&lt;script&gt;x&lt;/script&gt;工单" in page.text and "<script>x" not in page.text
        assert "&lt;img src=x&gt;" in page.text and "未登记号码" in page.text
        assert "sent delivered" in page.text
    with web.TestClient(app) as c:
        assert web.login(c, "seat1001").status_code == 303
        assert c.get("/admin/messages").status_code == 403


async def test_a_mail_the_server_keeps_refusing_is_a_dead_letter_a_supervisor_retries(db, app, web):
    """A real SMTP server (aiosmtpd) refuses the recipient until the mailbox exists: the worker
    gives up, the desk lists the message with the server's reason, the doctor's count sees it,
    a supervisor sends it again (audited, once even if two retry), and it is delivered once."""
    import asyncio

    from aiosmtpd.controller import Controller
    from sqlmodel import select

    from callcenter.audit.models import AuditEntry
    from callcenter.mail import MailWorker, enqueue_mail
    from callcenter.records.models import MailMessage
    from tests.conftest import free_port
    from web_console.messages import count_dead_letters

    class Server:
        mailbox_exists = False
        received: list[bytes] = []

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if not self.mailbox_exists:
                return "550 5.1.1 <" + address + ">: mailbox unavailable"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            self.received.append(envelope.content)
            return "250 OK"

    handler = Server()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        db.smtp_host, db.smtp_port, db.mail_from = "127.0.0.1", port, "hotline@anning.example"
        db.sms_max_attempts, db.sms_retry_base_s, db.sms_retry_max_s = 2, 0.01, 0.01
        with session_scope(db) as s:
            enqueue_mail(s, ["newstation@anning.example"], "派单通知", "正文", idempotency_key="dead:1")
            s.commit()
        worker = MailWorker(db)
        for _ in range(2):
            await worker.run_once()
            await asyncio.sleep(0.05)
        with session_scope(db) as s:
            row = s.exec(select(MailMessage)).one()
            assert row.status == "failed" and row.attempts == 2 and "mailbox unavailable" in row.last_error
            row_id = row.id
        assert count_dead_letters(db) == {"sms": 0, "mail": 1, "hook": 0}
        await worker.run_once()  # a dead letter stays put until someone decides
        assert handler.received == []
        with web.TestClient(app) as c:
            assert web.login(c, "seat1001").status_code == 303
            token = web.csrf(c.get("/console").text)
            assert c.post(f"/admin/messages/mail/{row_id}/retry", data={"csrf": token}).status_code == 403
        with web.TestClient(app) as c:
            assert web.login(c, "super").status_code == 303
            page = c.get("/admin/messages")
            assert f'data-kind="mail" data-id="{row_id}"' in page.text and "mailbox unavailable" in page.text
            token = web.csrf(page.text)
            r = c.post(f"/admin/messages/mail/{row_id}/retry", data={"csrf": token}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/admin/messages?retried=ok"
            again = c.post(f"/admin/messages/mail/{row_id}/retry", data={"csrf": token})
            assert "未做改动" in again.text
            assert c.post("/admin/messages/fax/1/retry", data={"csrf": token}).status_code == 422
            assert c.post(f"/admin/messages/mail/{row_id}/retry", data={"csrf": "x"}).status_code == 403
        handler.mailbox_exists = True
        assert await worker.run_once() == 1
        assert len(handler.received) == 1 and count_dead_letters(db)["mail"] == 0
        with session_scope(db) as s:
            assert s.exec(select(MailMessage)).one().status == "sent"
            audits = s.exec(select(AuditEntry).where(AuditEntry.action == "message.retry")).all()
            assert [(a.actor, a.target) for a in audits] == [("super", f"mail:{row_id}")]
    finally:
        controller.stop()
