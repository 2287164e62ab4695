"""The messaging desk for supervisors: the SMS outbox with delivery receipts, outlets' SMS replies
and what became of them, the e-mail outbox and the grid/approval webhook deliveries; first the
dead letters (messages the workers gave up on), each with its reason and a retry.
Access rules: ``access.ROUTE_ROLES``."""

from __future__ import annotations

from datetime import UTC
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter.audit.service import record as audit
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import session_scope
from callcenter.mail import received_mail
from callcenter.outbox import count_failed, failed_rows, requeue_failed
from callcenter.records.models import MailMessage, WebhookDelivery
from sms.models import SmsInbound, SmsMessage
from web_console.deps import CsrfChecked, CurrentAccount, RowId, SettingsDep, protected_router
from web_console.render import render
from web_console.sessions import client_ip

LIMIT = 100
# The outbox tables whose failed rows a supervisor may retry, by the name the page's forms use
OUTBOXES: dict[str, Any] = {"sms": SmsMessage, "mail": MailMessage, "hook": WebhookDelivery}

router = protected_router()


def count_dead_letters(settings: Settings) -> dict[str, int]:
    """How many messages of each kind the workers gave up on (the doctor reports them)."""
    with session_scope(settings) as s:
        return {kind: count_failed(s, model) for kind, model in OUTBOXES.items()}


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
            "dead": {kind: failed_rows(s, model, LIMIT) for kind, model in OUTBOXES.items()},
        }


@router.get("/admin/messages")
async def messages_page(request: Request, account: CurrentAccount, settings: SettingsDep) -> Response:
    data = await run_in_threadpool(_load, settings)
    retried = request.query_params.get("retried", "")[:8]
    return render(
        request, "admin_messages.html", account=account, china=CHINA_TZ, utc=UTC, retried=retried, **data
    )


@router.post("/admin/messages/{kind}/{row_id}/retry", dependencies=[CsrfChecked])
async def retry_message(
    request: Request,
    kind: Literal["sms", "mail", "hook"],
    row_id: RowId,
    account: CurrentAccount,
    settings: SettingsDep,
) -> Response:
    """A dead letter sent again: queued now, its attempts counted afresh; audited."""

    def retry() -> bool:
        with session_scope(settings) as s:
            done = requeue_failed(s, OUTBOXES[kind], row_id)
            if done:
                target = f"{kind}:{row_id}"
                audit(s, account.username, "message.retry", target, account.role, client_ip(request))
            s.commit()
            return done

    done = await run_in_threadpool(retry)
    return RedirectResponse(f"/admin/messages?retried={'ok' if done else 'stale'}", status_code=303)
