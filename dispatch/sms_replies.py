"""Outlets' SMS replies: ``签收 1234``, ``办结 1234 说明``, ``退单 1234 原因``, ``进度 1234 说明``.

A number that is no outlet's is a resident's: ``TD`` / ``退订`` stops the optional messages, a
single digit 1–5 rates the sender's latest resolved order (the 回访, as the follow-up call's key).

Domestic SMS delivers a reply without the id of the message it answers, so every reply names the
order by its short code. A reply applies the transition only when the sender's number is
registered for the outlet that holds the order; anything else gets a short help text and
changes nothing. ``handle_reply`` is the ``sms.inbound.ReplyHandler`` the application registers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from callcenter.accounts.models import Role
from callcenter.clock import utcnow
from callcenter.config import Settings
from callcenter.directory.service import outlets_by_sms_number
from dispatch import message_templates, texts
from dispatch.actors import Actor
from dispatch.errors import DispatchError
from dispatch.models import Status, WorkOrder
from dispatch.service import find_by_short_code
from dispatch.transitions import RATING_SATISFACTION, transition
from sms.inbound import OPT_OUT_WORDS, RATING_DIGITS, InboundSms, Outcome, short_reply
from sms.service import opt_out

COMMANDS = ("签收", "办结", "退单", "进度")
NEEDS_TEXT = {"退单": "原因", "进度": "说明"}
# Linear in the body's length: the separator is optional as a whole, so two runs of spaces never
# compete for the same characters; ASCII digits only (the code is an int to the order domain).
_REPLY = re.compile(r"(签收|办结|退单|进度)\s*(?:[#＃:：]\s*)?([0-9]{3,8})(?:[\s,，:：]+(.*))?", re.S)
# Longer than any SMS a phone sends (Twilio's cap); the rest of a longer body is not read.
MAX_REPLY_CHARS = 1600


@dataclass(frozen=True)
class Reply:
    command: str
    code: str
    text: str


def parse(body: str) -> Reply | None:
    """The reply's command, order code and text; None when it is not one of the four forms.

    Full-width digits, letters and spaces (common from Chinese phone keyboards) are folded first."""
    text = unicodedata.normalize("NFKC", (body or "")[:MAX_REPLY_CHARS]).strip()
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    m = _REPLY.fullmatch(text)
    if m is None:
        return None
    command, code, rest = m.group(1), m.group(2), " ".join((m.group(3) or "").split())
    if command in NEEDS_TEXT and not rest:
        return None
    return Reply(command, code, rest[:500])


def handle_reply(session: Session, settings: Settings, message: InboundSms) -> Outcome:
    """Apply the reply to its order (no commit). A refused transition leaves nothing behind: it
    runs in a savepoint, rolled back with the refusal."""
    number = message.number
    outlets = outlets_by_sms_number(session, settings, number) if number else []
    if not outlets:
        return resident_reply(session, settings, message)
    help_text = message_templates.render(session, "reply_help", {}).body
    reply = parse(message.body)
    if reply is None:
        return Outcome("malformed", help_text)
    order = find_by_short_code(session, reply.code)
    outlet = next((o for o in outlets if order is not None and o.id == order.outlet_id), None)
    if order is None or outlet is None:
        # Another outlet's order reads the same as no order: the code tells a stranger nothing.
        unknown = message_templates.render(
            session, "reply_unknown_code", {"code": reply.code, "help": help_text}
        )
        return Outcome("unknown_code", unknown.body)
    actor = Actor(username=f"sms:{number}"[:64], role=Role.OUTLET.value, outlet_id=outlet.id)
    # What a refusal says is read before the savepoint's rollback expires the order.
    number_text, status_text = order.number, order.status
    try:
        with session.begin_nested():
            transition(session, order, reply.command, actor, note=reply.text, settings=settings)
    except DispatchError as exc:
        if exc.code not in message_templates.REPLY_REFUSED:
            return Outcome("refused", str(exc), order.id)  # the validation's own message
        values = {"number": number_text, "status": status_text, "command": reply.command}
        text = message_templates.render(session, message_templates.REPLY_REFUSED[exc.code].name, values)
        return Outcome("refused", text.body, order.id)
    verb = texts.REPLY_PROGRESS if reply.command == "进度" else texts.REPLY_DONE.format(command=reply.command)
    applied = message_templates.render(session, "reply_applied", {"verb": verb, "number": order.number})
    return Outcome("applied", applied.body, order.id)


def orders_of_number(number: str) -> list[str]:
    """The forms a caller's number is kept in on an order (E.164 and the national digits)."""
    forms = [number]
    if number.startswith("+86"):
        forms.append(number[3:])
    return forms


def latest_to_rate(session: Session, settings: Settings, number: str) -> WorkOrder | None:
    """The sender's newest order waiting for its 回访, resolved within the rating window."""
    since = utcnow() - timedelta(days=settings.resident_rating_days)
    return session.exec(
        select(WorkOrder)
        .where(
            WorkOrder.status == Status.RESOLVED.value,
            col(WorkOrder.caller_phone).in_(orders_of_number(number)),
            col(WorkOrder.resolved_at) >= since,
        )
        .order_by(col(WorkOrder.resolved_at).desc())
        .limit(1)
    ).first()


def resident_reply(session: Session, settings: Settings, message: InboundSms) -> Outcome:
    """A resident's SMS (no commit): 退订, or a rating 1–5 that becomes the 回访."""
    number = message.number
    text = short_reply(message.body)
    if number and text in OPT_OUT_WORDS:
        opt_out(session, number)
        return Outcome("opted_out", message_templates.render(session, "resident_reply_opted_out", {}).body)
    if not number or text not in RATING_DIGITS:
        return Outcome("unknown_sender", message_templates.render(session, "reply_unknown_sender", {}).body)
    order = latest_to_rate(session, settings, number)
    if order is None:
        return Outcome("no_order", message_templates.render(session, "resident_reply_no_order", {}).body)
    rating = int(text)
    transition(
        session,
        order,
        "回访",
        Actor.system("sms-rating"),
        satisfaction=RATING_SATISFACTION[rating],
        settings=settings,
        note=f"短信回复评价 {rating}",
        channel="sms",
        rating=rating,
    )
    rated = message_templates.render(session, "resident_reply_rated", {"number": order.number})
    return Outcome("rated", rated.body, order.id)
