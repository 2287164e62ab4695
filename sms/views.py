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
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from callcenter.config import Settings
from callcenter.database import session_scope
from sms.inbound import InboundSms, Outcome, ReplyHandler, receive
from sms.service import apply_status_callback, enqueue_sms

log = logging.getLogger(__name__)

router = APIRouter()

INBOUND = "/sms/twilio/inbound"
STATUS = "/sms/twilio/status"
ALIYUN_INBOUND = "/sms/aliyun/inbound"
ROUTES = frozenset({INBOUND, STATUS, ALIYUN_INBOUND})

MAX_FORM_BYTES = 16_384


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
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
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
    message_id = int(raw_id) if raw_id.isdigit() else None
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


@router.post(ALIYUN_INBOUND)
async def aliyun_inbound(request: Request) -> Response:
    """Aliyun's HTTP push of replies (上行短信, SmsUpReport): a JSON list of messages.

    Aliyun does not sign these pushes, so the URL configured in its console carries a secret
    token. Each reply's ``sequence_id`` is its id (a replay changes nothing). There is no reply
    channel in the response: answers go out as SMS through the outbox, and only to numbers
    registered for an outlet (a stranger's text costs nothing to ignore, a reply would cost)."""
    settings: Settings = request.app.state.settings
    handler = _handler(request)
    token = settings.aliyun_inbound_token
    given = request.query_params.get("token", "")
    if not token or not hmac.compare_digest(token.encode(), given.encode()):
        return Response(status_code=403)
    if int(request.headers.get("content-length") or 0) > 256_000:
        return Response(status_code=413)
    try:
        items = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"code": 1, "msg": "not JSON"}, status_code=400)
    if not isinstance(items, list):
        items = [items]

    def work() -> int:
        handled = 0
        for item in items[:100]:
            if not isinstance(item, dict) or "sequence_id" not in item:
                continue
            provider_id = f"aliyun:{item['sequence_id']}"[:64]
            sender, content = str(item.get("phone_number", "")), str(item.get("content", ""))
            with session_scope(settings) as session:
                outcome = receive(
                    session,
                    settings,
                    handler,
                    provider="aliyun",
                    provider_id=provider_id,
                    sender=sender,
                    body=content,
                )
            handled += 1
            if outcome.code in ("replay", "unknown_sender") or not outcome.reply:
                continue
            with session_scope(settings) as session:
                enqueue_sms(
                    session,
                    sender,
                    outcome.reply,
                    idempotency_key=f"reply:{provider_id}",
                    order_id=outcome.order_id,
                )
                session.commit()
        return handled

    handled = await run_in_threadpool(work)
    log.info("Aliyun push: %d replies", handled)
    return JSONResponse({"code": 0, "msg": "成功"})
