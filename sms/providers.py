"""SMS providers behind one interface: Twilio (its SDK), Aliyun SMS (its SDK) and a log provider.

Providers are synchronous (both SDKs are); the outbox worker calls them on a worker thread.
``send`` returns the provider's id for the message; ``lookup`` asks the provider whether it
already has a message (after a crash between the provider's answer and our commit), so a message
is never sent twice.
"""

from __future__ import annotations

import json
import logging
import socket
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from callcenter.config import CHINA_TZ, Settings

log = logging.getLogger(__name__)

# A crash recovery's look at the provider: how many of the number's latest messages, and how far
# the provider's clock may differ from ours.
LOOKUP_LIMIT = 200
CLOCK_SKEW = timedelta(minutes=5)
ALIYUN_PAGE_SIZE = 50  # QuerySendDetails' largest page
ALIYUN_MAX_PAGES = 20  # a thousand messages to one number in a day: something else is wrong


@dataclass(frozen=True)
class Outgoing:
    id: int
    to: str  # E.164
    body: str
    idempotency_key: str
    created_at: datetime
    template_code: str = ""  # a registered domestic template (Aliyun), with its parameters
    template_params: dict[str, str] | None = None


class ProviderError(Exception):
    """The provider refused or could not be reached. ``permanent``: retrying cannot help.
    ``maybe_sent``: the request may have reached the provider (no answer in time, or the
    connection dropped after it was sent): the provider is asked before sending again."""

    def __init__(self, message: str, permanent: bool = False, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.maybe_sent = maybe_sent


def _causes(exc: BaseException):
    """``exc`` and what it wraps: chained exceptions, urllib3's ``reason``, Tea's
    ``inner_exception``, exceptions passed as arguments (requests wraps urllib3's that way)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        more = [e.__cause__, e.__context__, getattr(e, "reason", None), getattr(e, "inner_exception", None)]
        more += list(e.args)
        todo += [m for m in more if isinstance(m, BaseException)]


def never_reached(exc: BaseException) -> bool:
    """The request cannot have reached the provider: no connection was made (refused, no route,
    no name, the connect timed out). Anything else without an HTTP answer may have reached it."""
    from urllib3.exceptions import ConnectTimeoutError  # NewConnectionError is one too

    return any(
        isinstance(e, ConnectTimeoutError | ConnectionRefusedError | socket.gaierror) for e in _causes(exc)
    )


class SmsProvider(Protocol):
    name: str

    def send(self, msg: Outgoing) -> str: ...

    def lookup(self, msg: Outgoing) -> list[str]: ...


class LogProvider:
    """The demo's provider: writes the message to the log (and keeps it, for the demo page)."""

    name = "log"

    KEEP = 200  # the demo page shows the latest; older ones are dropped, not kept forever

    def __init__(self) -> None:
        self.sent: deque[Outgoing] = deque(maxlen=self.KEEP)

    def send(self, msg: Outgoing) -> str:
        # Bodies carry residents' addresses: at DEBUG only.
        log.info("SMS %s to %s (%d characters)", msg.id, msg.to, len(msg.body))
        log.debug("SMS %s body: %s", msg.id, msg.body)
        self.sent.append(msg)
        return f"LOG{msg.id}"

    def lookup(self, msg: Outgoing) -> list[str]:
        return []  # nothing leaves the machine: sending again is harmless


# --- Twilio ---------------------------------------------------------------------------------


def _twilio_http_client(api_base: str, timeout: float):
    """Twilio's own HTTP client, sending to ``api_base`` instead of https://api.twilio.com.

    The SDK builds absolute URLs; the documented way to change how it talks HTTP is a subclass
    of ``TwilioHttpClient`` overriding ``request``."""
    # A provider's SDK is loaded only when that provider is configured (each is heavy to import).
    from twilio.http.http_client import TwilioHttpClient

    base = urlsplit(api_base)

    class RebasedHttpClient(TwilioHttpClient):
        def request(self, method, url, *args, **kwargs):
            parts = urlsplit(url)
            url = urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))
            return super().request(method, url, *args, **kwargs)

    return RebasedHttpClient(timeout=timeout)


class TwilioProvider:
    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        # Loaded only when Twilio is the configured provider.
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.sms_from):
            raise ValueError(
                "Twilio needs CALLCENTER_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and CALLCENTER_SMS_FROM"
            )
        http = (
            _twilio_http_client(settings.twilio_api_base, settings.sms_timeout_s)
            if settings.twilio_api_base
            else TwilioHttpClient(timeout=settings.sms_timeout_s)
        )
        self.client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http)
        self.sender = settings.sms_from
        self.status_callback = settings.public_url("/sms/twilio/status")

    def send(self, msg: Outgoing) -> str:
        from twilio.base.exceptions import TwilioRestException  # Twilio configured

        try:
            created = self.client.messages.create(
                to=msg.to,
                from_=self.sender,
                body=msg.body,
                status_callback=f"{self.status_callback}?m={msg.id}",
            )
        except TwilioRestException as exc:
            # 400/404: a bad number or body (e.g. 21211, 21617); everything else may pass later.
            permanent = exc.status in (400, 404)
            raise ProviderError(f"twilio {exc.status} {exc.code}: {exc.msg}", permanent) from exc
        except Exception as exc:  # no HTTP answer: requests' ConnectionError, a timeout, the SDK's own
            if never_reached(exc):
                raise ProviderError(f"twilio unreachable: {type(exc).__name__}: {exc}") from exc
            raise ProviderError(
                f"twilio did not answer: {type(exc).__name__}: {exc}", maybe_sent=True
            ) from exc
        return created.sid

    def lookup(self, msg: Outgoing) -> list[str]:
        """Ids of the sender's messages to this number created since the row was written, with
        the same body.

        Twilio's list filters by To, From and DateSent only, and DateSent stays empty until the
        message leaves Twilio (its documented create response reads ``"status": "queued",
        "date_sent": null``): a DateSent filter would miss exactly the message a crash left
        queued. So the list is read by To and From (newest first, ``LOOKUP_LIMIT`` at most) and
        the creation time and body are compared here.
        https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
        """
        since = msg.created_at - CLOCK_SKEW
        try:
            found = self.client.messages.list(to=msg.to, from_=self.sender, limit=LOOKUP_LIMIT, page_size=50)
        except Exception as exc:
            raise ProviderError(f"twilio lookup failed: {exc}") from exc
        return [
            m.sid for m in found if m.body == msg.body and (m.date_created is None or m.date_created >= since)
        ]


# --- Aliyun ---------------------------------------------------------------------------------


class AliyunProvider:
    """Aliyun SMS (dysmsapi 2017-05-25). Domestic SMS goes out through an approved signature and
    template; the message text is the template's ``content`` parameter. ``OutId`` carries our
    message id, which is how ``lookup`` recognises a message the provider already has."""

    name = "aliyun"

    def __init__(self, settings: Settings) -> None:
        # Loaded only when Aliyun is the configured provider (its SDK is heavy to import).
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.models import Config

        if not (settings.aliyun_access_key_id and settings.aliyun_access_key_secret):
            raise ValueError("Aliyun needs CALLCENTER_ALIYUN_ACCESS_KEY_ID and _SECRET")
        config = Config(
            access_key_id=settings.aliyun_access_key_id,
            access_key_secret=settings.aliyun_access_key_secret,
            endpoint=settings.aliyun_endpoint,
            protocol=settings.aliyun_protocol,
            read_timeout=int(settings.sms_timeout_s * 1000),
            connect_timeout=5000,
        )
        self.client = Client(config)
        self.sign_name = settings.aliyun_sign_name
        self.template_code = settings.aliyun_template_code

    @staticmethod
    def _national(e164: str) -> str:
        return e164.removeprefix("+86")

    @staticmethod
    def out_id(msg: Outgoing) -> str:
        return f"cc{msg.id}"

    def send(self, msg: Outgoing) -> str:
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest  # Aliyun configured
        from alibabacloud_tea_util.models import RuntimeOptions

        req = SendSmsRequest(
            phone_numbers=self._national(msg.to),
            sign_name=self.sign_name,
            template_code=msg.template_code or self.template_code,
            template_param=json.dumps(
                msg.template_params if msg.template_code else {"content": msg.body}, ensure_ascii=False
            ),
            out_id=self.out_id(msg),
        )
        try:
            resp = self.client.send_sms_with_options(req, RuntimeOptions(autoretry=False))
        except Exception as exc:
            # The SDK raises for HTTP errors; 4xx with an isv.* code cannot pass on a retry.
            code = str(getattr(exc, "code", "") or "")
            status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
            if not status and not code and not never_reached(exc):
                raise ProviderError(f"aliyun did not answer: {exc}", maybe_sent=True) from exc
            permanent = code.startswith("isv.") and code != "isv.BUSINESS_LIMIT_CONTROL"
            raise ProviderError(f"aliyun {status} {code}: {exc}", permanent) from exc
        body = resp.body
        if body.code != "OK":
            permanent = body.code.startswith("isv.") and body.code != "isv.BUSINESS_LIMIT_CONTROL"
            raise ProviderError(f"aliyun {body.code}: {body.message}", permanent)
        return body.biz_id

    def lookup(self, msg: Outgoing) -> list[str]:
        """Our id (``OutId``) if Aliyun has the message.

        QuerySendDetails reads one number's records of one send date, ``SendDate`` (yyyyMMdd, the
        date in China, within the last 30 days), ``PageSize`` 1-50 records a page with
        ``CurrentPage``, and tells ``TotalCount``
        (https://help.aliyun.com/document_detail/419277.html). A row written at 23:59 may go out
        after midnight, and between 00:00 and 08:00 in China the UTC date is the day before: so
        every China date from the row's to today is read, each page by page."""
        from alibabacloud_dysmsapi20170525.models import QuerySendDetailsRequest  # Aliyun configured

        want = self.out_id(msg)
        first = msg.created_at.astimezone(CHINA_TZ).date()
        today = datetime.now(CHINA_TZ).date()
        days = [first + timedelta(days=n) for n in range(max(0, (today - first).days) + 1)][-30:]
        for day in days:
            seen = 0
            for page in range(1, ALIYUN_MAX_PAGES + 1):
                req = QuerySendDetailsRequest(
                    phone_number=self._national(msg.to),
                    send_date=day.strftime("%Y%m%d"),
                    page_size=ALIYUN_PAGE_SIZE,
                    current_page=page,
                )
                try:
                    resp = self.client.query_send_details(req)
                except Exception as exc:
                    raise ProviderError(f"aliyun lookup failed: {exc}") from exc
                if resp.body.code != "OK":
                    raise ProviderError(f"aliyun lookup failed: {resp.body.code}: {resp.body.message}")
                dtos = resp.body.sms_send_detail_dtos
                rows = (dtos.sms_send_detail_dto if dtos else None) or []
                hits = [d.out_id for d in rows if d.out_id == want]
                if hits:
                    return hits
                seen += len(rows)
                if not rows or seen >= int(resp.body.total_count or 0):
                    break
        return []


def make_provider(settings: Settings) -> SmsProvider:
    if settings.sms_provider == "twilio":
        return TwilioProvider(settings)
    if settings.sms_provider == "aliyun":
        return AliyunProvider(settings)
    if settings.sms_provider == "log":
        return LogProvider()
    raise ValueError(f"unknown SMS provider {settings.sms_provider!r}")
