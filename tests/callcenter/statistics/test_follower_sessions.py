"""Callback marks and open login / pause intervals through the follower and the database."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from callcenter.config import Settings, set_settings
from callcenter.database import get_engine, migrate
from callcenter.statistics import service
from callcenter.statistics.follower import StatsFollower
from callcenter.statistics.models import StatCall, StatCursor
from tests.callcenter.statistics.test_follower import DAY, drain, figures, write
from tests.callcenter.statistics.test_reconcile import T0, lines
from tests.callcenter.statistics.test_reconcile_sessions import CALLBACKS


def test_callback_outcomes_written_later_and_across_restarts(settings, tmp_path):
    whole = tmp_path / "whole"
    write(whole, CALLBACKS)
    drain(StatsFollower(settings, path=whole))
    expected = figures(settings)
    total = expected["total"]
    assert (total["callbacks_requested"], total["callbacks_connected"], total["callbacks_failed"]) == (
        4,
        1,
        3,
    )
    assert (total["offered"], total["exit_key"], total["callbacks"]) == (7, 5, 1)
    with get_engine(settings).connect() as c:
        got = dict(c.execute(select(StatCall.callid, StatCall.callback)).all())
    assert got == {
        "a0": "",
        "c1": "connected",
        "c2": "failed",
        "c3": "failed",
        "c4": "failed",
        "c5": "",
        "o1": "call",
        "o3": "call",
        "r3": "",
    }
    seat = next(r for r in service.report(settings, DAY, DAY, by="seat")["rows"] if r["key"] == "座席张敏")
    assert (seat["handled"], seat["talk_s"]) == (2, 120.0)  # with the call back it took
    for split in (3, 9, 12, 20, 26, 31, 34):
        # The outcomes arrive in a later batch, after a restart: marks on rows already written.
        s2 = set_settings(Settings(data_dir=tmp_path / f"var{split}", _env_file=None))
        migrate(s2)
        log = tmp_path / f"log{split}"
        write(log, CALLBACKS[:split])
        drain(StatsFollower(s2, path=log), max_bytes=64)
        write(log, CALLBACKS[split:])
        drain(StatsFollower(s2, path=log))
        assert figures(s2) == expected, split


def test_open_login_and_pause_count_up_to_now(settings, tmp_path):
    log = tmp_path / "queue_log"
    write(
        log,
        lines(
            """
            0|STATIC|hotline|PJSIP/seat1003|ADDMEMBER|
            100|NONE|hotline|PJSIP/seat1003|PAUSE|培训
            """
        ),
    )
    drain(StatsFollower(settings, path=log))
    with get_engine(settings).connect() as c:
        # The follower runs (its cursor was saved just now): up to now, within the day.
        assert service.open_intervals(c, DAY, DAY, now=T0 + 400) == (
            {"1003": 400.0},
            {"1003": {"培训": 300.0}},
        )
        login, _ = service.open_intervals(c, DAY, DAY, now=T0 + 40 * 86400)
        assert login == {"1003": 15 * 3600.0}  # from 09:00 to the day's end (China time)
        assert service.open_intervals(c, "2026-11-27", "2026-11-27", now=T0 + 400) == ({}, {})
    with get_engine(settings).begin() as c:  # the follower stopped at 09:03:20
        stopped = datetime.fromtimestamp(T0 + 200, UTC)
        c.execute(update(StatCursor.__table__).values(updated_at=stopped))
    with get_engine(settings).connect() as c:
        assert service.open_intervals(c, DAY, DAY, now=T0 + 5000)[0] == {"1003": 200.0}
