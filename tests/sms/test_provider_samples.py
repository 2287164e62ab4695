"""The providers' lookups read the response bodies the providers' documentation shows.

The bodies below follow the documented samples field for field (Twilio: "Read multiple Message
resources", https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources,
with the create response's ``"status": "queued", "date_sent": null`` for a message not yet
sent; Aliyun: QuerySendDetails, https://help.aliyun.com/document_detail/419277.html, whose sample
gives ``TotalCount`` as a string). A bare server answers them to the real SDKs, so a change in how
we read a provider's answer is caught without our own stand-ins' help."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from callcenter.config import CHINA_TZ, Settings
from sms.providers import AliyunProvider, Outgoing, TwilioProvider
from sms.testing import _ThreadServer

ACCOUNT = "AC" + "0" * 32
BODY = "【安宁社区热线】工单GD20261206-00001：楼道灯不亮，回复“签收 1234”"


def twilio_list_sample(created: datetime) -> dict:
    uri = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?To=%2B8613900000001&From=%2B15005550006&PageSize=50"
    message = {
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": BODY,
        "date_created": created.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "date_sent": None,
        "date_updated": created.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": "+15005550006",
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": "SM" + "1" * 32,
        "status": "queued",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/SM{'1' * 32}/Media.json"},
        "to": "+8613900000001",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/SM{'1' * 32}.json",
    }
    return {
        "end": 0,
        "first_page_uri": uri + "&Page=0",
        "next_page_uri": None,
        "page": 0,
        "page_size": 50,
        "previous_page_uri": None,
        "messages": [message],
        "start": 0,
        "uri": uri + "&Page=0",
    }


ALIYUN_SAMPLE = {
    "Code": "OK",
    "Message": "OK",
    "RequestId": "819BE656-D2E0-4858-8B21-B2E477085AAF",
    "TotalCount": "1",
    "SmsSendDetailDTOs": {
        "SmsSendDetailDTO": [
            {
                "ErrCode": "DELIVERED",
                "TemplateCode": "SMS_000001",
                "OutId": "cc42",
                "ReceiveDate": "2026-12-06 01:30:13",
                "SendDate": "2026-12-06 01:30:10",
                "PhoneNum": "13900000001",
                "Content": "【安宁社区】" + BODY,
                "SendStatus": 3,
            }
        ]
    },
}


class SampleServer:
    def __init__(self, body) -> None:
        self.body = body
        self.queries: list[dict] = []

        async def answer(request: Request) -> JSONResponse:
            self.queries.append(dict(request.query_params))
            return JSONResponse(self.body)

        routes = [Route("/{path:path}", answer, methods=["GET", "POST"])]
        self.srv = _ThreadServer(Starlette(routes=routes), 0)

    def __enter__(self) -> SampleServer:
        self.srv.start()
        return self

    def __exit__(self, *exc) -> None:
        self.srv.stop()


def test_twilio_lookup_reads_the_documented_list_with_a_queued_message(tmp_path):
    created = datetime.now(UTC).replace(microsecond=0)
    with SampleServer(twilio_list_sample(created)) as server:
        settings = Settings(
            data_dir=tmp_path,
            _env_file=None,
            sms_provider="twilio",
            twilio_account_sid=ACCOUNT,
            twilio_auth_token="t" * 32,
            twilio_api_base=f"http://127.0.0.1:{server.srv.port}",
            sms_from="+15005550006",
        )
        out = Outgoing(7, "+8613900000001", BODY, "k", created - timedelta(seconds=30))
        assert TwilioProvider(settings).lookup(out) == ["SM" + "1" * 32]
        # No DateSent filter: it would not match a queued message.
        assert server.queries and not any(k.startswith("DateSent") for q in server.queries for k in q)
        # Another body, or a message older than the row (less the clock skew), is not ours.
        assert TwilioProvider(settings).lookup(Outgoing(7, out.to, "别的", "k", out.created_at)) == []
        old = Outgoing(7, out.to, BODY, "k", created + timedelta(hours=1))
        assert TwilioProvider(settings).lookup(old) == []


def test_aliyun_lookup_reads_the_documented_details_in_china_dates(tmp_path):
    with SampleServer(ALIYUN_SAMPLE) as server:
        settings = Settings(
            data_dir=tmp_path,
            _env_file=None,
            sms_provider="aliyun",
            aliyun_access_key_id="LTAI-test",
            aliyun_access_key_secret="s" * 32,
            aliyun_endpoint=f"127.0.0.1:{server.srv.port}",
            aliyun_protocol="http",
            aliyun_sign_name="安宁社区",
            aliyun_template_code="SMS_000001",
        )
        # Written yesterday at 01:30 in China: 17:30 UTC the day before that.
        yesterday = datetime.now(CHINA_TZ).date() - timedelta(days=1)
        written = datetime(yesterday.year, yesterday.month, yesterday.day, 1, 30, tzinfo=CHINA_TZ)
        out = Outgoing(42, "+8613900000001", BODY, "k", written.astimezone(UTC))
        assert AliyunProvider(settings).lookup(out) == ["cc42"]
        first = server.queries[0]
        day = yesterday.strftime("%Y%m%d")
        assert first["SendDate"] == day and first["PageSize"] == "50" and first["CurrentPage"] == "1"
        assert first["PhoneNumber"] == "13900000001"
        # Not ours: every China date from the row's to today is read (within Aliyun's 30 days).
        server.queries.clear()
        assert AliyunProvider(settings).lookup(Outgoing(43, out.to, BODY, "k", out.created_at)) == []
        dates = [q["SendDate"] for q in server.queries]
        today = datetime.now(CHINA_TZ).strftime("%Y%m%d")
        assert dates[0] == day and dates[-1] in (today, day) and dates == sorted(dates)
