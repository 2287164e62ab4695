"""The printable daily report, e-mailed to managers each morning (China time).

The same template renders the page (/reports/daily) and the mail body; the mail carries the
day's Excel file. Which day was last sent is kept in the database, so a restart neither skips
nor repeats a morning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Table, select, update
from sqlmodel import col

from callcenter.config import CHINA_TZ, Settings
from callcenter.database import get_engine
from callcenter.i18n import translator
from callcenter.mail import send_mail
from callcenter.statistics import exports, orders, service
from callcenter.statistics.charts import bar_chart
from callcenter.statistics.models import StatCursor

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[2] / "web_console" / "templates"
MARKER = "daily-report"
# A call still going on at the report hour delays the mail this long at most (a call the
# follower never saw end must not hold the managers' report back for ever).
OPEN_CALLS_WAIT = timedelta(hours=2)
OPEN_CALLS_POLL_S = 5.0


# Figures other domains add to the report for a range of China days (the missed calls called
# back: call control, which sits above the statistics, hands its function in).
ExtraFigures = Callable[[Settings, str, str], dict[str, Any]]


def daily_context(settings: Settings, day: str, t, missed: ExtraFigures | None = None) -> dict[str, Any]:
    with get_engine(settings).connect() as conn:
        queues = service.report(settings, day, day, by="queue", conn=conn)
        hours = service.report(settings, day, day, by="hour", conn=conn)
        seats = service.report(settings, day, day, by="seat", conn=conn)
        order_types = orders.order_report(conn, day, day, by="type")
    by_hour = {r["key"]: r for r in hours["rows"]}
    labels = [f"{h:02d}" for h in range(24)]
    chart = bar_chart(
        labels,
        [
            (t("stats.offered"), [by_hour.get(h, {}).get("offered", 0) for h in range(24)]),
            (t("stats.answered"), [by_hour.get(h, {}).get("answered", 0) for h in range(24)]),
            (t("stats.abandoned"), [by_hour.get(h, {}).get("abandoned", 0) for h in range(24)]),
        ],
        title=t("stats.by.hour"),
    )
    return {
        "day": day,
        "queues": queues,
        "seats": seats,
        "orders": order_types,
        "chart": chart,
        "queue_columns": exports.QUEUE_COLUMNS,
        "seat_columns": exports.SEAT_COLUMNS,
        "missed": missed(settings, day, day) if missed else None,
    }


def render_daily(settings: Settings, day: str, t, missed: ExtraFigures | None = None) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    return env.get_template("_report_daily.html").render(
        t=t, fmt=fmt, **daily_context(settings, day, t, missed)
    )


def fmt(v: Any, key: str = "") -> str:
    """A figure as people read it: rates in %, seconds with one decimal."""
    if v is None:
        return "—"
    if isinstance(v, dict):
        return "; ".join(f"{k} {fmt(x)}" for k, x in v.items()) or "—"
    if key in (
        "answered_rate",
        "service_level",
        "service_level_with_abandoned",
        "occupancy",
        "satisfaction",
        "abandon_rate",
        "on_time_acceptance",
        "on_time_resolution",
        "return_rate",
        "rehandle_rate",
        "answered_directly",
        "ratio_15min",
    ):
        return f"{v * 100:.1f}%"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


async def send_daily(settings: Settings, day: str, missed: ExtraFigures | None = None) -> None:
    t = translator("zh")
    html = await asyncio.to_thread(render_daily, settings, day, t, missed)
    report = await asyncio.to_thread(service.report, settings, day, day, "queue")
    total = report["total"]
    text = "\n".join(
        [
            f"{t('stats.daily_title')} {day}",
            f"{t('stats.offered')}: {total['offered']}  {t('stats.answered')}: {total['answered']}  "
            f"{t('stats.abandoned')}: {total['abandoned']}",
            f"{t('stats.answered_rate')}: {fmt(total['answered_rate'], 'answered_rate')}  "
            f"{t('stats.service_level')}: {fmt(total['service_level'], 'service_level')}",
        ]
    )

    def xlsx() -> bytes:
        with get_engine(settings).connect() as conn:
            return exports.to_xlsx(report, t, conn)

    data = await asyncio.to_thread(xlsx)
    await send_mail(
        settings,
        list(settings.stats_report_recipients),
        f"{t('stats.daily_title')} {day}",
        text,
        html,
        [(f"daily-{day}.xlsx", data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")],
    )


class DailyMailer:
    """Each morning at ``stats_report_hour`` (China time), yesterday's report to the managers."""

    def __init__(self, settings: Settings, missed: ExtraFigures | None = None) -> None:
        self.settings = settings
        self.missed = missed
        self.waiting = False  # the report is due but waits for calls of its day still going on
        self._task: asyncio.Task | None = None

    def _last_sent(self) -> str:
        with get_engine(self.settings).connect() as c:
            row = c.execute(select(col(StatCursor.state)).where(col(StatCursor.name) == MARKER)).first()
        return row[0] if row else ""

    def _mark(self, day: str) -> None:
        # SQLModel sets __table__ when the class is made; its type stubs do not declare it.
        t: Table = StatCursor.__table__  # type: ignore[attr-defined]
        with get_engine(self.settings).begin() as c:
            if (
                c.execute(
                    update(t).where(t.c.name == MARKER).values(state=day, updated_at=datetime.now(UTC))
                ).rowcount
                == 0
            ):
                c.execute(t.insert().values(name=MARKER, state=day, updated_at=datetime.now(UTC)))

    def _calls_open_from(self, day: str) -> int:
        """Queue calls that entered on ``day`` or before and have not ended yet, by the queue_log
        followers' saved state (every Asterisk's): the day counts them once they end."""
        end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(0), CHINA_TZ).timestamp()
        with get_engine(self.settings).connect() as c:
            states = c.execute(select(col(StatCursor.state)).where(col(StatCursor.name) != MARKER)).scalars()
            found = 0
            for state in states:
                try:
                    open_calls = json.loads(state or "{}").get("open", {})
                except (ValueError, AttributeError):
                    continue  # another cursor's state, not a follower's
                found += sum(
                    1 for st in open_calls.values() if isinstance(st, dict) and st.get("enter_ts", end) < end
                )
        return found

    def due(self, now: datetime) -> str | None:
        """The day to send now, if any. A call that began before midnight and still goes on
        belongs to that day's report: the mail waits for it, up to ``OPEN_CALLS_WAIT``."""
        was_waiting, self.waiting = self.waiting, False
        local = now.astimezone(CHINA_TZ)
        if local.hour < self.settings.stats_report_hour:
            return None
        day = (local.date() - timedelta(days=1)).isoformat()
        if self._last_sent() >= day:
            return None
        report_time = datetime.combine(local.date(), time(self.settings.stats_report_hour), CHINA_TZ)
        if local - report_time < OPEN_CALLS_WAIT and (n := self._calls_open_from(day)):
            if not was_waiting:
                log.info("daily report for %s waits for %d call(s) of that day still going on", day, n)
            self.waiting = True
            return None
        return day

    async def run_once(self, now: datetime | None = None) -> str | None:
        day = await asyncio.to_thread(self.due, now or datetime.now(UTC))
        if day is None or not self.settings.stats_report_recipients:
            return None
        await send_daily(self.settings, day, self.missed)
        await asyncio.to_thread(self._mark, day)
        log.info("daily report for %s sent to %d managers", day, len(self.settings.stats_report_recipients))
        return day

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stats-daily-mail")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("sending the daily report failed; trying again later")
            if self.waiting:
                await asyncio.sleep(OPEN_CALLS_POLL_S)
                continue
            now = datetime.now(CHINA_TZ)
            nxt = datetime.combine(now.date(), time(self.settings.stats_report_hour), CHINA_TZ)
            if nxt <= now:
                nxt += timedelta(days=1)
            await asyncio.sleep(min(600.0, (nxt - now).total_seconds() + 1))


def yesterday() -> str:
    return (datetime.now(CHINA_TZ).date() - timedelta(days=1)).isoformat()
