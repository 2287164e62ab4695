"""The statistics on PostgreSQL: the same figures as on SQLite, from the follower to the reports,
and the order roll-up's China-day grouping."""

from __future__ import annotations

import psycopg2
import pytest

from callcenter.config import Settings, set_settings
from callcenter.database import get_engine, migrate
from callcenter.statistics import orders, service
from callcenter.statistics.follower import StatsFollower
from tests.callcenter.statistics.test_reconcile import SCENARIO


@pytest.fixture
def pg_stats(postgres_url, tmp_path):
    """A database of its own on the test server (the shared one holds the demo)."""
    base, _, _ = postgres_url.rpartition("/")
    conn = psycopg2.connect(postgres_url.replace("postgresql+psycopg2", "postgresql"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS stats_test")
        cur.execute("CREATE DATABASE stats_test")
    conn.close()
    settings = set_settings(
        Settings(data_dir=tmp_path / "pg", database_url=f"{base}/stats_test", _env_file=None)
    )
    migrate(settings)
    yield settings
    get_engine(settings).dispose()


def test_same_figures_as_sqlite(pg_stats, settings, tmp_path):
    log = tmp_path / "queue_log"
    log.write_text("\n".join(SCENARIO) + "\n")
    for s in (pg_stats, settings):
        f = StatsFollower(s, path=log)
        while f.step(256):  # many small batches: the upserts add up
            pass
    for by in ("queue", "hour", "did", "seat", "week"):
        pg = service.report(pg_stats, "2026-11-28", "2026-11-28", by)
        lite = service.report(settings, "2026-11-28", "2026-11-28", by)
        assert pg == lite, by
    assert service.report(pg_stats, "2026-11-28", "2026-11-28")["total"]["offered"] == 8


def test_order_rollup_days_in_china_time(pg_stats):
    eng = get_engine(pg_stats)
    from datetime import UTC, datetime

    from callcenter.database import session_scope
    from dispatch.models import WorkOrder

    with session_scope(pg_stats) as s:
        # 16:30 UTC is 00:30 the next day in Lanzhou.
        for i, (hour, sat) in enumerate([(15, "满意"), (16, "不满意")]):
            s.add(
                WorkOrder(
                    number=f"P{i}",
                    order_type="投诉",
                    created_at=datetime(2026, 11, 27, hour, 30, tzinfo=UTC),
                    created_by="seat1001",
                    satisfaction=sat,
                )
            )
        s.commit()
    orders._present_cache.clear()
    with eng.begin() as c:
        direct = [orders.order_report(c, d, d, "seat")["total"] for d in ("2026-11-27", "2026-11-28")]
        orders.refresh_rollup(c)
    with eng.connect() as c:
        rolled = [orders.order_report(c, d, d, "seat")["total"] for d in ("2026-11-27", "2026-11-28")]
    assert rolled == direct
    assert [t["orders"] for t in rolled] == [1, 1] and [t["satisfaction"] for t in rolled] == [1.0, 0.0]
