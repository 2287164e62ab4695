"""Webhooks the SMS providers call: Twilio's inbound replies and delivery status callbacks, and
Aliyun's push of replies. What a reply means is the ``ReplyHandler`` the application registered as
``app.state.sms_reply_handler`` (``sms.inbound``).

Both are public routes (no session): what authenticates them is ``X-Twilio-Signature``, an
HMAC of the exact URL Twilio was given (``public_base_url`` + path + query) and the form fields
with the account's auth token. A request without a valid signature is refused with 403 before
anything is read into the database; an inbound MessageSid seen before is a replay (409).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from callcenter import phone
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory.service import outlets_by_sms_number
from callcenter.text import digits_int
from sms.inbound import InboundSms, Outcome, ReplyHandler, is_resident_reply, receive
from sms.service import apply_status_callback, enqueue_sms

log = logging.getLogger(__name__)

router = APIRouter()

INBOUND = "/sms/twilio/inbound"
STATUS = "/sms/twilio/status"
ALIYUN_INBOUND = "/sms/aliyun/inbound"
ROUTES = frozenset({INBOUND, STATUS, ALIYUN_INBOUND})


def _ignore(session: Session, settings: Settings, message: InboundSms) -> Outcome:
    """Without a registered handler a reply is recorded and left alone."""
    log.warning("SMS from %s: no reply handler registered; recorded only", message.number or message.sender)
    return Outcome("unhandled", "")


def _handler(request: Request) -> ReplyHandler:
    return getattr(request.app.state, "sms_reply_handler", None) or _ignore


def twiml(text: str) -> Response:
    from twilio.twiml.messaging_response import MessagingResponse  # the Twilio SDK is heavy: on first use

    resp = MessagingResponse()
    if text:
        resp.message(text)
    return Response(str(resp), media_type="application/xml")


async def _signed_form(request: Request) -> dict[str, str] | None:
    """The form fields if Twilio signed this request with our auth token, else None."""
    from twilio.request_validator import RequestValidator  # the Twilio SDK is heavy: on first use

    settings: Settings = request.app.state.settings
    token = settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature", "")
    if not token or not signature:
        return None
    form = await request.form()
    params = {k: str(v) for k, v in form.multi_items()}
    query = request.url.query
    url = settings.public_url(request.url.path + (f"?{query}" if query else ""))
    if not RequestValidator(token).validate(url, params, signature):
        log.warning("SMS webhook %s: bad X-Twilio-Signature from %s", request.url.path, request.client)
        return None
    if params.get("AccountSid") != settings.twilio_account_sid:
        return None
    return params


@router.post(INBOUND)
async def twilio_inbound(request: Request) -> Response:
    params = await _signed_form(request)
    if params is None:
        return Response("forbidden", status_code=403, media_type="text/plain")
    sid = params.get("MessageSid", "")
    if not sid or len(sid) > 64:
        return Response("bad request", status_code=400, media_type="text/plain")
    settings: Settings = request.app.state.settings

    handler = _handler(request)

    def work() -> Outcome:
        with session_scope(settings) as session:
            return receive(
                session,
                settings,
                handler,
                provider="twilio",
                provider_id=sid,
                sender=params.get("From", ""),
                body=params.get("Body", ""),
            )

    outcome = await run_in_threadpool(work)
    log.info("SMS reply %s from %s: %s", sid, params.get("From", ""), outcome.code)
    if outcome.code == "replay":
        return Response("replayed", status_code=409, media_type="text/plain")
    if outcome.code == "unknown_sender":
        # A stranger gets no answer: each reply is a paid SMS (as on the Aliyun path).
        return twiml("")
    return twiml(outcome.reply)


@router.post(STATUS)
async def twilio_status(request: Request) -> Response:
    params = await _signed_form(request)
    if params is None:
        return Response("forbidden", status_code=403, media_type="text/plain")
    settings: Settings = request.app.state.settings
    raw_id = request.query_params.get("m", "")
    message_id = digits_int(raw_id)
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""

    def work() -> bool:
        with session_scope(settings) as session:
            msg = apply_status_callback(
                session, message_id, params.get("MessageSid", ""), status, params.get("ErrorCode", "")
            )
            session.commit()
            return msg is not None

    found = await run_in_threadpool(work)
    return Response(status_code=200 if found else 404)


# Aliyun's HTTP batch push of replies (上行短信 SmsUp), as documented at
# https://help.aliyun.com/zh/sms/developer-reference/smsup-http (and the API definition
# https://help.aliyun.com/document_detail/414223.htm): a JSON array of objects with phone_number,
# send_time ("2017-09-01 00:00:00"), content, sign_name, dest_code and sequence_id (a number, or
# its digits as a string); the answer is {"code": 0, "msg": "接收成功"}, any non-200 is pushed again.
ALIYUN_FIELDS = frozenset({"phone_number", "send_time", "content", "sign_name", "dest_code", "sequence_id"})
ALIYUN_REQUIRED = ALIYUN_FIELDS - {"sign_name"}  # the newer page leaves sign_name out
_MAINLAND_MOBILE = re.compile(r"(?:\+?86)?1[3-9][0-9]{9}")
_SEND_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}|[0-9]{14}")
_DIGITS = re.compile(r"[0-9]{1,20}")
MAX_REPLY_CHARS = 500  # a few SMS segments; an outlet's reply is one line
MAX_PUSH_BYTES = 256_000
MAX_PUSH_ITEMS = 100


@dataclass(frozen=True)
class AliyunReply:
    sequence_id: str
    phone_number: str
    content: str


def parse_aliyun_reply(item: object, sign_name: str) -> AliyunReply | str:
    """One pushed reply checked against the documented format, or why it is refused."""
    if not isinstance(item, dict):
        return "not an object"
    keys = set(item)
    if not ALIYUN_REQUIRED <= keys or not keys <= ALIYUN_FIELDS:
        return f"fields {sorted(str(k)[:32] for k in keys)[:10]} are not SmsUp's"
    seq, number, content = item["sequence_id"], item["phone_number"], item["content"]
    if isinstance(seq, bool) or not isinstance(seq, int | str) or not _DIGITS.fullmatch(str(seq)):
        return "sequence_id is not a number"
    if not isinstance(number, str) or not _MAINLAND_MOBILE.fullmatch(number):
        return "phone_number is not a mainland mobile number"
    if not isinstance(content, str) or not content.strip() or len(content) > MAX_REPLY_CHARS:
        return "content is empty or too long"
    if not isinstance(item["send_time"], str) or not _SEND_TIME.fullmatch(item["send_time"]):
        return "send_time is not a time"
    dest = item["dest_code"]
    if isinstance(dest, bool) or not isinstance(dest, int | str) or not _DIGITS.fullmatch(str(dest)):
        return "dest_code is not an extension number"
    sign = item.get("sign_name", "")
    if not isinstance(sign, str) or (sign and sign_name and sign != sign_name):
        return "sign_name is not ours"  # a reply to another sender's SMS
    return AliyunReply(str(seq), number, content)


def _masked(number: str) -> str:
    return number[:3] + "****" + number[-4:] if len(number) > 7 else "****"


def _aliyun_source_ok(settings: Settings, host: str) -> bool:
    if not settings.aliyun_inbound_sources:
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(net, strict=False) for net in settings.aliyun_inbound_sources)


def aliyun_token_ok(settings: Settings, given: str) -> bool:
    """The push URL's token is the current one, or the previous one during a rotation."""
    if not settings.aliyun_inbound_token or not given:
        return False  # no current token configured: the webhook is off
    valid = [t for t in (settings.aliyun_inbound_token, settings.aliyun_inbound_token_previous) if t]
    # Every token is compared (no early exit) so the time taken says nothing about which matched.
    matches = [hmac.compare_digest(t.encode(), given.encode()) for t in valid]
    if any(matches) and not matches[0]:
        log.warning("Aliyun push with the previous token: point Aliyun's console at the new URL")
    return any(matches)


@router.post(ALIYUN_INBOUND)
async def aliyun_inbound(request: Request) -> Response:
    """Aliyun's HTTP push of replies (上行短信, SmsUp): a JSON list of messages.

    Aliyun does not sign these pushes and its console takes only a URL (no header can carry a
    secret), so the URL carries a secret token (two are valid while it is rotated), optionally
    from Aliyun's addresses only. Each reply must have the documented fields and come from a
    number registered for an outlet; anything else is logged and dropped, with no answer (a
    stranger's text costs nothing to ignore, a reply would cost). Each reply's ``sequence_id``
    is its id (a replay changes nothing). Answers go out as SMS through the outbox."""
    settings: Settings = request.app.state.settings
    handler = _handler(request)
    host = request.client.host if request.client else ""
    if not _aliyun_source_ok(settings, host):
        log.warning("Aliyun push refused: %s is not in aliyun_inbound_sources", host)
        return Response(status_code=403)
    if not aliyun_token_ok(settings, request.query_params.get("token", "")):
        log.warning("Aliyun push refused: no valid token (from %s)", host)
        return Response(status_code=403)
    # Bounded to MAX_PUSH_BYTES by the web console's request gate, declared length or not.
    body = await request.body()
    try:
        items = json.loads(body)
    except ValueError:
        return JSONResponse({"code": 1, "msg": "not JSON"}, status_code=400)
    if not isinstance(items, list):
        return JSONResponse({"code": 1, "msg": "not a JSON array"}, status_code=400)
    replies: list[AliyunReply] = []
    for item in items[:MAX_PUSH_ITEMS]:
        parsed = parse_aliyun_reply(item, settings.aliyun_sign_name)
        if isinstance(parsed, str):
            log.warning("Aliyun push: reply refused (%s)", parsed)
        else:
            replies.append(parsed)

    def work() -> int:
        handled = 0
        for reply in replies:
            provider_id = f"aliyun:{reply.sequence_id}"[:64]
            number = phone.normalize(reply.phone_number, settings.default_region, settings.default_area_code)
            with session_scope(settings) as session:
                registered = bool(number) and bool(outlets_by_sms_number(session, settings, number or ""))
            # A resident's unsubscribe or rating is taken from any number (the order domain
            # finds the sender's order); anything else from a stranger is dropped unanswered.
            if not registered and not is_resident_reply(reply.content):
                log.warning(
                    "Aliyun push: SMS %s from unregistered number %s dropped",
                    provider_id,
                    _masked(reply.phone_number),
                )
                continue
            with session_scope(settings) as session:
                outcome = receive(
                    session,
                    settings,
                    handler,
                    provider="aliyun",
                    provider_id=provider_id,
                    sender=reply.phone_number,
                    body=reply.content,
                )
            handled += 1
            if outcome.code in ("replay", "unknown_sender") or not outcome.reply:
                continue
            with session_scope(settings) as session:
                enqueue_sms(
                    session,
                    reply.phone_number,
                    outcome.reply,
                    idempotency_key=f"reply:{provider_id}",
                    order_id=outcome.order_id,
                )
                session.commit()
        return handled

    handled = await run_in_threadpool(work)
    log.info("Aliyun push: %d of %d replies handled", handled, len(items))
    return JSONResponse({"code": 0, "msg": "接收成功"})
