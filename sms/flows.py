"""Outlets' SMS replies: ``签收 1234``, ``办结 1234 说明``, ``退单 1234 原因``, ``进度 1234 说明``.

Domestic SMS delivers a reply without the id of the message it answers, so every reply names the
order by its short code. A reply applies the transition only when the sender's number is
registered for the outlet that holds the order; anything else gets a short help text and
changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from callcenter import phone
from callcenter.config import Settings
from callcenter.directory.models import Outlet
from sms.models import SmsInbound

COMMANDS = ("签收", "办结", "退单", "进度")
NEEDS_TEXT = {"退单": "原因", "进度": "说明"}
_REPLY = re.compile(r"^(签收|办结|退单|进度)\s*[#＃:：]?\s*(\d{3,8})(?:[\s,，:：]+(.*))?$", re.S)

HELP = "回复格式：签收 编号；进度 编号 说明；办结 编号 说明；退单 编号 原因。编号见派单短信。"
UNKNOWN_SENDER = "本号码未登记为服务网点联系电话，短信未处理。如需登记请联系热线管理员。"


@dataclass(frozen=True)
class Reply:
    command: str
    code: str
    text: str


def parse(body: str) -> Reply | None:
    """The reply's command, order code and text; None when it is not one of the four forms.

    Full-width digits, letters and spaces (common from Chinese phone keyboards) are folded first."""
    text = unicodedata.normalize("NFKC", body or "").strip()
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    m = _REPLY.match(text)
    if m is None:
        return None
    command, code, rest = m.group(1), m.group(2), " ".join((m.group(3) or "").split())
    if command in NEEDS_TEXT and not rest:
        return None
    return Reply(command, code, rest[:500])


@dataclass
class Outcome:
    code: str  # applied | malformed | unknown_sender | unknown_code | refused | replay
    reply: str
    order_id: int | None = None


def _outlets_of(session: Session, number: str, settings: Settings) -> list[Outlet]:
    """Outlets that registered this number (their phone or further SMS numbers)."""
    out = []
    for outlet in session.exec(select(Outlet)):
        for raw in outlet.sms_numbers():
            if phone.normalize(raw, settings.default_region, settings.default_area_code) == number:
                out.append(outlet)
                break
    return out


_STATE_TEXT = {
    "state": "工单{number}当前为{status}，不能{command}。",
    "outlet": "工单{number}不由本网点办理。",
    "role": "本号码不能{command}工单。",
    "invalid": "{message}",
}


def handle_reply(
    session: Session, settings: Settings, provider: str, provider_id: str, sender: str, body: str
) -> Outcome:
    """Record the reply and apply it. Commits (the inbound row, the order change and any SMS the
    change queues go in one transaction); a provider id seen before is a replay and changes nothing."""
    from dispatch import service as dispatch

    number = phone.normalize(sender, settings.default_region, settings.default_area_code)
    row = SmsInbound(
        provider=provider, provider_id=provider_id[:64], sender=(number or sender)[:40], body=body[:1600]
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return Outcome("replay", "")

    def done(outcome: Outcome) -> Outcome:
        row.outcome = outcome.code
        row.order_id = outcome.order_id
        session.add(row)
        session.commit()
        return outcome

    outlets = _outlets_of(session, number, settings) if number else []
    if not outlets:
        return done(Outcome("unknown_sender", UNKNOWN_SENDER))
    reply = parse(body)
    if reply is None:
        return done(Outcome("malformed", HELP))
    order = dispatch.find_by_short_code(session, reply.code)
    outlet = next((o for o in outlets if order is not None and o.id == order.outlet_id), None)
    if order is None or outlet is None:
        # Another outlet's order reads the same as no order: the code tells a stranger nothing.
        return done(Outcome("unknown_code", f"未找到编号{reply.code}的待办工单。{HELP}"))
    actor = dispatch.Actor(username=f"sms:{number}"[:64], role="outlet", outlet_id=outlet.id)
    order_id = order.id
    try:
        dispatch.transition(session, order, reply.command, actor, note=reply.text)
    except dispatch.DispatchError as exc:
        session.rollback()
        # The rollback took the inbound row with it: write it again, with why it was refused.
        session.add(
            SmsInbound(
                provider=provider,
                provider_id=provider_id[:64],
                sender=(number or sender)[:40],
                body=body[:1600],
                outcome="refused",
                order_id=order_id,
            )
        )
        session.commit()
        current = session.get(type(order), order_id)
        text = _STATE_TEXT.get(exc.code, "{message}").format(
            number=current.number if current else reply.code,
            status=current.status if current else "",
            command=reply.command,
            message=str(exc),
        )
        return Outcome("refused", text, order_id)
    verb = {"进度": "进度已记录"}.get(reply.command, f"已{reply.command}")
    return done(Outcome("applied", f"{verb}：工单{order.number}。", order_id))
