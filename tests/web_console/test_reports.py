"""Reports pages, exports (audited), the statistics API (session or token), the daily mail."""

from __future__ import annotations

import asyncio
import email
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.callcontrol.callbacks import missed_callback_report
from callcenter.callcontrol.models import Callback
from callcenter.config import CHINA_TZ
from callcenter.database import session_scope
from callcenter.statistics.daily import DailyMailer
from callcenter.statistics.follower import StatsFollower

from .conftest import login

DAY = "2026-11-27"


@pytest.fixture
def stats(db, tmp_path):
    t0 = int(datetime(2026, 11, 27, 9, 0, tzinfo=CHINA_TZ).timestamp())
    lines = [
        f"{t0}|a1|hotline|NONE|DID|96345",
        f"{t0}|a1|hotline|NONE|ENTERQUEUE||13900000001|1",
        f"{t0 + 6}|a1|hotline|张丽|CONNECT|6|x|2",
        f"{t0 + 66}|a1|hotline|张丽|COMPLETECALLER|6|60|1",
        f"{t0 + 100}|a2|hotline|NONE|ENTERQUEUE||=1+2|1",  # a caller ID that would be a formula
        f"{t0 + 130}|a2|hotline|NONE|ABANDON|1|1|30",
    ]
    log = tmp_path / "queue_log"
    log.write_text("\n".join(lines) + "\n")
    from callcenter.calls.models import CallRecord

    with session_scope(db) as s:
        s.add(
            CallRecord(
                linkedid="a1",
                started_at=datetime.fromtimestamp(t0, UTC),
                source="12345",
                order_12345="GS2026112700001",
                outcome="answered",
                first_ring_s=2.5,
            )
        )
        s.commit()
    f = StatsFollower(db, path=log)
    while f.step():
        pass
    return db


def test_report_page_and_chart(client, stats):
    login(client, "super")
    r = client.get(f"/reports?start={DAY}&end={DAY}&by=hour")
    assert r.status_code == 200
    assert "<svg" in r.text and "接通率" in r.text and "接听 ÷ 呼入" in r.text  # tooltip definition
    assert 'data-key="answered_rate">50.0%' in r.text
    r = client.get(f"/reports?start={DAY}&end={DAY}&by=seat&lang=en")
    assert "张丽" in r.text and "Calls handled" in r.text
    # Garbage in the query: the default range, not an error page.
    assert client.get("/reports?start=<script>&by=nope").status_code == 200


def test_exports_are_audited(client, stats):
    login(client, "super")
    r = client.get(f"/reports/export?format=csv&start={DAY}&end={DAY}&by=queue")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("队列,呼入,接听,放弃")
    assert "hotline,2,1,1" in text
    r = client.get(f"/reports/export?format=xlsx&start={DAY}&end={DAY}&by=did")
    wb = load_workbook(io.BytesIO(r.content))
    report, calls = wb.worksheets
    rows = [r[:4] for r in report.iter_rows(min_row=2, values_only=True)]
    assert rows == [(None, 1, 0, 1), ("96345", 1, 1, 0), ("合计", 2, 1, 1)]  # a2 came without a DID line
    rows = list(calls.iter_rows(values_only=True))
    assert rows[0][-3:] == ("来源", "12345 工单号", "接听至首次振铃（秒）")
    assert [r[3] for r in rows[1:]] == ["13900000001", "'=1+2"]  # a formula stays text
    # The AMI call record of the same linkedid adds the source, the 12345 order number and the
    # seconds from the hotline answering to the first seat ringing.
    assert rows[1][-3:] == ("12345", "GS2026112700001", 2.5) and rows[2][-3:] == (None, None, None)
    assert client.get("/reports/export?format=pdf").status_code == 422
    with session_scope(stats) as s:
        entries = list(s.exec(select(AuditEntry).where(AuditEntry.action == "stats.export")))
    assert [(e.actor, e.detail["format"], e.target) for e in entries] == [
        ("super", "csv", f"{DAY}..{DAY}"),
        ("super", "xlsx", f"{DAY}..{DAY}"),
    ]


def test_api_by_session_and_token(client, stats):
    assert client.get("/api/stats/today").status_code == 401
    stats.stats_api_token = "display-platform-token-0123456789"
    r = client.get(
        f"/api/stats/report?start={DAY}&end={DAY}&by=queue",
        headers={"Authorization": "Bearer display-platform-token-0123456789"},
    )
    assert r.status_code == 200 and r.json()["total"]["offered"] == 2
    bad = client.get("/api/stats/today", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    # A token that is not ASCII is a wrong token, not a server error.
    odd = client.get("/api/stats/today", headers={"Authorization": "Bearer ü€".encode()})
    assert odd.status_code == 401
    login(client, "seat1001")
    assert client.get("/api/stats/today").status_code == 403
    login(client, "super")
    assert client.get(f"/api/stats/report?start={DAY}&end=2026-11-01").status_code == 422
    r = client.get(f"/api/stats/orders?start={DAY}&end={DAY}")
    assert r.status_code == 200 and "missing" in r.json()
    r = client.get(f"/api/stats/scorecard?start={DAY}&end={DAY}")
    assert r.status_code == 200 and r.json()[0]["seat"] == "1001"


def _missed_calls(settings) -> None:
    """Four calls abandoned on DAY (China time) called back after 1, 10 and 20 minutes and
    never, and one out-of-hours call: the 15-minute share is 2 of 4."""
    missed_at = datetime(2026, 11, 27, 10, 0, tzinfo=CHINA_TZ).astimezone(UTC)
    with session_scope(settings) as s:
        for i, minutes in enumerate((1, 10, 20, None)):
            s.add(
                Callback(
                    linkedid=f"m{i}",
                    phone=f"+86139000000{i:02d}",
                    queue="hotline",
                    kind="abandoned",
                    requested_at=missed_at,
                    first_dialled_at=None if minutes is None else missed_at + timedelta(minutes=minutes),
                    status="done" if minutes else "task",
                )
            )
        s.add(
            Callback(
                linkedid="m9", phone="+8613900000099", queue="hotline", kind="closed", requested_at=missed_at
            )
        )
        # The day before (China time) is not this day's.
        s.add(
            Callback(
                linkedid="m8",
                phone="+8613900000098",
                kind="abandoned",
                requested_at=datetime(2026, 11, 26, 23, 59, tzinfo=CHINA_TZ).astimezone(UTC),
            )
        )
        s.commit()


def _missed_row(html: str) -> dict[str, str]:
    table = html.split('id="missed-callbacks"', 1)[1].split("</table>", 1)[0]
    return dict(re.findall(r'data-key="([a-z0-9_]+)">([^<]*)<', table))


def test_missed_calls_called_back_within_15_minutes_in_the_reports(client, stats):
    _missed_calls(stats)
    figures = missed_callback_report(stats, DAY, DAY)
    assert (figures["missed"], figures["called_back"], figures["called_back_15min"]) == (4, 3, 2)
    assert figures["ratio_15min"] == 0.5 and (figures["closed"], figures["closed_called_back"]) == (1, 0)
    assert figures["delay_p50_s"] == 600.0
    login(client, "super")
    row = _missed_row(client.get(f"/reports?start={DAY}&end={DAY}&by=queue").text)
    assert (row["missed"], row["called_back_15min"], row["ratio_15min"]) == ("4", "2", "50.0%")
    row = _missed_row(client.get(f"/reports?start=2026-11-26&end={DAY}").text)
    assert row["missed"] == "5" and row["ratio_15min"] == "40.0%"
    r = client.get(f"/reports/daily?day={DAY}")
    assert "15分钟回拨率" in r.text and _missed_row(r.text)["ratio_15min"] == "50.0%"


def test_daily_page_and_scorecard(client, stats):
    login(client, "admin")
    r = client.get(f"/reports/daily?day={DAY}")
    assert r.status_code == 200 and "热线日报" in r.text and "<svg" in r.text
    r = client.get(f"/reports/scorecard?start={DAY}&end={DAY}")
    assert r.status_code == 200 and "张丽" in r.text


async def test_daily_mail_through_a_real_smtp_server(stats):
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        stats.smtp_host, stats.smtp_port = "127.0.0.1", port  # read by callcenter.mail
        stats.stats_report_recipients = ["manager@example.org"]
        _missed_calls(stats)
        mailer = DailyMailer(stats, missed_callback_report)
        morning = datetime(2026, 11, 28, 7, 30, tzinfo=CHINA_TZ).astimezone(UTC)
        assert await mailer.run_once(datetime(2026, 11, 28, 6, 0, tzinfo=CHINA_TZ)) is None  # too early
        assert await mailer.run_once(morning) == DAY
        assert await mailer.run_once(morning) is None  # sent already: not twice, even after a restart
        await asyncio.sleep(0.1)
    finally:
        controller.stop()
    assert len(received) == 1
    msg = email.message_from_bytes(received[0])
    assert DAY in str(email.header.make_header(email.header.decode_header(msg["Subject"])))
    parts = [p.get_content_type() for p in msg.walk()]
    [html] = [p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/html"]
    assert _missed_row(html)["ratio_15min"] == "50.0%"
    assert (
        "text/html" in parts and "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in parts
    )


def test_orders_page(client, db):
    from callcenter.statistics import orders

    login(client, "super")
    r = client.get("/reports/orders?start=2026-11-01&end=2026-11-30&by=type")
    assert r.status_code == 200 and "工单统计" in r.text
    assert "工单表尚无这些字段" not in r.text  # every figure has its column
    from datetime import UTC, datetime

    from callcenter.database import session_scope
    from dispatch.models import WorkOrder

    with session_scope(db) as s:
        s.add(
            WorkOrder(
                number="W1",
                order_type="投诉",
                category="路灯",
                created_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
                satisfaction="满意",
            )
        )
        s.commit()
    orders._present_cache.clear()
    r = client.get("/reports/orders?start=2026-11-01&end=2026-11-30&by=category&lang=en")
    assert "路灯" in r.text and 'data-key="satisfaction">100.0%' in r.text
    orders._present_cache.clear()


def test_people_read_names_where_the_api_keeps_ids(client, stats):
    """Queues, service numbers, outlets and communities by their names on the report pages and in
    the exports; the API's rows keep the id (key) beside the name."""
    from callcenter.directory.models import CallQueue, Community, Jurisdiction, Outlet, ServiceNumber
    from callcenter.statistics import orders
    from dispatch.models import WorkOrder

    with session_scope(stats) as s:
        s.add(CallQueue(name="hotline", title="综合热线"))
        s.add(ServiceNumber(number="96345", title="安宁便民热线", queue_name="hotline"))
        j = Jurisdiction(name="沙井驿街道")
        s.add(j)
        s.flush()
        c = Community(name="沙井驿社区", jurisdiction_id=j.id)
        o = Outlet(name="沙井驿便民维修站")
        s.add_all([c, o])
        s.flush()
        s.add(
            WorkOrder(
                number="W9",
                order_type="求助",
                category="水电维修",
                community_id=c.id,
                outlet_id=o.id,
                created_at=datetime(2026, 11, 27, 2, 0, tzinfo=UTC),
            )
        )
        s.commit()
        outlet_id, community_id = o.id, c.id
    orders._present_cache.clear()
    login(client, "super")
    page = client.get(f"/reports?start={DAY}&end={DAY}&by=queue").text
    assert '<th scope="row" data-id="hotline">综合热线</th>' in page
    assert '<option value="hotline">综合热线</option>' in page
    page = client.get(f"/reports?start={DAY}&end={DAY}&by=did").text
    assert '<th scope="row" data-id="96345">安宁便民热线</th>' in page
    api = client.get(f"/api/stats/report?start={DAY}&end={DAY}&by=queue").json()
    assert [(r["key"], r["name"]) for r in api["rows"]] == [("hotline", "综合热线")]

    csv_text = client.get(f"/reports/export?format=csv&start={DAY}&end={DAY}&by=queue").content.decode(
        "utf-8-sig"
    )
    assert "综合热线,2,1,1" in csv_text and "hotline" not in csv_text
    wb = load_workbook(
        io.BytesIO(client.get(f"/reports/export?format=xlsx&start={DAY}&end={DAY}&by=did").content)
    )
    report, calls = wb.worksheets
    assert ("安宁便民热线", 1, 1, 0) in [r[:4] for r in report.iter_rows(min_row=2, values_only=True)]
    first_call = next(calls.iter_rows(min_row=2, values_only=True))
    assert first_call[1:3] == ("综合热线", "安宁便民热线")

    for by, name, key in (
        ("outlet", "沙井驿便民维修站", outlet_id),
        ("community", "沙井驿社区", community_id),
    ):
        page = client.get(f"/reports/orders?start={DAY}&end={DAY}&by={by}").text
        assert f'<th scope="row" data-id="{key}">{name}</th>' in page, page
    page = client.get(f"/reports/daily?day={DAY}").text
    assert "综合热线" in page
    orders._present_cache.clear()


async def test_the_daily_mail_waits_for_a_call_that_began_before_midnight(db, tmp_path, caplog):
    """A call that entered the queue at 23:59:50 and is still talking at the report hour belongs
    to that day: the mail waits until the call ends (at most OPEN_CALLS_WAIT), then counts it."""
    from aiosmtpd.controller import Controller

    from callcenter.statistics.daily import OPEN_CALLS_WAIT
    from tests.conftest import free_port, mail_part

    t0 = int(datetime(2026, 11, 27, 23, 59, 50, tzinfo=CHINA_TZ).timestamp())
    log = tmp_path / "queue_log"
    log.write_text(
        f"{t0}|m1|hotline|NONE|DID|96345\n"
        f"{t0}|m1|hotline|NONE|ENTERQUEUE||13900000009|1\n"
        f"{t0 + 4}|m1|hotline|张丽|CONNECT|4|x|2\n"
    )
    follower = StatsFollower(db, path=log)
    while follower.step():
        pass
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        db.smtp_host, db.smtp_port = "127.0.0.1", port
        db.stats_report_recipients = ["manager@example.org"]
        db.stats_report_hour = 0
        mailer = DailyMailer(db)
        just_after = datetime(2026, 11, 28, 0, 0, 1, tzinfo=CHINA_TZ)
        with caplog.at_level("INFO", logger="callcenter.statistics.daily"):
            assert await mailer.run_once(just_after) is None and mailer.waiting
        assert "waits for 1 call" in caplog.text
        # The call ends after midnight; the follower closes it, and the mail goes out.
        with log.open("a") as f:
            f.write(f"{t0 + 40}|m1|hotline|张丽|COMPLETECALLER|4|36|1\n")
        while follower.step():
            pass
        assert await mailer.run_once(just_after + timedelta(seconds=35)) == DAY
        assert not mailer.waiting
        # A call the follower never saw end holds the mail back OPEN_CALLS_WAIT at most.
        with log.open("a") as f:
            f.write(f"{t0 + 86400}|m2|hotline|NONE|ENTERQUEUE||13900000010|1\n")
        while follower.step():
            pass
        next_day = just_after + timedelta(days=1)
        assert await mailer.run_once(next_day) is None and mailer.waiting
        assert await mailer.run_once(next_day + OPEN_CALLS_WAIT) == "2026-11-28"
        await asyncio.sleep(0.1)
    finally:
        controller.stop()
    assert len(received) == 2
    from callcenter.i18n import translator

    t = translator("zh")

    def counts(raw: bytes) -> str:
        return mail_part(raw).splitlines()[1]

    # Counted once, on the day it entered the queue (docs/statistics.md), not on the next.
    assert counts(received[0]).startswith(f"{t('stats.offered')}: 1  {t('stats.answered')}: 1  ")
    assert counts(received[1]).startswith(f"{t('stats.offered')}: 0  {t('stats.answered')}: 0  ")
