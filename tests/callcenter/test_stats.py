"""Today's queue figures: each definition, and a day counted in China time from the records."""

from __future__ import annotations

from datetime import datetime, timedelta

from callcenter.calls.models import CallRecord
from callcenter.calls.stats import DayStats
from callcenter.config import CHINA_TZ
from callcenter.database import session_scope


def test_definitions():
    d = DayStats(day="2026-11-28", service_level=15)
    d.add("hotline", "1001", "answered", 3.0)
    d.add("hotline", "1001", "answered", 15.0)  # on the threshold: within
    d.add("hotline", "1002", "answered", 40.0)
    d.add("hotline", "", "abandoned", 30.0)
    d.add("hotline", "", "abandoned", 2.0)  # short: counted apart, not offered
    d.add("hotline", "", "timeout", 300.0)
    d.add("", "", "ivr", None)  # never queued: not offered
    v = d.queues["hotline"].view()
    assert (v["offered"], v["answered"], v["abandoned"], v["short_abandoned"], v["timeout"]) == (
        5,
        3,
        1,
        1,
        1,
    )
    assert v["answered_rate"] == 0.6
    assert v["service_level"] == round(2 / 3, 4) and v["service_level_with_abandoned"] == 0.5
    assert d.seat_calls == {"1001": 2, "1002": 1}
    assert DayStats(day="x").queues == {}


def test_load_counts_the_china_day(settings):
    midnight = datetime(2026, 11, 28, 0, 0, tzinfo=CHINA_TZ)
    with session_scope(settings) as s:
        for i, (at, outcome) in enumerate(
            [
                (midnight - timedelta(minutes=1), "answered"),  # yesterday in Lanzhou (16:59 UTC)
                (midnight + timedelta(minutes=1), "answered"),
                (midnight + timedelta(hours=23, minutes=59), "abandoned"),
                (midnight + timedelta(days=1), "answered"),  # tomorrow
            ]
        ):
            s.add(
                CallRecord(
                    linkedid=f"s.{i}",
                    started_at=at,
                    queue="hotline",
                    seat="1001",
                    outcome=outcome,
                    wait_s=20.0,
                )
            )
        s.commit()
    v = DayStats.load(settings, "2026-11-28").queues["hotline"].view()
    assert (v["offered"], v["answered"], v["abandoned"]) == (2, 1, 1)


def test_service_level_threshold_per_queue():
    d = DayStats(day="2026-11-28", service_level=15, levels={"elderly": 10})
    d.add("elderly", "1001", "answered", 12.0)  # over elderly's 10 s
    d.add("hotline", "1001", "answered", 12.0)  # within the default 15 s
    assert d.queues["elderly"].view()["service_level"] == 0.0
    assert d.queues["hotline"].view()["service_level"] == 1.0
