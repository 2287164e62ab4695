"""What the call-control parts of the templates need: the outbound lines, the
callback key and the FastAGI base URL. Every value is checked; a bad one is left out."""

from __future__ import annotations

import logging
import re

from callcenter.config import Settings

log = logging.getLogger(__name__)

_CONTACT = re.compile(r"sip:[A-Za-z0-9._~%!$&'()*+=:@\[\]-]+(;[A-Za-z0-9._~=-]+)*")
_HOST = re.compile(r"[0-9A-Za-z.:_-]+")


def _contact(value: str, what: str) -> str:
    value = (value or "").strip()
    if value and not _CONTACT.fullmatch(value):
        log.warning("%s %r ignored: not a plain sip: URI", what, value)
        return ""
    return value


def agi_key(settings: Settings) -> str:
    """The FastAGI key as the dialplan carries it (?k=); token_urlsafe is safe in a URL and a
    dialplan, anything else is refused rather than spliced in."""
    key = (settings.agi_secret or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", key):
        raise ValueError("invalid agi_secret: 16 to 128 characters of A-Z a-z 0-9 _ -")
    return key


def callcontrol_context(settings: Settings) -> dict:
    lines = []
    for name, value, what in (
        ("cc-outbound", settings.outbound_contact, "outbound_contact"),
        ("cc-trunk12345-out", settings.trunk12345_contact, "trunk12345_contact"),
    ):
        contact = _contact(value, what)
        if contact:
            lines.append({"name": name, "contact": contact})
    digit = settings.callback_digit if re.fullmatch(r"[0-9*#]", settings.callback_digit or "") else "1"
    host = settings.agi_host if _HOST.fullmatch(settings.agi_host or "") else "127.0.0.1"
    if host in ("", "0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    return {
        "outbound_lines": lines,
        "callback_digit": digit,
        # A long wait by default: 0 would announce the offer continuously.
        "callback_offer_after_s": max(5, int(settings.callback_offer_after_s)),
        "followup_digit_wait_s": max(2, int(settings.followup_digit_wait_s)),
        "cc_agi_base": f"agi://{host}:{int(settings.agi_port)}",
        "cc_agi_query": f"?k={agi_key(settings)}",
    }
