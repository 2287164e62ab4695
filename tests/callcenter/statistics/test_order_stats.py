"""Order statistics on the work-order table: by hand, straight and from the roll-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from callcenter.config import CHINA_TZ
from callcenter.database import get_engine
from callcenter.statistics import orders


def ts(d: datetime | None) -> str | None:
    return None if d is None else d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_order_figures(settings):
    eng = get_engine(settings)
    base = datetime(2026, 11, 27, 9, 0, tzinfo=CHINA_TZ)
    now = datetime(2026, 11, 28, 12, 0, tzinfo=CHINA_TZ)
    h = timedelta(hours=1)
    # (type, seat, accepted after, resolved after, returns, rehandles, satisfaction)
    spec = [
        ("投诉", "1001", 1 * h, 10 * h, 0, 0, "满意"),  # all on time
        ("投诉", "1001", 3 * h, 30 * h, 1, 0, "不满意"),  # accepted late, resolved late, returned
        ("咨询", "1002", 1 * h, 20 * h, 0, 1, "基本满意"),  # re-handled
        ("咨询", "1002", None, None, 0, 0, None),  # not accepted, acceptance deadline passed
    ]
    with eng.begin() as c:
        orders._present_cache.clear()
        for i, (typ, seat, acc, res, ret, reh, sat) in enumerate(spec):
            c.exec_driver_sql(
                "INSERT INTO workorder (number, call_linkedid, order_type, category, status, summary,"
                " created_at, created_by, accept_due_at, accepted_at, deadline_at, resolved_at,"
                " return_count, reopen_count, satisfaction, short_code, urgency, caller_phone,"
                " caller_name, address, dispatched_at, reviewed, updated_at, extension_reason,"
                " resolution, return_reason)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'','normal','','','',?,0,?,'','','')",
                (
                    f"T{i}",
                    "",
                    typ,
                    "路灯",
                    "受理",
                    "",
                    ts(base),
                    seat,
                    ts(base + 2 * h),
                    ts(base + acc if acc else None),
                    ts(base + 24 * h),
                    ts(base + res if res else None),
                    ret,
                    reh,
                    sat or "",
                    ts(base),
                    ts(base),
                ),
            )
        # The last 咨询 was answered on the call (直接答复); another step on it counts once.
        last = c.exec_driver_sql("SELECT id FROM workorder WHERE number = 'T3'").scalar()
        for action in ("直接答复", "回访"):
            c.exec_driver_sql(
                "INSERT INTO order_history (order_id, at, actor, role, action, from_status, to_status, note)"
                " VALUES (?, ?, 'seat1002', 'seat', ?, '受理', '归档', '')",
                (last, ts(base), action),
            )
    orders._present_cache.clear()
    with eng.connect() as c:
        direct = orders.order_report(c, "2026-11-27", "2026-11-27", "type", now=now)
    by_type = {r["key"]: r for r in direct["rows"]}
    assert by_type["投诉"]["on_time_acceptance"] == 0.5 and by_type["投诉"]["on_time_resolution"] == 0.5
    assert by_type["投诉"]["return_rate"] == 0.5 and by_type["投诉"]["satisfaction"] == 0.5
    # 咨询: one accepted on time, one never accepted and past its deadline; one resolved (on time).
    assert by_type["咨询"]["on_time_acceptance"] == 0.5 and by_type["咨询"]["on_time_resolution"] == 0.5
    assert by_type["咨询"]["rehandle_rate"] == 1.0 and by_type["咨询"]["satisfaction"] == 1.0
    assert by_type["咨询"]["answered_directly"] == 0.5 and by_type["投诉"]["answered_directly"] == 0.0
    assert direct["total"]["orders"] == 4 and direct["missing"] == []
    assert direct["total"]["answered_directly"] == 0.25
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.lstrip().split()[0].upper())

    event.listen(eng, "before_cursor_execute", seen)
    try:
        with eng.begin() as c:
            assert orders.refresh_rollup(c, now=now) > 0
    finally:
        event.remove(eng, "before_cursor_execute", seen)
    # Counted before the first write: SQLite's write lock is not held while the orders are read.
    first_write = statements.index("DELETE")
    assert statements.count("SELECT") >= len(orders.GROUPS)
    assert "SELECT" not in statements[first_write : first_write + 2 * len(orders.GROUPS)]
    with eng.connect() as c:
        for by in orders.GROUPS:
            rolled = orders.order_report(c, "2026-11-27", "2026-11-27", by, now=now)
            assert rolled["total"] == orders.order_report(c, "2026-11-26", "2026-11-28", by)["total"]
        assert orders.order_report(c, "2026-11-27", "2026-11-27", "type")["total"] == direct["total"]
        assert orders.order_report(c, "2026-11-28", "2026-11-28", "type")["total"]["orders"] == 0
        assert orders.satisfaction_by_seat(c, "2026-11-27", "2026-11-27") == {"1001": 0.5, "1002": 1.0}


def test_rollup_task_counts_a_follow_up_that_comes_later(settings):
    eng = get_engine(settings)
    orders._present_cache.clear()
    day = datetime.now(CHINA_TZ) - timedelta(days=2)
    with eng.begin() as c:
        c.exec_driver_sql(
            "INSERT INTO workorder (number, call_linkedid, order_type, category, status, summary,"
            " created_at, created_by, short_code, urgency, caller_phone, caller_name, address,"
            " reviewed, updated_at, extension_reason, resolution, return_reason, satisfaction,"
            " return_count, reopen_count)"
            " VALUES ('X1', '', '咨询', '', '受理', '', ?, 'seat1001', '', 'normal', '', '', '', 0, ?,"
            " '', '', '', '', 0, 0)",
            (ts(day), ts(day)),
        )
    task = orders.OrderRollupTask(settings)
    task.refresh()
    key = day.date().isoformat()
    with eng.connect() as c:
        assert orders.order_report(c, key, key)["total"]["satisfaction"] is None
    with eng.begin() as c:  # the follow-up call comes days after the order was received
        c.exec_driver_sql("UPDATE workorder SET satisfaction = '满意'")
    task.refresh()
    with eng.connect() as c:
        assert orders.order_report(c, key, key)["total"]["satisfaction"] == 1.0
    orders._present_cache.clear()
