"""Local stand-ins that speak Twilio's and Aliyun's SMS APIs, for tests and the demo.

Twilio's and Aliyun's clouds cannot be reached from here; the real SDKs are pointed at these
servers instead (``CALLCENTER_TWILIO_API_BASE``, ``CALLCENTER_ALIYUN_ENDPOINT``). They check the
credentials the way the real APIs do (HTTP Basic with the account SID and auth token; Aliyun's
ACS3-HMAC-SHA256 signature), answer with the same JSON resources and error bodies, post status
callbacks signed with ``X-Twilio-Signature``, and can play an outage (``down``/``errors``).

Each server runs uvicorn on its own thread, so synchronous tests, asyncio tests and the demo can
all use it: ``with FakeTwilio() as tw: ...``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import quote, urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # Aliyun's dates are China's


class _ThreadServer:
    """uvicorn on a thread of its own, on a fixed or free loopback port (restartable)."""

    def __init__(self, app, port: int = 0) -> None:
        self.app = app
        self.port = port or _free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name=f"fake-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"stand-in server did not start on {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rfc2822(dt: datetime) -> str:
    return format_datetime(dt, usegmt=True)


def _parse_when(value: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@dataclass
class Sent:
    """A message as the stand-in received it."""

    sid: str
    to: str
    sender: str
    body: str
    status_callback: str
    created: datetime
    status: str = "queued"
    extra: dict = field(default_factory=dict)


class FakeTwilio:
    """Twilio's Messages API (2010-04-01) on loopback."""

    API = "2010-04-01"

    def __init__(self, port: int = 0, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.messages: list[Sent] = []
        self.requests = 0  # create requests received, answered or not
        self.errors = 0  # >0: answer that many creates with 500 (then work again)
        self.error_status = 500
        self.deliver_callbacks = True
        self.callback_delay = 0.05
        self.response_delay = 0.0  # accept the message, then answer this much later (a crash window)
        # A remote provider's latency: each create is held this long before the message is taken
        # (its ``created`` is then), as the request's trip to a distant API would delay it.
        self.latency = 0.0
        self.callback_results: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route(f"/{self.API}/Accounts/{{sid}}/Messages.json", self._messages, methods=["GET", "POST"]),
                Route(f"/{self.API}/Accounts/{{sid}}/Messages/{{msid}}.json", self._message, methods=["GET"]),
            ]
        )
        self._srv = _ThreadServer(app, port)

    # --- lifecycle ---
    @property
    def port(self) -> int:
        return self._srv.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeTwilio:
        self._srv.start()
        return self

    def stop(self) -> None:
        self._srv.stop()

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def settings_env(self) -> dict[str, str]:
        """What the app needs to send through this stand-in (as ``CALLCENTER_*`` variables)."""
        return {
            "CALLCENTER_SMS_PROVIDER": "twilio",
            "CALLCENTER_TWILIO_ACCOUNT_SID": self.account_sid,
            "CALLCENTER_TWILIO_AUTH_TOKEN": self.auth_token,
            "CALLCENTER_TWILIO_API_BASE": self.base_url,
            "CALLCENTER_SMS_FROM": "+15005550006",
        }

    def to(self, number: str) -> list[Sent]:
        return [m for m in self.messages if m.to == number]

    # --- the API ---
    @staticmethod
    def _error(status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status_code=status,
        )

    def _authorized(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return False
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(pw, self.auth_token)

    def _resource(self, m: Sent) -> dict:
        uri = f"/{self.API}/Accounts/{self.account_sid}/Messages/{m.sid}.json"
        ucs2 = any(ord(c) > 127 for c in m.body)
        per = 70 if ucs2 else 160
        segs = 1 if len(m.body) <= per else -(-len(m.body) // (67 if ucs2 else 153))
        return {
            "account_sid": self.account_sid,
            "api_version": self.API,
            "body": m.body,
            "date_created": _rfc2822(m.created),
            "date_sent": _rfc2822(m.created) if m.status != "queued" else None,
            "date_updated": _rfc2822(m.created),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": m.sender,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(segs),
            "price": None,
            "price_unit": "USD",
            "sid": m.sid,
            "status": m.status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": m.to,
            "uri": uri,
        }

    async def _messages(self, request: Request) -> Response:
        if request.path_params["sid"] != self.account_sid or not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        if request.method == "GET":
            return self._list(request)
        form = await request.form()
        if self.latency:
            await asyncio.sleep(self.latency)
        with self._lock:
            self.requests += 1
            if self.errors > 0:
                self.errors -= 1
                return self._error(self.error_status, 20500, "Internal Server Error")
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not str(to).startswith("+") or not str(to)[1:].isdigit():
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not form.get("MessagingServiceSid"):
            return self._error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return self._error(400, 21602, "Message body is required.")
        if len(str(body)) > 1600:
            return self._error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        m = Sent(
            sid="SM" + uuid.uuid4().hex,
            to=str(to),
            sender=str(sender),
            body=str(body),
            status_callback=str(form.get("StatusCallback", "")),
            created=datetime.now(UTC),
        )
        with self._lock:
            self.messages.append(m)
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        if m.status_callback and self.deliver_callbacks:
            threading.Thread(target=self._callbacks, args=(m,), daemon=True).start()
        return JSONResponse(self._resource(m), status_code=201)

    def _list(self, request: Request) -> Response:
        """GET Messages.json as Twilio documents it ("Read multiple Message resources",
        https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources):
        filters ``To``, ``From`` and ``DateSent`` (``DateSent``, ``DateSent<``, ``DateSent>``: a
        GMT date, YYYY-MM-DD, the day inclusive); newest first; paged by ``PageSize`` (default
        50, at most 1,000) and ``Page``. ``DateSent`` is empty until a message leaves Twilio (the
        documented create response is ``"status": "queued", "date_sent": null``), so a DateSent
        filter never matches a message still queued."""
        q = request.query_params

        def day(key: str):
            when = _parse_when(q.get(key, "")) if q.get(key) else None
            return when.date() if when else None

        on, before, after = day("DateSent"), day("DateSent<"), day("DateSent>")
        dated = on or before or after

        def sent_on(m: Sent):
            return m.created.date() if m.status not in ("queued", "accepted") else None

        found = [
            m
            for m in self.messages
            if (not q.get("To") or m.to == q["To"])
            and (not q.get("From") or m.sender == q["From"])
            and (
                not dated
                or (
                    (d := sent_on(m)) is not None
                    and (on is None or d == on)
                    and (before is None or d <= before)
                    and (after is None or d >= after)
                )
            )
        ]
        found.sort(key=lambda m: m.created, reverse=True)
        size = max(1, min(int(q.get("PageSize", "50")), 1000))
        page = max(0, int(q.get("Page", "0")))
        chunk = found[page * size : (page + 1) * size]
        uri = f"/{self.API}/Accounts/{self.account_sid}/Messages.json"
        keep = urlencode({k: v for k, v in q.items() if k not in ("Page", "PageSize", "PageToken")})

        def page_uri(n: int) -> str:
            return f"{uri}?{keep + '&' if keep else ''}PageSize={size}&Page={n}"

        more = (page + 1) * size < len(found)
        return JSONResponse(
            {
                "messages": [self._resource(m) for m in chunk],
                "end": page * size + len(chunk) - 1,
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) + f"&PageToken=PA{page + 1}" if more else None,
                "page": page,
                "page_size": size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": page * size,
                "uri": page_uri(page),
            }
        )

    async def _message(self, request: Request) -> Response:
        if request.path_params["sid"] != self.account_sid or not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        for m in self.messages:
            if m.sid == request.path_params["msid"]:
                return JSONResponse(self._resource(m))
        return self._error(404, 20404, "The requested resource was not found")

    # --- Twilio calling the app ---
    def sign(self, url: str, params: dict[str, str]) -> str:
        from twilio.request_validator import RequestValidator  # the SDK only when Twilio is tested

        return RequestValidator(self.auth_token).compute_signature(url, params)

    def post_signed(self, url: str, params: dict[str, str], signature: str | None = None) -> httpx.Response:
        sig = self.sign(url, params) if signature is None else signature
        return httpx.post(
            url,
            data=params,
            headers={"X-Twilio-Signature": sig, "User-Agent": "TwilioProxy/1.1"},
            timeout=10,
            trust_env=False,
        )

    def _callbacks(self, m: Sent) -> None:
        for status in ("sent", "delivered"):
            time.sleep(self.callback_delay)
            m.status = status
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": self.API,
                "From": m.sender,
                "MessageSid": m.sid,
                "MessageStatus": status,
                "SmsSid": m.sid,
                "SmsStatus": status,
                "To": m.to,
            }
            try:
                r = self.post_signed(m.status_callback, params)
                self.callback_results.append((status, r.status_code))
            except httpx.HTTPError as exc:
                self.callback_results.append((status, -1))
                del exc

    def inbound(
        self,
        webhook_url: str,
        sender: str,
        body: str,
        to: str = "+15005550006",
        sid: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """An SMS reply from ``sender``, posted to the app's webhook as Twilio does."""
        sid = sid or "SM" + uuid.uuid4().hex
        params = {
            "ToCountry": "US",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "CN",
            "To": to,
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": self.API,
        }
        return self.post_signed(webhook_url, params, signature)


# --- Aliyun SMS ---------------------------------------------------------------------------------


def _pct(value: str) -> str:
    return quote(value, safe="-_.~")


class FakeAliyun:
    """Aliyun SMS (dysmsapi 2017-05-25: SendSms, QuerySendDetails) checking ACS3-HMAC-SHA256,
    and the push of outlets' replies to the application's webhook (SmsUp)."""

    def __init__(self, port: int = 0, key_id: str = "LTAI-test", key_secret: str | None = None) -> None:
        self.key_id = key_id
        self.key_secret = key_secret or secrets.token_hex(16)
        self.messages: list[dict] = []
        # When a message is sent (a test sets it to play a send just after midnight in China)
        self.clock = lambda: datetime.now(UTC)
        self.errors = 0
        self.response_delay = 0.0  # keep the message, then answer this much later
        self.requests = 0
        self._sequence = 1_000_000
        self._srv = _ThreadServer(Starlette(routes=[Route("/", self._api, methods=["GET", "POST"])]), port)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._srv.port}"

    def start(self) -> FakeAliyun:
        self._srv.start()
        return self

    def stop(self) -> None:
        self._srv.stop()

    def __enter__(self) -> FakeAliyun:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def up_message(self, phone_number: str, content: str, *, sign_name: str = "安宁社区") -> dict:
        """One reply as Aliyun's HTTP push of replies (SmsUp) carries it: the fields of
        https://help.aliyun.com/zh/sms/developer-reference/smsup-http, a fresh sequence_id."""
        self._sequence += 1
        return {
            "phone_number": phone_number,
            "send_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "content": content,
            "sign_name": sign_name,
            "dest_code": "1234",
            "sequence_id": self._sequence,
        }

    def push_replies(self, url: str, items: list) -> httpx.Response:
        """POST replies to the push URL as Aliyun does: one JSON array, UTF-8, no signature."""
        return httpx.post(
            url,
            content=json.dumps(items, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=10,
            trust_env=False,
        )

    def settings_env(self) -> dict[str, str]:
        return {
            "CALLCENTER_SMS_PROVIDER": "aliyun",
            "CALLCENTER_ALIYUN_ACCESS_KEY_ID": self.key_id,
            "CALLCENTER_ALIYUN_ACCESS_KEY_SECRET": self.key_secret,
            "CALLCENTER_ALIYUN_ENDPOINT": self.endpoint,
            "CALLCENTER_ALIYUN_PROTOCOL": "http",
            "CALLCENTER_ALIYUN_SIGN_NAME": "安宁社区",
            "CALLCENTER_ALIYUN_TEMPLATE_CODE": "SMS_000001",
        }

    def _signature_ok(self, request: Request, body: bytes) -> bool:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("ACS3-HMAC-SHA256 "):
            return False
        fields = dict(p.split("=", 1) for p in auth[len("ACS3-HMAC-SHA256 ") :].split(",") if "=" in p)
        if fields.get("Credential") != self.key_id:
            return False
        signed = fields.get("SignedHeaders", "").split(";")
        query = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(request.query_params.multi_items()))
        headers = "".join(f"{h}:{request.headers.get(h, '').strip()}\n" for h in signed)
        payload = request.headers.get("x-acs-content-sha256") or hashlib.sha256(body).hexdigest()
        if payload != hashlib.sha256(body).hexdigest():
            return False
        canonical = "\n".join(
            [request.method, request.url.path or "/", query, headers, ";".join(signed), payload]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(self.key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, fields.get("Signature", ""))

    @staticmethod
    def _answer(status: int, **body) -> JSONResponse:
        body.setdefault("RequestId", str(uuid.uuid4()).upper())
        return JSONResponse(body, status_code=status)

    async def _api(self, request: Request) -> Response:
        body = await request.body()
        if not self._signature_ok(request, body):
            return self._answer(
                400, Code="IncompleteSignature", Message="The request signature does not conform."
            )
        action = request.headers.get("x-acs-action", "")
        q = request.query_params
        if action == "SendSms":
            self.requests += 1
            if self.errors > 0:
                self.errors -= 1
                return self._answer(503, Code="ServiceUnavailable", Message="The request has failed.")
            number = q.get("PhoneNumbers", "")
            if not (number.isdigit() and len(number) == 11):
                return self._answer(200, Code="isv.MOBILE_NUMBER_ILLEGAL", Message="非法手机号")
            params = json.loads(q.get("TemplateParam") or "{}")
            biz = f"{int(time.time() * 1000)}^{len(self.messages)}"
            sent = self.clock().astimezone(CHINA)
            self.messages.append(
                {
                    "phone": number,
                    "sign": q.get("SignName", ""),
                    "template": q.get("TemplateCode", ""),
                    "params": params,
                    "out_id": q.get("OutId", ""),
                    "biz_id": biz,
                    "date": sent.strftime("%Y%m%d"),  # the send date in China
                    "sent": sent.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            if self.response_delay:
                await asyncio.sleep(self.response_delay)
            return self._answer(200, Code="OK", Message="OK", BizId=biz)
        if action == "QuerySendDetails":
            return self._query_send_details(q)
        return self._answer(404, Code="InvalidAction.NotFound", Message=f"unknown action {action}")

    def _query_send_details(self, q) -> JSONResponse:
        """QuerySendDetails as documented (https://help.aliyun.com/document_detail/419277.html):
        one ``PhoneNumber``, one ``SendDate`` (yyyyMMdd, China's date of the send, the last 30
        days), an optional ``BizId``, ``PageSize`` 1-50 and ``CurrentPage``; ``TotalCount`` (a
        string in the documented sample) counts every record of the query, the page carries at
        most ``PageSize`` of them."""
        try:
            size, page = int(q.get("PageSize", "")), int(q.get("CurrentPage", "1"))
        except ValueError:
            size = page = 0
        if not q.get("PhoneNumber") or not q.get("SendDate") or not 1 <= size <= 50 or page < 1:
            return self._answer(200, Code="isv.INVALID_PARAMETERS", Message="参数异常")
        found = [
            m
            for m in self.messages
            if m["phone"] == q["PhoneNumber"]
            and m["date"] == q["SendDate"]
            and (not q.get("BizId") or m["biz_id"] == q["BizId"])
        ]
        dtos = [
            {
                "PhoneNum": m["phone"],
                "SendStatus": 3,
                "ErrCode": "DELIVERED",
                "TemplateCode": m["template"],
                "Content": f"【{m['sign']}】{m['params'].get('content', '')}",
                "SendDate": m["sent"],
                "ReceiveDate": m["sent"],
                "OutId": m["out_id"],
            }
            for m in found[(page - 1) * size : page * size]
        ]
        return self._answer(
            200,
            Code="OK",
            Message="OK",
            TotalCount=str(len(found)),
            SmsSendDetailDTOs={"SmsSendDetailDTO": dtos},
        )


__all__ = ["FakeAliyun", "FakeTwilio", "Sent", "urlencode"]
