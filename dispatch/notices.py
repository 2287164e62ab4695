"""What an order change causes besides the order and its history, in one place: ``order_changed``.

``service.create_order`` and ``transitions.transition`` call it last, in the change's transaction
(no commit), so the order, its history and everything below commit together or not at all:

- the grid event and approval record (``dispatch.records``) and their webhook deliveries;
- the outlet's e-mail for 派单 / 改派 / 催办 / 督办 / 重办, and the supervisors' for 督办;
- the outlet's SMS for the same actions (督办: only while the order is at the outlet), and the
  supervisors' SMS for 督办;
- the follow-up call (回访) when an order is resolved; a seat's 回访 task closed once the 回访 is
  recorded (or the order is archived);
- the supervisors' e-mail when a 回访 finds the resident dissatisfied: the order waits for their
  重办 review (re-open or close), listed on the orders page;
- the resident's SMS: the receipt with the order number and query code on 受理, a progress notice
  on 派单 and 办结 (these two not to a number that replied TD / 退订). An order taken and
  dispatched in one request (``flows.create_and_dispatch``) sends one SMS instead of the receipt
  and the dispatch notice: the receipt that says the order is already with an outlet, queued by
  the 派单 (``with_receipt``) while the 受理 queues none (``resident_sms=False``).

Every notice's idempotency key carries the history row's id: a change notifies once.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session

from callcenter import phone
from callcenter.callcontrol.callbacks import close_followup_tasks, request_followup
from callcenter.clock import aware, local_minute, utcnow
from callcenter.config import CHINA_TZ, Settings, get_settings
from callcenter.database import database_unavailable
from callcenter.directory.models import Community, Outlet
from callcenter.mail import enqueue_mail, valid_address
from dispatch import message_templates, operations, policies, texts
from dispatch.links import InsecureLinkBase, outlet_link, revoke_links
from dispatch.models import DISSATISFIED, Action, OrderHistory, Status, WorkOrder
from dispatch.records import sync_order
from sms.service import enqueue_optional_sms, enqueue_sms, opted_out

log = logging.getLogger(__name__)

# The actions that put an order in front of an outlet: it hears of them by e-mail and SMS.
NOTICE_ACTIONS: frozenset[str] = frozenset(
    {Action.DISPATCH, Action.REDISPATCH, Action.REMIND, Action.SUPERVISE, Action.REOPEN}
)


# The actions a resident hears of by SMS, and whether the resident may refuse the message.
# Their texts are registered templates (``message_templates``), which administrators may edit.
RESIDENT_SMS: dict[str, tuple[str, bool]] = {
    Action.RECEIVE: ("resident_receipt", False),
    Action.DISPATCH: ("resident_dispatched", True),
    Action.RESOLVE: ("resident_resolved", True),
}
# The 派单 that carries the receipt (the order taken and dispatched in one request): sent as the
# receipt is, whoever replied TD; a number that did gets the plain receipt (no progress notice).
RESIDENT_RECEIPT_DISPATCHED = "resident_receipt_dispatched"


def followup_reference(order: WorkOrder) -> str:
    """How a follow-up call names its order (telephony hands it back with the rating)."""
    return f"order:{order.number}"


def _unless_database_lost(exc: Exception) -> None:
    """A side effect's own failure is logged and the order change stands; but a lost database
    connection has lost the whole transaction: the change fails as one (a 503 for the person)."""
    if database_unavailable(exc):
        raise exc


def order_changed(
    session: Session,
    settings: Settings,
    order: WorkOrder,
    hist: OrderHistory,
    *,
    outlet_sms: bool = False,
    followup_call: bool = False,
    resident_sms: bool = True,
    with_receipt: bool = False,
) -> None:
    """Queue what the change recorded in ``hist`` causes (see the module's docstring).

    ``outlet_sms``: the action sends the outlet its SMS; ``followup_call``: request the resident's
    follow-up call (its outcome goes into the history row's detail); ``resident_sms=False``: no SMS
    to the resident for this change (a 受理 whose receipt goes with the 派单 that follows);
    ``with_receipt``: this 派单's SMS to the resident is the receipt too."""
    session.flush()  # the keys carry the history row's id; the records read the order as it is now
    action = hist.action
    if order.id is not None:
        # Links sent to an outlet that no longer holds the order, or to any outlet once the
        # order is closed, stop working now rather than when they expire.
        final = order.status in Status.FINAL
        revoke_links(session, order.id, keep_outlet=None if final else order.outlet_id)
    if action in NOTICE_ACTIONS:
        try:
            enqueue_order_mail(session, settings, order, action, hist.id)
        except Exception as exc:  # a template or address problem must not undo the order change
            _unless_database_lost(exc)
            log.exception("e-mail notice for order %s", order.number)
    if followup_call:
        requested = request_followup(session, order.caller_phone, followup_reference(order), settings)
        hist.detail = {**hist.detail, "followup_call": requested}
        session.add(hist)
    try:
        sync_order(session, order, settings)
    except Exception as exc:  # never let a record break the order change itself
        _unless_database_lost(exc)
        log.exception("grid/approval record for order %s", order.number)
    if outlet_sms:
        _sms_outlet(session, settings, order, action, hist)
    if action in RESIDENT_SMS and resident_sms:
        try:
            _sms_resident(session, settings, order, action, hist, with_receipt)
        except ValueError:  # a number the outbox refuses: the order change stands
            log.exception("resident SMS for order %s", order.number)
    if action == Action.SUPERVISE:
        _sms_supervisors(session, settings, order, hist)
    if action == Action.FOLLOW_UP and order.satisfaction == DISSATISFIED:
        try:
            _mail_reopen_review(session, settings, order, hist)
        except Exception as exc:  # a template or address problem must not undo the 回访
            _unless_database_lost(exc)
            log.exception("re-handling review e-mail for order %s", order.number)
    if action in (Action.FOLLOW_UP, Action.CLOSE):
        close_followup_tasks(session, order.number, hist.at or utcnow())


# --- SMS -----------------------------------------------------------------------------------


def _clean(text: Any, limit: int) -> str:
    """Printable text only (no control characters from SMS or forms), trimmed."""
    return "".join(ch for ch in str(text or "") if ch.isprintable()).strip()[:limit]


def _deadline_text(order: WorkOrder) -> str:
    due = aware(order.deadline_at)
    return due.astimezone(CHINA_TZ).strftime("%m-%d %H:%M") if due else ""


def outlet_sms_values(order: WorkOrder, action: str) -> dict[str, str]:
    """The variables of the outlet's SMS (template ``outlet_order``): plain text, no links (China's
    SMS gateways refuse them), the reply forms spelled out by the text itself."""
    return {
        "signature": texts.SMS_SIGNATURE,
        "head": texts.OUTLET_SMS_HEAD.get(action, ""),
        "number": order.number,
        "kind": order.order_type,
        "category": texts.OUTLET_SMS_CATEGORY.format(category=order.category) if order.category else "",
        "urgent": texts.OUTLET_SMS_URGENT if order.urgency == "urgent" else "",
        "summary": _clean(order.summary, 60),
        "address": texts.OUTLET_SMS_ADDRESS.format(address=order.address) if order.address else "",
        "deadline": _deadline_text(order),
        "code": order.short_code,
    }


def supervisor_sms_values(order: WorkOrder) -> dict[str, str]:
    """The variables of the supervisors' 督办 SMS (template ``supervisor_overdue``)."""
    return {
        "signature": texts.SMS_SIGNATURE,
        "number": order.number,
        "kind": order.order_type,
        "deadline": _deadline_text(order),
        "status": order.status,
    }


message_templates.register_values("outlet_order", lambda _s, order: outlet_sms_values(order, Action.DISPATCH))
message_templates.register_values("supervisor_overdue", lambda _s, order: supervisor_sms_values(order))


def _sms(
    session: Session,
    settings: Settings,
    to: str,
    text: message_templates.Rendered,
    key: str,
    order: WorkOrder,
    optional: bool = False,
) -> bool:
    """Queue the SMS; an optional one (a progress notice) not to a number that replied TD."""
    if not to:
        return False
    enqueue = enqueue_optional_sms if optional else enqueue_sms
    sent = enqueue(
        session,
        to=to,
        body=text.body,
        idempotency_key=key,
        order_id=order.id,
        settings=settings,
        template_code=text.provider_code,
        template_params=text.params,
    )
    return sent is not None


def _sms_outlet(
    session: Session, settings: Settings, order: WorkOrder, action: str, hist: OrderHistory
) -> None:
    outlet = session.get(Outlet, order.outlet_id) if order.outlet_id else None
    if outlet is None:
        return
    text = message_templates.render(session, "outlet_order", outlet_sms_values(order, action))
    _sms(session, settings, outlet.phone, text, f"order:{order.id}:{hist.id}", order)


def resident_number(settings: Settings, order: WorkOrder) -> str | None:
    """The caller's mobile in E.164, or None (a landline or no number: no SMS)."""
    number = phone.normalize(order.caller_phone, settings.default_region, settings.default_area_code)
    return number if phone.is_mobile(number) else None


def resident_sms_values(settings: Settings, order: WorkOrder) -> dict[str, str]:
    """The variables of the resident's SMS templates (``resident_*``)."""
    return {
        "signature": texts.SMS_SIGNATURE,
        "number": order.number,
        "code": order.query_code,
        "page": settings.resident_page(),
    }


for _name in (
    "resident_receipt",
    "resident_dispatched",
    RESIDENT_RECEIPT_DISPATCHED,
    "resident_resolved",
    "resident_rate_ask",
):
    message_templates.register_values(_name, lambda _s, order: resident_sms_values(get_settings(), order))


def _sms_resident(
    session: Session,
    settings: Settings,
    order: WorkOrder,
    action: str,
    hist: OrderHistory,
    with_receipt: bool = False,
) -> None:
    number = resident_number(settings, order)
    if number is None or not order.query_code:
        return
    name, optional = RESIDENT_SMS[action]
    if with_receipt:  # one SMS for 受理 and 派单: the receipt, which goes whoever replied TD
        name = "resident_receipt" if opted_out(session, number) else RESIDENT_RECEIPT_DISPATCHED
        optional = False
    text = message_templates.render(session, name, resident_sms_values(settings, order))
    _sms(session, settings, number, text, f"order:{order.id}:{hist.id}:resident", order, optional)


def ask_rating_by_sms(session: Session, settings: Settings, order: WorkOrder) -> bool:
    """The follow-up call found no one: ask for the rating by SMS reply (no commit); False when
    the resident cannot get one (no mobile, or replied TD)."""
    number = resident_number(settings, order)
    if number is None:
        return False
    key = f"order:{order.id}:rate-ask:{order.reopen_count}"
    text = message_templates.render(session, "resident_rate_ask", resident_sms_values(settings, order))
    return _sms(session, settings, number, text, key, order, optional=True)


def _sms_supervisors(session: Session, settings: Settings, order: WorkOrder, hist: OrderHistory) -> None:
    """督办: an SMS to each supervisor's mobile in the settings and the order's policy."""
    text = message_templates.render(session, "supervisor_overdue", supervisor_sms_values(order))
    policy = policies.current(session).get(order.order_type, order.urgency)
    phones = list(
        dict.fromkeys([*operations.current(session, settings).supervisor_phones, *policy.escalate_phones])
    )
    for i, mobile in enumerate(phones):
        _sms(session, settings, mobile, text, f"order:{order.id}:{hist.id}:sup{i}", order)


# --- e-mail --------------------------------------------------------------------------------


def order_context(session: Session, order: WorkOrder) -> dict[str, Any]:
    """An order as the e-mails show it."""
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


def order_mail_values(session: Session, order: WorkOrder, action: str) -> dict[str, str]:
    """The variables of the order e-mails (templates ``order_mail`` and ``supervisor_mail``)."""
    o = order_context(session, order)
    return {
        "outlet": o["outlet"],
        "action": action,
        "number": o["number"],
        "code": o["code"],
        "kind": o["type"],
        "category": texts.OUTLET_SMS_CATEGORY.format(category=o["category"]) if o["category"] else "",
        "urgent": texts.OUTLET_SMS_URGENT if o["urgent"] else "",
        "status": o["status"],
        "summary": _clean(o["summary"], 500),
        "community": o["community"],
        "address": _clean(o["address"], 200),
        "deadline": o["deadline"],
    }


# How the resident gave a dissatisfied rating, for the supervisors' e-mail
RATING_CHANNEL = {"call": "回访电话按键", "page": "居民查询页", "sms": "短信回复"}


def reopen_review_values(session: Session, order: WorkOrder, detail: dict[str, Any]) -> dict[str, str]:
    """The variables of the supervisors' e-mail after a dissatisfied 回访 (``reopen_review_mail``)."""
    rating = detail.get("rating")
    words = "非常不满意" if rating == 5 else order.satisfaction or DISSATISFIED
    channel = RATING_CHANNEL.get(str(detail.get("channel") or ""), "回访")
    return {
        **order_mail_values(session, order, Action.FOLLOW_UP),
        "rating": f"{words}，{channel}",
        "comment": _clean(order.resident_comment, 200) or "无",
    }


def _mail_reopen_review(session: Session, settings: Settings, order: WorkOrder, hist: OrderHistory) -> None:
    """The supervisors (settings and the order's policy) hear that a resident was dissatisfied."""
    escalate = policies.current(session).get(order.order_type, order.urgency).escalate_emails
    to = list(dict.fromkeys([*operations.current(session, settings).supervisor_emails, *escalate]))
    mail = message_templates.render_mail(
        session, "reopen_review_mail", reopen_review_values(session, order, hist.detail or {})
    )
    key = f"order:{order.id}:{hist.id}:review"
    row = enqueue_mail(
        session, to, mail.subject, mail.text, mail.html, idempotency_key=key, order_id=order.id
    )
    if row is None:
        log.warning("order %s rated dissatisfied: no supervisor e-mail address to tell", order.number)


def _sample_mail(session: Session, order: WorkOrder) -> dict[str, str]:
    return order_mail_values(session, order, Action.DISPATCH)


message_templates.register_values("order_mail", _sample_mail)
message_templates.register_values("supervisor_mail", lambda s, o: order_mail_values(s, o, Action.SUPERVISE))
message_templates.register_values(
    "reopen_review_mail", lambda s, o: reopen_review_values(s, o, {"rating": 5, "channel": "page"})
)


def order_notice(
    session: Session, order: WorkOrder, action: str, link: str = ""
) -> tuple[list[str], str, str, str | None]:
    """The outlet's e-mail for an order it receives (派单, 改派, 催办, 督办, 重办); ``link``: the
    signed outlet page for this order (e-mail may carry links; domestic SMS may not)."""
    outlet = session.get(Outlet, order.outlet_id) if order.outlet_id else None
    to = [a for a in (outlet.mail_addresses() if outlet else []) if valid_address(a)]
    mail = message_templates.render_mail(
        session,
        "order_mail",
        order_mail_values(session, order, action),
        link=link,
        link_label=texts.ORDER_MAIL_LINK,
    )
    return to, mail.subject, mail.text, mail.html


def enqueue_order_mail(
    session: Session, settings: Settings, order: WorkOrder, action: str, history_id: int | None
) -> None:
    """The outlet's e-mail for a dispatch action (and the supervisors' for 督办)."""
    if action not in NOTICE_ACTIONS or order.id is None:
        return
    link = ""
    if order.outlet_id and settings.session_secret:
        try:
            link = outlet_link(session, settings, order.id, order.outlet_id, settings.public_url(""))
        except InsecureLinkBase:
            # The notice still goes out, without the link: the outlet signs in or replies by SMS.
            log.error("order %s: no outlet link in the e-mail (public_base_url is not https)", order.number)
    to, subject, text, html = order_notice(session, order, action, link)
    key = f"order:{order.id}:{history_id}"
    enqueue_mail(session, to, subject, text, html, idempotency_key=key, order_id=order.id)
    escalate = policies.current(session).get(order.order_type, order.urgency).escalate_emails
    supervisors = list(dict.fromkeys([*operations.current(session, settings).supervisor_emails, *escalate]))
    if action == Action.SUPERVISE and supervisors:
        mail = message_templates.render_mail(
            session, "supervisor_mail", order_mail_values(session, order, action)
        )
        enqueue_mail(
            session,
            supervisors,
            mail.subject,
            mail.text,
            mail.html,
            idempotency_key=key + ":sup",
            order_id=order.id,
        )
