"""E-mail through SMTP (aiosmtplib): the outbox, its worker, and Jinja2 templates.

``send_mail`` is the one way out for what is sent at once (the statistics reports);
``enqueue_mail`` adds a message to the outbox in the caller's transaction and ``MailWorker``
sends it with retries. What the messages say belongs to the domains that send them:
``MailTemplates(<folder>)`` renders ``<name>.subject.j2``, ``<name>.txt.j2`` and optionally
``<name>.html.j2`` (autoescaped: text from residents and SMS replies ends up in them).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import logging
import mailbox
import random
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import jinja2
from sqlmodel import Session, select

from callcenter.config import CHINA_TZ, Settings
from callcenter.database import session_scope
from callcenter.outbox import claim_due
from callcenter.records.models import MailMessage

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,255}")


class MailError(Exception):
    pass


class MailServerUnreachable(MailError):
    """No SMTP session at all (refused, timed out, no greeting): every message would fail alike."""


def valid_address(addr: str) -> bool:
    return bool(_ADDRESS.fullmatch(addr or ""))


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
    except aiosmtplib.SMTPTimeoutError as exc:
        # A server that does not answer in time is down for this round: the rest of the round
        # must not wait its timeout each. (A message whose end of DATA went unanswered may have
        # arrived; sent again, it carries the same Message-ID, which receivers use to drop it.)
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        raise MailServerUnreachable(
            f"SMTP {where} does not answer within {settings.smtp_timeout_s:g} s"
        ) from exc
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


class MailTemplates:
    """The e-mail templates in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(folder)),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, **context: Any) -> tuple[str, str, str | None]:
        """(subject, text, html) from the ``name`` templates."""
        subject = self._env.get_template(f"{name}.subject.j2").render(**context)
        text = self._env.get_template(f"{name}.txt.j2").render(**context)
        html = None
        if (self.folder / f"{name}.html.j2").exists():
            html = self._env.get_template(f"{name}.html.j2").render(**context)
        return _header(subject), text, html


# --- the e-mail outbox ---------------------------------------------------------------------


def enqueue_mail(
    session: Session,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    *,
    idempotency_key: str,
    order_id: int | None = None,
) -> MailMessage | None:
    """Add an e-mail to the outbox in ``session`` (no commit: it goes with the caller's change).
    The same key twice keeps the first. Returns the row, or None when nobody valid is addressed."""
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


# Queues the daily summaries of one day; how many were new (the domain that has something to sum
# up provides it: each summary keyed by the day, so a restart does not queue them again).
DailySummaries = Callable[[Session, Settings, date], int]


class MailWorker:
    """Sends the e-mail outbox with retries, and queues the daily summaries at ``daily_summary_at``
    (``summaries``: what queues them; none, no summaries)."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime] | None = None,
        summaries: DailySummaries | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.summaries = summaries
        self.sent = 0
        # Said once when the server stops answering and once when it is back: an outage of an
        # hour is two log lines, not one a round.
        self.down_since: datetime | None = None
        self._task: asyncio.Task | None = None
        self._summaries_day: date | None = None  # queued for this day: no need to look again
        # Rows delivered whose "sent" could not be written (the database went away just then):
        # when they come round again they are marked sent, not delivered a second time.
        self._delivered: set[int] = set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mail-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
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
        if not at or self.summaries is None:
            return 0
        now = self.clock().astimezone(CHINA_TZ)
        hh, _, mm = at.partition(":")
        if (now.hour, now.minute) < (int(hh), int(mm or 0)) or self._summaries_day == now.date():
            return 0
        with session_scope(self.settings) as s:
            n = self.summaries(s, self.settings, now.date())
            s.commit()
        self._summaries_day = now.date()
        return n

    def _claim(self) -> list[MailMessage]:
        return claim_due(self.settings, MailMessage, 16, self.settings.sms_claim_timeout_s)

    def _record(self, row_id: int | None, error: str | None) -> None:
        with session_scope(self.settings) as s:
            row = s.get(MailMessage, row_id) if row_id is not None else None
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
        rows = await asyncio.to_thread(self._claim)
        unreachable = ""
        for i, row in enumerate(rows):
            if unreachable:
                # The server is down: the rest of the round waits for the next try, without a
                # connection (and its timeout) each, and without a log line each.
                await asyncio.to_thread(self._record, row.id, unreachable)
                continue
            if row.id in self._delivered:
                await self._record_delivered(row.id, None)
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
                if self.down_since is not None:
                    log.warning(
                        "mail: SMTP %s:%s answers again", self.settings.smtp_host, self.settings.smtp_port
                    )
                    self.down_since = None
            except MailServerUnreachable as exc:
                error = unreachable = f"{type(exc).__name__}: {exc}"
                if self.down_since is None:
                    self.down_since = datetime.now(UTC)
                    log.warning(
                        "mail: %s; %d message(s) wait for the next try (said once until it answers)",
                        exc,
                        len(rows) - i,
                    )
            except Exception as exc:  # refused, bad address: retry, then give up
                error = f"{type(exc).__name__}: {exc}"
                log.warning("mail %s: %s", row.idempotency_key, error)
            await self._record_delivered(row.id, error)
        return len(rows)

    async def _record_delivered(self, row_id: int | None, error: str | None) -> None:
        try:
            await asyncio.to_thread(self._record, row_id, error)
        except Exception:
            if error is None and row_id is not None:
                self._delivered.add(row_id)
            raise
        if row_id is not None:
            self._delivered.discard(row_id)


# --- the demo's mailbox ------------------------------------------------------------------------
# ``callcenter demo`` runs a local SMTP server (aiosmtpd) that keeps what it receives in this
# Maildir, so the outlets' and supervisors' e-mails can be read on the messages page.
DEMO_MAILBOX = "demo-mailbox"


def demo_mailbox(settings: Settings) -> Path:
    return Path(settings.data_dir) / DEMO_MAILBOX


def received_mail(settings: Settings, limit: int = 100) -> list[dict[str, Any]] | None:
    """The demo mailbox's messages, newest first (None when there is no demo mailbox)."""
    folder = demo_mailbox(settings)
    if not (folder / "cur").is_dir():
        return None
    box = mailbox.Maildir(folder, create=False)
    found: list[dict[str, Any]] = []
    # A Maildir key starts with its delivery time: the newest keys, before reading any message.
    for key in sorted(box.iterkeys(), reverse=True)[: limit * 2]:
        try:
            raw = box.get_bytes(key)
            at = box.get_message(key).get_date()
        except (KeyError, OSError):  # taken away meanwhile
            continue
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html")) if isinstance(msg, EmailMessage) else None
        try:
            text = body.get_content() if body is not None else ""
        except (LookupError, ValueError):
            text = ""
        found.append(
            {
                "at": datetime.fromtimestamp(at, UTC),
                "from": str(msg.get("From", "")),
                "to": str(msg.get("To", "")),
                "subject": str(msg.get("Subject", "")),
                "text": str(text)[:2000],
                "attachments": [p.get_filename() or "" for p in msg.iter_attachments()]
                if isinstance(msg, EmailMessage)
                else [],
            }
        )
    found.sort(key=lambda m: m["at"], reverse=True)
    return found[:limit]
