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
