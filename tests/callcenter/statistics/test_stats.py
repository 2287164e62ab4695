"""Today's wallboard figures come from the statistics' roll-ups, counted in China time."""

from __future__ import annotations

from datetime import datetime, timedelta

from callcenter.config import CHINA_TZ
from callcenter.statistics import service
from callcenter.statistics.follower import StatsFollower
from callcenter.statistics.today import DayStats


def test_wallboard_and_report_agree_on_the_china_day(settings, tmp_path):
    midnight = int(datetime(2026, 11, 28, 0, 0, tzinfo=CHINA_TZ).timestamp())
    calls = [
        (midnight - 60, "answered"),  # yesterday in Lanzhou (15:59 UTC)
        (midnight + 60, "answered"),
        (midnight + 23 * 3600, "abandoned"),
        (midnight + 86400 + 60, "answered"),  # tomorrow
    ]
    lines = []
    for i, (ts, outcome) in enumerate(calls):
        lines.append(f"{ts}|c{i}|hotline|NONE|ENTERQUEUE||1390000000{i}|1")
        if outcome == "answered":
            lines.append(f"{ts + 20}|c{i}|hotline|PJSIP/seat1001|CONNECT|20|x|2")
            lines.append(f"{ts + 80}|c{i}|hotline|PJSIP/seat1001|COMPLETEAGENT|20|60|1")
        else:
            lines.append(f"{ts + 20}|c{i}|hotline|NONE|ABANDON|1|1|20")
    log = tmp_path / "queue_log"
    log.write_text("\n".join(lines) + "\n")
    f = StatsFollower(settings, path=log)
    while f.step():
        pass
    day = DayStats.load(settings, "2026-11-28")
    q = day.queues["hotline"]
    assert (q["offered"], q["answered"], q["abandoned"]) == (2, 1, 1)
    assert q["answered_rate"] == 0.5 and day.seat_calls == {"1001": 1}
    report = service.report(settings, "2026-11-28", "2026-11-28", by="queue")["rows"][0]
    assert {k: v for k, v in report.items() if k not in ("key", "name")} == q
    earlier = (datetime(2026, 11, 28) - timedelta(days=3)).date().isoformat()
    assert DayStats.load(settings, earlier).queues == {}
