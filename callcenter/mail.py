"""Sending e-mail (notices, the daily statistics report) over SMTP with aiosmtplib.

Settings: ``smtp_host``, ``smtp_port``, ``smtp_user``, ``smtp_password``, ``smtp_starttls``,
``mail_from`` (read with defaults, so a branch without them still runs).
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib


async def send_mail(
    settings,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: list[tuple[str, bytes, str]] = (),
) -> None:
    """One message to ``to``; ``attachments`` are (filename, content, MIME type)."""
    if not to:
        return
    msg = EmailMessage()
    msg["From"] = getattr(settings, "mail_from", "") or "callcenter@localhost"
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content, mime in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    await aiosmtplib.send(
        msg,
        hostname=getattr(settings, "smtp_host", "127.0.0.1"),
        port=int(getattr(settings, "smtp_port", 25)),
        username=getattr(settings, "smtp_user", "") or None,
        password=getattr(settings, "smtp_password", "") or None,
        start_tls=bool(getattr(settings, "smtp_starttls", False)),
        timeout=30,
    )
