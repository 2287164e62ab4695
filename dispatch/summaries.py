"""The daily order summaries by e-mail: each active outlet with an address gets its own, the
supervisors the district's. The mail worker queues them once a day (``MailWorker(summaries=…)``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from callcenter.clock import aware
from callcenter.config import CHINA_TZ, Settings
from callcenter.directory.models import Outlet
from callcenter.mail import enqueue_mail, valid_address
from callcenter.records.models import MailMessage
from dispatch import message_templates, operations, texts
from dispatch.models import Status, WorkOrder
from dispatch.notices import order_context


def summary_context(session: Session, day: date, outlet_id: int | None = None) -> dict[str, Any]:
    """Orders of one China day (and those still open): counts by status, overdue ones."""
    start = datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ).astimezone(UTC)
    end = start + timedelta(days=1)
    q = select(WorkOrder)
    if outlet_id is not None:
        q = q.where(WorkOrder.outlet_id == outlet_id)
    created = list(session.exec(q.where(col(WorkOrder.created_at) >= start, col(WorkOrder.created_at) < end)))
    open_rows = list(session.exec(q.where(col(WorkOrder.status).in_(Status.OPEN))))
    now = min(end, datetime.now(UTC))

    def overdue(o: WorkOrder) -> bool:
        d = o.deadline_at
        if d is None:
            return False
        d = d if d.tzinfo else d.replace(tzinfo=UTC)
        return d < now

    by_status: dict[str, int] = {}
    for o in created:
        by_status[o.status] = by_status.get(o.status, 0) + 1
    late = [order_context(session, o) for o in open_rows if overdue(o)]
    return {
        "day": day.isoformat(),
        "created": len(created),
        "by_status": sorted(by_status.items()),
        "open": len(open_rows),
        "overdue": late,
        "open_orders": [order_context(session, o) for o in open_rows[:50]],
    }


def enqueue_daily_summaries(session: Session, settings: Settings, day: date) -> int:
    """Each summary once a day (keyed by the day, so a restart does not send them again).
    Returns how many were new."""
    prefix = f"summary:{day}:"
    done = set(
        session.exec(
            select(MailMessage.idempotency_key).where(col(MailMessage.idempotency_key).startswith(prefix))
        )
    )
    jobs: list[tuple[str, list[str], str, int | None]] = []
    for outlet in session.exec(select(Outlet)):
        to = [a for a in outlet.mail_addresses() if valid_address(a)]
        if to and outlet.active:
            jobs.append((f"{prefix}outlet:{outlet.id}", to, outlet.name, outlet.id))
    supervisors = operations.current(session, settings).supervisor_emails
    if supervisors:
        jobs.append((f"{prefix}all", list(supervisors), "全区", None))
    n = 0
    for key, to, scope, outlet_id in jobs:
        if key in done:
            continue
        mail = message_templates.render_mail(
            session, "daily_summary_mail", summary_values(scope, summary_context(session, day, outlet_id))
        )
        n += enqueue_mail(session, to, mail.subject, mail.text, mail.html, idempotency_key=key) is not None
    return n


def summary_values(scope: str, summary: dict[str, Any]) -> dict[str, str]:
    """The variables of the daily summary's e-mail (template ``daily_summary_mail``): the lists
    are made here, one line each, so the text stays plain ``{variables}``."""
    by_status = "\n".join(texts.DAILY_MAIL_STATUS_LINE.format(status=s, n=n) for s, n in summary["by_status"])
    overdue = "\n".join(
        texts.DAILY_MAIL_OVERDUE_LINE.format(
            number=o["number"],
            kind=o["type"],
            summary=" ".join(str(o["summary"]).split())[:60],
            deadline=o["deadline"],
            status=o["status"],
            outlet=o["outlet"],
        )
        for o in summary["overdue"][:100]
    )
    return {
        "scope": scope,
        "day": summary["day"],
        "created": str(summary["created"]),
        "open": str(summary["open"]),
        "overdue": str(len(summary["overdue"])),
        "by_status": by_status,
        "overdue_list": overdue,
    }


message_templates.register_values(
    "daily_summary_mail",
    lambda s, order: summary_values(
        "全区", summary_context(s, aware(order.created_at).astimezone(CHINA_TZ).date())
    ),
)
