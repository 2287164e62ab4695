"""The messaging desk for supervisors: the SMS outbox with delivery receipts, outlets' SMS replies
and what became of them, the e-mail outbox and the grid/approval webhook deliveries.
Access rules: ``access.ROUTE_ROLES``."""

from __future__ import annotations

from datetime import UTC

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter.config import CHINA_TZ, Settings
from callcenter.database import session_scope
from callcenter.mail import received_mail
from callcenter.records.models import MailMessage, WebhookDelivery
from sms.models import SmsInbound, SmsMessage
from web_console.deps import CurrentAccount, SettingsDep, protected_router
from web_console.render import render

LIMIT = 100

router = protected_router()


def _load(settings: Settings) -> dict:
    with session_scope(settings) as s:
        return {
            "sms": list(s.exec(select(SmsMessage).order_by(col(SmsMessage.id).desc()).limit(LIMIT))),
            "inbound": list(s.exec(select(SmsInbound).order_by(col(SmsInbound.id).desc()).limit(LIMIT))),
            "mail": list(s.exec(select(MailMessage).order_by(col(MailMessage.id).desc()).limit(LIMIT))),
            "hooks": list(
                s.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id).desc()).limit(LIMIT))
            ),
            # What the demo's own mail server received (None outside the demo)
            "mailbox": received_mail(settings, LIMIT),
        }


@router.get("/admin/messages")
async def messages_page(request: Request, account: CurrentAccount, settings: SettingsDep) -> Response:
    data = await run_in_threadpool(_load, settings)
    return render(request, "admin_messages.html", account=account, china=CHINA_TZ, utc=UTC, **data)
