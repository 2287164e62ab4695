"""Work-order statistics (工单统计), in one place so the dispatch schema can be adapted here.

The columns of ``workorder`` (dispatch/models.py) each figure reads (a column a database does
not have yet makes the figures that need it None):

| key            | column           | meaning                                                   |
|----------------|------------------|-----------------------------------------------------------|
| created_at     | created_at       | 受理 received (UTC)                                       |
| order_type     | order_type       | 咨询 / 求助 / 投诉 / 举报 / 建议 / 表扬                    |
| category       | category         | the matter's category                                     |
| community_id   | community_id     | the resident's community (community.id)                   |
| outlet_id      | outlet_id        | the service outlet it was dispatched to (outlet.id)       |
| seat           | created_by       | username of the seat who opened it (by_seat: extension)    |
| accept_due_at  | accept_due_at    | deadline to accept (签收时限)                              |
| accepted_at    | accepted_at      | 签收 accepted by the outlet                               |
| due_at         | deadline_at      | deadline to resolve (办结时限, working days or hours)      |
| resolved_at    | resolved_at      | 办结 resolved                                              |
| return_count   | return_count     | times returned by an outlet (退单)                         |
| rehandle_count | reopen_count     | times re-opened for re-handling (重办)                     |
| satisfaction   | satisfaction     | follow-up result: 满意 / 基本满意 / 不满意 (or 1–5)        |

Definitions (docs/statistics.md):
- on-time acceptance (按时签收率): accepted by the deadline ÷ orders whose acceptance deadline
  has passed or that were accepted;
- on-time resolution (按时办结率): resolved by the deadline ÷ orders whose deadline has passed or
  that were resolved;
- return rate (回退率): orders returned at least once ÷ orders;
- re-handling rate (重办率): orders re-handled at least once ÷ resolved orders;
- satisfaction (满意率): 满意 + 基本满意 (or 4–5) ÷ orders followed up;
- answered directly (直接答复率): orders whose history has a 直接答复 (answered on the call, from
  the knowledge base or not) ÷ orders; the 咨询 row is the share of questions answered on the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, column, exists, func, inspect, or_, select, table
from sqlmodel import col
from sqlmodel.sql.sqltypes import UTCDateTime

from callcenter.accounts.models import Account
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import get_engine, table_of
from callcenter.directory.service import display_names
from callcenter.statistics.models import StatCursor, StatOrderDay

log = logging.getLogger(__name__)

TABLE = "workorder"
COLUMNS = {
    "created_at": "created_at",
    "order_type": "order_type",
    "category": "category",
    "community_id": "community_id",
    "outlet_id": "outlet_id",
    "seat": "created_by",
    "accept_due_at": "accept_due_at",
    "accepted_at": "accepted_at",
    "due_at": "deadline_at",
    "resolved_at": "resolved_at",
    "return_count": "return_count",
    "rehandle_count": "reopen_count",
    "satisfaction": "satisfaction",
}
SATISFIED = ("满意", "基本满意", "4", "5")
# The order history (dispatch/models.py OrderHistory), read by name: a 直接答复 step marks an order
# answered on the call.
HISTORY = table("order_history", column("order_id"), column("action"))
ANSWERED = "直接答复"
GROUPS = ("type", "category", "community", "outlet", "seat")
_GROUP_KEY = {
    "type": "order_type",
    "category": "category",
    "community": "community_id",
    "outlet": "outlet_id",
    "seat": "seat",
}

ROLLUP_MARKER = "order-rollup"
HORIZON_DAYS = 60  # orders older than this are settled: the roll-up keeps them as counted

_TIMES = ("created_at", "accept_due_at", "accepted_at", "due_at", "resolved_at")
_present_cache: dict[str, frozenset[str]] = {}


def _present(conn: Connection) -> frozenset[str]:
    """Which of COLUMNS the table has (looked up once per database)."""
    url = str(conn.engine.url)
    if url not in _present_cache:
        try:
            have = {c["name"] for c in inspect(conn).get_columns(TABLE)}
        except Exception:
            have = set()
        _present_cache[url] = frozenset(k for k, v in COLUMNS.items() if v in have)
    return _present_cache[url]


def _range(start: str, end: str) -> tuple[datetime, datetime]:
    s = datetime.combine(date.fromisoformat(start), time(0), CHINA_TZ).astimezone(UTC)
    e = datetime.combine(date.fromisoformat(end) + timedelta(days=1), time(0), CHINA_TZ).astimezone(UTC)
    return s, e


def _rate(n: Any, d: Any) -> float | None:
    return round(float(n) / float(d), 4) if d else None


def _columns(conn: Connection) -> tuple[frozenset[str], dict[str, Any], Any]:
    have = _present(conn)
    cols = {
        k: column(v, UTCDateTime()) if k in _TIMES else column(v) for k, v in COLUMNS.items() if k in have
    }
    cols["_id"] = column("id")  # every order has one; the history is joined on it
    return have, cols, table(TABLE, *cols.values())


def _parts(have: frozenset[str], cols: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The counters behind the rates, as SQL aggregates (only those the table has columns for)."""

    def cnt(cond):
        return func.sum(case((cond, 1), else_=0))

    parts: dict[str, Any] = {"orders": func.count()}
    if {"accept_due_at", "accepted_at"} <= have:
        a, due = cols["accepted_at"], cols["accept_due_at"]
        parts["accept_on_time"] = cnt(and_(a.is_not(None), due.is_not(None), a <= due))
        parts["accept_due"] = cnt(and_(due.is_not(None), or_(a.is_not(None), due < now)))
    if {"due_at", "resolved_at"} <= have:
        r, due = cols["resolved_at"], cols["due_at"]
        parts["resolve_on_time"] = cnt(and_(r.is_not(None), due.is_not(None), r <= due))
        parts["resolve_due"] = cnt(and_(due.is_not(None), or_(r.is_not(None), due < now)))
        parts["resolved"] = cnt(r.is_not(None))
    if "return_count" in have:
        parts["returned"] = cnt(cols["return_count"] > 0)
    if "rehandle_count" in have:
        parts["rehandled"] = cnt(cols["rehandle_count"] > 0)
    if "satisfaction" in have:
        sat = cols["satisfaction"]
        parts["followed_up"] = cnt(and_(sat.is_not(None), sat != ""))
        parts["satisfied"] = cnt(sat.in_(SATISFIED))
    answered = exists().where(HISTORY.c.order_id == cols["_id"], HISTORY.c.action == ANSWERED)
    parts["answered"] = cnt(answered)
    return parts


def _china_day(conn: Connection, created) -> Any:
    if conn.engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", created), "YYYY-MM-DD")
    return func.date(created, "+8 hours")  # SQLite keeps UTC text


def refresh_rollup(conn: Connection, since: str | None = None, now: datetime | None = None) -> int:
    """Recount ``stat_order_day`` from ``since`` (a China-time day; None: everything).

    Orders change after they are received (accepted, resolved, followed up), so the engine
    recounts the recent days (``HORIZON_DAYS``) every few minutes; older orders are settled.
    Returns the rows written.
    """
    have, cols, t = _columns(conn)
    if "created_at" not in have:
        return 0
    now = now or datetime.now(UTC)
    parts = _parts(have, cols, now)
    created = cols["created_at"]
    day = _china_day(conn, created)
    rt = table_of(StatOrderDay)
    n = 0
    # Every count is read before the first write: on SQLite the write lock is held from the first
    # DELETE to the commit, and counting a district's orders under it (seconds, the first time)
    # held up every call record and login meanwhile.
    counted = []
    for dim in GROUPS:
        gk = _GROUP_KEY[dim]
        if gk not in have:
            continue
        dq = rt.delete().where(rt.c.dim == dim)
        q = select(
            day.label("day"), cols[gk].label("key"), *[v.label(k) for k, v in parts.items()]
        ).select_from(t)
        if since:
            dq = dq.where(rt.c.day >= since)
            q = q.where(created >= _range(since, since)[0])
        rows = [
            {
                "dim": dim,
                "day": r.day,
                "key": "" if r.key is None else str(r.key)[:80],
                **{k: int(getattr(r, k) or 0) for k in parts},
            }
            for r in conn.execute(q.group_by(day, cols[gk]))
        ]
        counted.append((dq, rows))
    for dq, rows in counted:
        conn.execute(dq)
        if rows:
            conn.execute(rt.insert(), rows)
        n += len(rows)
    ct = table_of(StatCursor)
    stamp = {"state": ",".join(sorted(parts)), "updated_at": datetime.now(UTC)}
    if conn.execute(ct.update().where(ct.c.name == ROLLUP_MARKER).values(**stamp)).rowcount == 0:
        conn.execute(ct.insert().values(name=ROLLUP_MARKER, **stamp))
    return n


def _rollup_parts(conn: Connection) -> list[str] | None:
    """The counters the roll-up holds, or None when it was never built."""
    row = conn.execute(select(col(StatCursor.state)).where(col(StatCursor.name) == ROLLUP_MARKER)).first()
    return row[0].split(",") if row and row[0] else None


def order_report(
    conn: Connection, start: str, end: str, by: str = "type", now: datetime | None = None
) -> dict[str, Any]:
    """Counts and rates of the orders received in ``start``..``end``, grouped ``by``: from the
    daily roll-up once it exists (fast at any range), else straight from the orders."""
    if by not in GROUPS:
        raise ValueError(f"unknown grouping {by!r}")
    have, cols, t = _columns(conn)
    missing = sorted(set(COLUMNS) - have)
    gk = _GROUP_KEY[by]
    if "created_at" not in have or gk not in have:
        return {"by": by, "start": start, "end": end, "rows": [], "total": None, "missing": missing}
    rolled = _rollup_parts(conn)
    if rolled is not None:
        rt = table_of(StatOrderDay)
        q = (
            select(rt.c.key.label("key"), *[func.sum(rt.c[k]).label(k) for k in rolled])
            .where(rt.c.dim == by, rt.c.day >= start, rt.c.day <= end)
            .group_by(rt.c.key)
            .order_by(rt.c.key)
        )
        names = rolled
    else:
        parts = _parts(have, cols, now or datetime.now(UTC))
        s, e = _range(start, end)
        created = cols["created_at"]
        q = (
            select(cols[gk].label("key"), *[v.label(k) for k, v in parts.items()])
            .select_from(t)
            .where(created >= s, created < e)
            .group_by(cols[gk])
            .order_by(cols[gk])
        )
        names = list(parts)
    rows = []
    total: dict[str, float] = {}
    label = _labels(conn, by)
    for r in conn.execute(q):
        m = dict(r._mapping)
        for k in names:
            total[k] = total.get(k, 0) + float(m[k] or 0)
        key = "" if m["key"] is None else str(m["key"])
        rows.append({"key": m["key"], "name": label.get(key) or key, **_figures(m)})
    return {"by": by, "start": start, "end": end, "rows": rows, "total": _figures(total), "missing": missing}


def _labels(conn: Connection, by: str) -> dict[str, str]:
    """What a person reads for a grouping's key: the community's, the outlet's, the seat's name
    (types and categories are their names already)."""
    if by == "community":
        return display_names(conn).communities
    if by == "outlet":
        return display_names(conn).outlets
    if by == "seat":
        return {
            user: display
            for user, display in conn.execute(select(col(Account.username), col(Account.display_name)))
            if display
        }
    return {}


def _figures(m: dict[str, Any]) -> dict[str, Any]:
    resolved = m.get("resolved")
    return {
        "orders": int(m.get("orders") or 0),
        "on_time_acceptance": _rate(m.get("accept_on_time", 0), m.get("accept_due"))
        if "accept_due" in m
        else None,
        "on_time_resolution": _rate(m.get("resolve_on_time", 0), m.get("resolve_due"))
        if "resolve_due" in m
        else None,
        "return_rate": _rate(m["returned"], m.get("orders")) if "returned" in m else None,
        "rehandle_rate": _rate(m["rehandled"], resolved)
        if "rehandled" in m and resolved is not None
        else None,
        "satisfaction": _rate(m["satisfied"], m.get("followed_up")) if "satisfied" in m else None,
        "answered_directly": _rate(m["answered"], m.get("orders")) if "answered" in m else None,
    }


def satisfaction_by_seat(conn: Connection, start: str, end: str) -> dict[str, float | None]:
    """Follow-up satisfaction of the orders each seat opened."""
    rep = by_seat(conn, start, end)
    return {r["key"]: r["satisfaction"] for r in rep}


def by_seat(conn: Connection, start: str, end: str) -> list[dict[str, Any]]:
    """Keyed by the seat's extension, as the call figures are (orders record the username)."""
    if "seat" not in _present(conn):
        return []
    ext_of: dict[str, str | None] = dict(
        conn.execute(select(col(Account.username), col(Account.extension))).all()
    )
    rows = order_report(conn, start, end, by="seat")["rows"]
    for row in rows:
        row["key"] = ext_of.get(row["key"]) or row["key"]
    return rows


class OrderRollupTask:
    """In the engine: recounts the recent days of ``stat_order_day`` every ``interval`` seconds
    (everything the first time)."""

    def __init__(self, settings: Settings, interval: float = 300.0) -> None:
        self.settings = settings
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def refresh(self) -> int:
        with get_engine(self.settings).begin() as conn:
            since = None
            have, cols, _t = _columns(conn)
            current = sorted(_parts(have, cols, datetime.now(UTC)))
            if _rollup_parts(conn) == current:  # same columns as last time: the recent days only
                since = (datetime.now(CHINA_TZ).date() - timedelta(days=HORIZON_DAYS)).isoformat()
            return refresh_rollup(conn, since)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stats-order-rollup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:
                log.exception("recounting the order statistics failed")
            await asyncio.sleep(self.interval)
