"""Inbound SMS: record each message once, hand it to the handler the application registered.

``sms`` knows the providers and the outbox, not what a message means: the composition root
registers a ``ReplyHandler`` (the order domain's reply grammar) on the web app as
``app.state.sms_reply_handler``, and the webhooks and the command line pass it to ``receive``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from callcenter import phone
from callcenter.config import Settings
from callcenter.text import storable
from sms.models import SmsInbound

# What a resident may text back: an unsubscribe word, or one digit (a rating asked for by SMS).
OPT_OUT_WORDS = frozenset({"TD", "T", "N", "退订", "退订短信"})
RATING_DIGITS = frozenset("12345")


def short_reply(body: str) -> str:
    """A resident's reply folded for matching: full-width forms folded, spaces and a closing
    full stop dropped, upper case."""
    text = unicodedata.normalize("NFKC", (body or "")[:64])
    return "".join(ch for ch in text if ch.isprintable() and not ch.isspace()).upper().rstrip("。.!！")


def is_resident_reply(body: str) -> bool:
    """An unsubscribe or a rating digit: the two replies taken from a number that is no outlet's."""
    text = short_reply(body)
    return text in OPT_OUT_WORDS or text in RATING_DIGITS


@dataclass(frozen=True)
class InboundSms:
    """A message as received: ``number`` is the sender in E.164 ("" when it is not a number)."""

    provider: str
    provider_id: str
    sender: str
    number: str
    body: str


@dataclass
class Outcome:
    """What became of a message: ``code`` (applied, malformed, unknown_sender, refused, replay, …),
    the answer to the sender (may be empty) and the order it concerned."""

    code: str
    reply: str
    order_id: int | None = None


# Decides what a message means and acts on it in ``session`` (no commit); ``receive`` records the
# outcome and commits everything together.
ReplyHandler = Callable[[Session, Settings, InboundSms], Outcome]


def receive(
    session: Session,
    settings: Settings,
    handler: ReplyHandler,
    *,
    provider: str,
    provider_id: str,
    sender: str,
    body: str,
) -> Outcome:
    """Record the message and hand it to ``handler``. Commits (the inbound row, whatever the
    handler changed and any SMS it queued go in one transaction); a provider id seen before is a
    replay and changes nothing."""
    sender, provider_id, body = storable(sender), storable(provider_id), storable(body)
    number = phone.normalize(sender, settings.default_region, settings.default_area_code) or ""
    row = SmsInbound(
        provider=provider, provider_id=provider_id[:64], sender=(number or sender)[:40], body=body[:1600]
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return Outcome("replay", "")
    outcome = handler(session, settings, InboundSms(provider, provider_id, sender, number, body))
    row.outcome = outcome.code
    row.order_id = outcome.order_id
    session.add(row)
    session.commit()
    return outcome
