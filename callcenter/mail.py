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

from callcenter.clock import local_minute
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


class MailServerUnreachable(MailError):
    """No SMTP session at all (refused, timed out, no greeting): every message would fail alike."""


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
    message_id: str = "",
) -> EmailMessage:
    bad = [a for a in to if not valid_address(a)]
    if bad or not to:
        raise MailError(f"not e-mail addresses: {bad or 'none given'}")
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = _header(subject)
    msg["Date"] = formatdate(localtime=False)
    domain = settings.mail_from.rpartition("@")[2] or "localhost"
    # From the outbox key when there is one: a notice resent after a crash has the same id, and
    # mail systems drop the copy.
    msg["Message-ID"] = f"<{message_id}@{domain}>" if message_id else make_msgid(domain=domain)
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


async def _deliver(settings: Settings, msg: EmailMessage) -> None:
    import aiosmtplib

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
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
        raise MailServerUnreachable(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    log.info("mail sent to %s: %s", msg["To"], msg["Subject"])


async def send_mail(
    settings: Settings,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> None:
    """Send one message to ``to`` through the configured SMTP server. Raises MailError."""
    await _deliver(settings, build_message(settings, to, subject, text, html, attachments))


def render(name: str, **context: Any) -> tuple[str, str, str | None]:
    """(subject, text, html) from the ``name`` templates."""
    subject = _env.get_template(f"{name}.subject.j2").render(**context)
    text = _env.get_template(f"{name}.txt.j2").render(**context)
    html = None
    if (TEMPLATES / f"{name}.html.j2").exists():
        html = _env.get_template(f"{name}.html.j2").render(**context)
    return _header(subject), text, html


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
        "deadline": local_minute(order.deadline_at),
        "created": local_minute(order.created_at),
    }


def order_notice(session, order, action: str, link: str = "") -> tuple[list[str], str, str, str | None]:
    """The outlet's e-mail for an order it receives (派单, 改派, 催办, 督办, 重办); ``link``: the
    signed outlet page for this order (e-mail may carry links; domestic SMS may not)."""
    from callcenter.directory.models import Outlet

    outlet = session.get(Outlet, order.outlet_id) if order.outlet_id else None
    to = [a for a in (outlet.mail_addresses() if outlet else []) if valid_address(a)]
    subject, text, html = render(
        "order_notice", action=action, order=order_context(session, order), link=link
    )
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


# --- the e-mail outbox ---------------------------------------------------------------------

NOTICE_ACTIONS = frozenset({"派单", "改派", "催办", "督办", "重办"})


def enqueue_mail(
    session,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    *,
    idempotency_key: str,
    order_id: int | None = None,
):
    """Add an e-mail to the outbox in ``session`` (no commit: it goes with the caller's change).
    The same key twice keeps the first. Returns the row, or None when nobody valid is addressed."""
    from sqlmodel import select

    from callcenter.records.models import MailMessage

    to = [a for a in to if valid_address(a)]
    if not to:
        return None
    key = idempotency_key[:128]
    for obj in session.new:
        if isinstance(obj, MailMessage) and obj.idempotency_key == key:
            return obj
    with session.no_autoflush:
        existing = session.exec(select(MailMessage).where(MailMessage.idempotency_key == key)).first()
    if existing is not None:
        return existing
    row = MailMessage(
        idempotency_key=key, to=list(to), subject=_header(subject), text=text, html=html, order_id=order_id
    )
    session.add(row)
    return row


def enqueue_order_notice(session, order, action: str, history_id: int | None, settings: Settings) -> None:
    """The outlet's e-mail for a dispatch action (and the supervisors' for 督办)."""
    if action not in NOTICE_ACTIONS:
        return
    from dispatch.links import outlet_link

    link = ""
    if order.outlet_id and settings.session_secret:
        link = outlet_link(settings, order.id, order.outlet_id, settings.public_url(""))
    to, subject, text, html = order_notice(session, order, action, link)
    key = f"order:{order.id}:{history_id}"
    enqueue_mail(session, to, subject, text, html, idempotency_key=key, order_id=order.id)
    if action == "督办" and settings.supervisor_emails:
        enqueue_mail(
            session,
            settings.supervisor_emails,
            subject,
            text,
            html,
            idempotency_key=key + ":sup",
            order_id=order.id,
        )


def enqueue_daily_summaries(session, settings: Settings, day: date) -> int:
    """Each active outlet with an e-mail gets its own summary, supervisors the district's; each
    once a day (keyed by the day, so a restart does not send them again). Returns how many were new."""
    from sqlmodel import col, select

    from callcenter.directory.models import Outlet
    from callcenter.records.models import MailMessage

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
    if settings.supervisor_emails:
        jobs.append((f"{prefix}all", list(settings.supervisor_emails), "全区", None))
    n = 0
    for key, to, scope, outlet_id in jobs:
        if key in done:
            continue
        subject, text, html = render(
            "daily_summary", scope=scope, summary=summary_context(session, day, outlet_id)
        )
        n += enqueue_mail(session, to, subject, text, html, idempotency_key=key) is not None
    return n


class MailWorker:
    """Sends the e-mail outbox with retries, and queues the daily summaries at ``daily_summary_at``."""

    def __init__(self, settings: Settings, clock=None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sent = 0
        self._task = None
        self._summaries_day: date | None = None  # queued for this day: no need to look again

    async def start(self) -> None:
        import asyncio

        self._task = asyncio.create_task(self._run(), name="mail-outbox")

    async def stop(self) -> None:
        import asyncio

        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        import asyncio

        while True:
            try:
                await asyncio.to_thread(self.queue_summaries)
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mail round failed")
            await asyncio.sleep(self.settings.sms_poll_interval_s)

    def queue_summaries(self) -> int:
        """After ``daily_summary_at`` (China time), today's summaries are queued once."""
        at = self.settings.daily_summary_at
        if not at:
            return 0
        now = self.clock().astimezone(CHINA_TZ)
        hh, _, mm = at.partition(":")
        if (now.hour, now.minute) < (int(hh), int(mm or 0)) or self._summaries_day == now.date():
            return 0
        from callcenter.database import session_scope

        with session_scope(self.settings) as s:
            n = enqueue_daily_summaries(s, self.settings, now.date())
            s.commit()
        self._summaries_day = now.date()
        return n

    def _claim(self) -> list:
        from callcenter.outbox import claim_due
        from callcenter.records.models import MailMessage

        return claim_due(self.settings, MailMessage, 16, self.settings.sms_claim_timeout_s)

    def _record(self, row_id: int, error: str | None) -> None:
        import random

        from callcenter.database import session_scope
        from callcenter.records.models import MailMessage

        with session_scope(self.settings) as s:
            row = s.get(MailMessage, row_id)
            if row is None:
                return
            row.claimed_at = None
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", datetime.now(UTC), ""
                self.sent += 1
            else:
                row.last_error = error[:500]
                if row.attempts >= self.settings.sms_max_attempts:
                    row.status = "failed"
                else:
                    delay = min(
                        self.settings.sms_retry_base_s * 2 ** (row.attempts - 1),
                        self.settings.sms_retry_max_s,
                    )
                    row.status = "queued"
                    row.next_attempt_at = datetime.now(UTC) + timedelta(
                        seconds=delay * random.uniform(0.9, 1.1)
                    )
            s.add(row)
            s.commit()

    async def run_once(self) -> int:
        import asyncio
        import hashlib

        rows = await asyncio.to_thread(self._claim)
        unreachable = ""
        for i, row in enumerate(rows):
            if unreachable:
                # The server is down: the rest of the round waits for the next try, without a
                # connection (and its timeout) each, and without a log line each.
                await asyncio.to_thread(self._record, row.id, unreachable)
                continue
            try:
                msg = build_message(
                    self.settings,
                    row.to,
                    row.subject,
                    row.text,
                    row.html,
                    message_id=hashlib.sha256(row.idempotency_key.encode()).hexdigest()[:32],
                )
                await _deliver(self.settings, msg)
                error = None
            except MailServerUnreachable as exc:
                error = unreachable = f"{type(exc).__name__}: {exc}"
                log.warning("mail: %s; %d message(s) wait for the next try", exc, len(rows) - i)
            except Exception as exc:  # refused, bad address: retry, then give up
                error = f"{type(exc).__name__}: {exc}"
                log.warning("mail %s: %s", row.idempotency_key, error)
            await asyncio.to_thread(self._record, row.id, error)
        return len(rows)
