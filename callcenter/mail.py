"""E-mail through SMTP (aiosmtplib), with Jinja2 templates for order notices and daily summaries.

``send_mail`` is the one way out (the statistics reports use it too). Templates live in
``callcenter/mail_templates``: ``<name>.subject.j2``, ``<name>.txt.j2`` and optionally
``<name>.html.j2`` (autoescaped: order text comes from residents and SMS replies).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import jinja2

from callcenter.config import CHINA_TZ, Settings

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "mail_templates"
_ADDRESS = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,255}$")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class MailError(Exception):
    pass


def valid_address(addr: str) -> bool:
    return bool(_ADDRESS.match(addr or ""))


def _header(text: str) -> str:
    # A subject is one line: a CR/LF from an order's text must not start another header.
    return " ".join(str(text).split())[:200]


def build_message(
    settings: Settings,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Iterable[tuple[str, bytes, str]] = (),
) -> EmailMessage:
    bad = [a for a in to if not valid_address(a)]
    if bad or not to:
        raise MailError(f"not e-mail addresses: {bad or 'none given'}")
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = _header(subject)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or "localhost")
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, content_type in attachments:
        maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
        # Text attachments (CSV reports) say their charset, or mail readers guess (and garble Chinese).
        params = {"charset": "utf-8"} if maintype == "text" else None
        msg.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename, params=params
        )
    return msg


async def send_mail(
    settings: Settings,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> None:
    """Send one message to ``to`` through the configured SMTP server. Raises MailError."""
    import aiosmtplib

    msg = build_message(settings, to, subject, text, html, attachments)
    try:
        await aiosmtplib.send(
            msg,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_tls == "tls",
            start_tls=True if settings.smtp_tls == "starttls" else False,
            timeout=settings.smtp_timeout_s,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    log.info("mail sent to %s: %s", ", ".join(to), msg["Subject"])


def render(name: str, **context: Any) -> tuple[str, str, str | None]:
    """(subject, text, html) from the ``name`` templates."""
    subject = _env.get_template(f"{name}.subject.j2").render(**context)
    text = _env.get_template(f"{name}.txt.j2").render(**context)
    html = None
    if (TEMPLATES / f"{name}.html.j2").exists():
        html = _env.get_template(f"{name}.html.j2").render(**context)
    return _header(subject), text, html


def _local(ts: datetime | None) -> str:
    if ts is None:
        return ""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def order_context(session, order) -> dict[str, Any]:
    from callcenter.directory.models import Community, Outlet

    outlet = session.get(Outlet, order.outlet_id) if order.outlet_id else None
    community = session.get(Community, order.community_id) if order.community_id else None
    return {
        "number": order.number,
        "code": order.short_code,
        "type": order.order_type,
        "category": order.category,
        "urgent": order.urgency == "urgent",
        "status": order.status,
        "summary": order.summary,
        "address": order.address,
        "community": community.name if community else "",
        "outlet": outlet.name if outlet else "",
        "deadline": _local(order.deadline_at),
        "created": _local(order.created_at),
    }


def order_notice(session, order, action: str) -> tuple[list[str], str, str, str | None]:
    """The outlet's e-mail for an order it receives (派单, 改派, 催办, 督办, 重办)."""
    from callcenter.directory.models import Outlet

    outlet = session.get(Outlet, order.outlet_id) if order.outlet_id else None
    to = [a for a in (outlet.mail_addresses() if outlet else []) if valid_address(a)]
    subject, text, html = render("order_notice", action=action, order=order_context(session, order))
    return to, subject, text, html


def summary_context(session, day: date, outlet_id: int | None = None) -> dict[str, Any]:
    """Orders of one China day (and those still open): counts by status, overdue ones."""
    from sqlmodel import col, select

    from dispatch.models import Status, WorkOrder

    start = datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ).astimezone(UTC)
    end = start + timedelta(days=1)
    q = select(WorkOrder)
    if outlet_id is not None:
        q = q.where(WorkOrder.outlet_id == outlet_id)
    created = list(session.exec(q.where(col(WorkOrder.created_at) >= start, col(WorkOrder.created_at) < end)))
    open_rows = list(session.exec(q.where(col(WorkOrder.status).in_(Status.OPEN))))
    now = min(end, datetime.now(UTC))

    def overdue(o) -> bool:
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


async def send_daily_summaries(settings: Settings, day: date) -> int:
    """Each outlet with an e-mail gets its own summary; supervisors get the district's. Returns
    the number of messages sent."""
    from sqlmodel import select

    from callcenter.database import session_scope
    from callcenter.directory.models import Outlet

    jobs: list[tuple[list[str], str, str, str | None]] = []
    with session_scope(settings) as s:
        for outlet in s.exec(select(Outlet)):
            to = [a for a in outlet.mail_addresses() if valid_address(a)]
            if to and outlet.active:
                ctx = summary_context(s, day, outlet.id)
                jobs.append((to, *render("daily_summary", scope=outlet.name, summary=ctx)))
        sup = [a for a in settings.supervisor_emails if valid_address(a)]
        if sup:
            jobs.append((sup, *render("daily_summary", scope="全区", summary=summary_context(s, day))))
    sent = 0
    for to, subject, text, html in jobs:
        try:
            await send_mail(settings, to, subject, text, html)
            sent += 1
        except MailError as exc:
            log.warning("daily summary to %s not sent: %s", to, exc)
    return sent
