"""Reports: sums of the roll-up counters over any date range, grouped as asked.

Every figure goes through ``definitions.figures`` / ``definitions.seat_figures``, the same code
the wallboard uses for today. Ranges are China-time days, inclusive.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlmodel import SQLModel, col

from callcenter.accounts.models import Account
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import get_engine, table_of
from callcenter.directory.service import display_names
from callcenter.ids import DIAGNOSTICS_QUEUE
from callcenter.statistics import definitions as defs
from callcenter.statistics import orders
from callcenter.statistics.follower import ALIVE_EVERY_S
from callcenter.statistics.models import StatAggHour, StatAggSeat, StatCursor, StatSeatTime

GROUPS = ("total", "queue", "did", "hour", "day", "week", "month", "seat")


def today() -> str:
    return datetime.now(CHINA_TZ).date().isoformat()


def parse_day(text: str | None, default: str) -> str:
    if not text:
        return default
    return date.fromisoformat(text).isoformat()  # ValueError on anything else


def _sums(table: type[SQLModel]) -> list[Any]:
    t = table_of(table)
    return [func.sum(t.c[c]).label(c) for c in defs.COUNTERS] + [func.max(t.c.max_wait_s).label("max_wait_s")]


def _bucket(day: str, by: str) -> str:
    if by == "week":
        d = date.fromisoformat(day)
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"
    if by == "month":
        return day[:7]
    return day


def report(
    settings: Settings,
    start: str,
    end: str,
    by: str = "total",
    queue: str = "",
    conn: Connection | None = None,
) -> dict[str, Any]:
    """Rows of figures for ``start``..``end`` grouped ``by`` one of GROUPS, and the total."""
    if by not in GROUPS:
        raise ValueError(f"unknown grouping {by!r}")
    if by == "seat":
        return seat_report(settings, start, end, queue=queue, conn=conn)
    t = table_of(StatAggHour)
    key = {
        "total": None,
        "queue": t.c.queue,
        "did": t.c.did,
        "hour": t.c.hour,
        "day": t.c.day,
        "week": t.c.day,
        "month": t.c.day,
    }[by]
    # The doctor's test calls are not service (rolled up before they were left out, too).
    q = select(*([key] if key is not None else []), *_sums(StatAggHour)).where(
        t.c.day >= start, t.c.day <= end, t.c.queue != DIAGNOSTICS_QUEUE
    )
    if queue:
        q = q.where(t.c.queue == queue)
    if key is not None:
        q = q.group_by(key).order_by(key)
    rows: dict[Any, dict[str, float]] = defaultdict(dict)
    total: dict[str, float] = {}
    names: dict[str, str] = {}

    def run(c: Connection) -> None:
        if by in ("queue", "did"):
            found = display_names(c)
            names.update(found.queues if by == "queue" else found.numbers)
        for r in c.execute(q):
            m = r._mapping
            counts = {k: float(m[k] or 0) for k in (*defs.COUNTERS, *defs.MAX_COUNTERS)}
            k = "" if key is None else m[key.name]
            if by in ("week", "month"):
                k = _bucket(k, by)
            defs.add(rows[k], counts)
            defs.add(total, counts)

    if conn is not None:
        run(conn)
    else:
        with get_engine(settings).connect() as c:
            run(c)
    # The key is the id (queue, service number …); the name is what a person reads.
    out_rows = [
        {"key": k, "name": names.get(k) or str(k), **defs.figures(v)}
        for k, v in sorted(rows.items(), key=lambda kv: kv[0])
    ]
    if by == "total":
        out_rows = []
    return {
        "start": start,
        "end": end,
        "by": by,
        "queue": queue,
        "rows": out_rows,
        "total": defs.figures(total),
    }


def seat_names(conn: Connection) -> dict[str, str]:
    return {
        ext: (display or user)
        for user, display, ext in conn.execute(
            select(col(Account.username), col(Account.display_name), col(Account.extension)).where(
                col(Account.extension).is_not(None)
            )
        )
        if ext is not None  # the query's own filter, said again for the type checker
    }


def _midnight(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), CHINA_TZ).timestamp()


def open_intervals(
    c: Connection, start: str, end: str, now: float | None = None
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Login and pause time of intervals still open (a seat logged in or paused now), within
    ``start``..``end``: up to now while the follower is alive (it saves its cursor at least every
    ``ALIVE_EVERY_S``), up to its last sign of life when it is stopped."""
    now = time.time() if now is None else now
    lo, hi = _midnight(start), _midnight(end) + 86400  # China days (no DST in China)
    login: dict[str, float] = defaultdict(float)
    pause: dict[str, dict[str, float]] = defaultdict(dict)
    st = table_of(StatCursor)
    for state, updated in c.execute(select(st.c.state, st.c.updated_at).where(st.c.state != "")):
        try:
            s = json.loads(state)
        except ValueError:
            continue
        if not isinstance(s, dict) or not (s.get("logins") or s.get("pauses")):
            continue
        seen = (updated if updated.tzinfo else updated.replace(tzinfo=UTC)).timestamp() if updated else 0.0
        until = min(hi, now if now - seen <= 2 * ALIVE_EVERY_S else seen)
        for seat, (since, _queues) in s.get("logins", {}).items():
            if (span := until - max(lo, since)) > 0:
                login[seat] += span
        for seat, (since, reason) in s.get("pauses", {}).items():
            if (span := until - max(lo, since)) > 0:
                pause[seat][reason] = pause[seat].get(reason, 0.0) + span
    return login, pause


def seat_report(
    settings: Settings, start: str, end: str, queue: str = "", conn: Connection | None = None
) -> dict[str, Any]:
    """Per seat: calls handled, handle time, login and pause time by reason, occupancy, RNA,
    and satisfaction from the follow-ups of the orders the seat opened (orders module)."""

    def run(c: Connection) -> dict[str, Any]:
        t = table_of(StatAggSeat)
        q = (
            select(t.c.seat, *_sums(StatAggSeat))
            .where(
                t.c.day >= start,
                t.c.day <= end,
                t.c.seat != "",
                t.c.seat != settings.doctor_extension,
                t.c.queue != DIAGNOSTICS_QUEUE,
            )
            .group_by(t.c.seat)
        )
        if queue:
            q = q.where(t.c.queue == queue)
        counts: dict[str, dict[str, float]] = {}
        for r in c.execute(q):
            m = r._mapping
            counts[m["seat"]] = {k: float(m[k] or 0) for k in (*defs.COUNTERS, *defs.MAX_COUNTERS)}
        st = table_of(StatSeatTime)
        login: dict[str, float] = defaultdict(float)
        pause: dict[str, dict[str, float]] = defaultdict(dict)
        rna: dict[str, float] = defaultdict(float)
        for seat, kind, reason, secs in c.execute(
            select(st.c.seat, st.c.kind, st.c.reason, func.sum(st.c.seconds))
            .where(st.c.day >= start, st.c.day <= end, st.c.seat != settings.doctor_extension)
            .group_by(st.c.seat, st.c.kind, st.c.reason)
        ):
            if kind == "login":
                login[seat] += secs
            elif kind == "pause":
                pause[seat][reason] = pause[seat].get(reason, 0.0) + secs
            elif kind == "rna":
                rna[seat] += secs
        # Seats logged in or paused now: their open intervals count too.
        open_login, open_pause = open_intervals(c, start, end)
        open_login.pop(settings.doctor_extension, None)
        open_pause.pop(settings.doctor_extension, None)
        for seat, secs in open_login.items():
            login[seat] += secs
        for seat, reasons in open_pause.items():
            for reason, secs in reasons.items():
                pause[seat][reason] = pause[seat].get(reason, 0.0) + secs
        names = seat_names(c)
        sat = orders.satisfaction_by_seat(c, start, end)
        seats = sorted(set(counts) | set(login) | set(pause) | set(rna))
        rows = []
        total: dict[str, float] = {}
        for seat in seats:
            f = defs.seat_figures(counts.get(seat, {}), login.get(seat, 0.0), pause.get(seat, {}))
            f["rna"] = int(rna.get(seat, 0))
            f["satisfaction"] = sat.get(seat)
            rows.append({"key": seat, "name": names.get(seat, ""), **f})
            defs.add(total, counts.get(seat, {}))
        return {
            "start": start,
            "end": end,
            "by": "seat",
            "queue": queue,
            "rows": rows,
            "total": defs.figures(total),
        }

    if conn is not None:
        return run(conn)
    with get_engine(settings).connect() as c:
        return run(c)


def day_figures(settings: Settings, day: str) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The wallboard's today: figures per queue, and calls handled per seat."""
    with get_engine(settings).connect() as c:
        by_queue = report(settings, day, day, by="queue", conn=c)
        t = table_of(StatAggSeat)
        seats = {
            seat: int(n or 0)
            for seat, n in c.execute(
                select(t.c.seat, func.sum(t.c.answered))
                .where(t.c.day == day, t.c.queue != DIAGNOSTICS_QUEUE)
                .group_by(t.c.seat)
            )
        }
    return {r["key"]: r for r in by_queue["rows"]}, seats


def days_back(n: int, end: str | None = None) -> tuple[str, str]:
    e = date.fromisoformat(end or today())
    return (e - timedelta(days=n - 1)).isoformat(), e.isoformat()


def scorecard(settings: Settings, start: str, end: str) -> list[dict[str, Any]]:
    """The seat scorecard (绩效): each part scored 0–1, weighted by ``stats_score_weights``.

    handled: calls answered ÷ the most any seat answered; handle_time: target AHT ÷ the seat's
    AHT (at most 1); satisfaction: follow-up satisfaction of the seat's orders; on_time: the
    seat's orders resolved on time. A part without data is left out (its weight too). Score 0–100.
    """
    weights = settings.stats_score_weights
    with get_engine(settings).connect() as c:
        seats = seat_report(settings, start, end, conn=c)["rows"]
        by_seat = {r["key"]: r for r in orders.by_seat(c, start, end)}
    top = max([r["handled"] for r in seats] or [0])
    out = []
    for r in seats:
        o = by_seat.get(r["key"], {})
        parts = {
            "handled": r["handled"] / top if top else None,
            "handle_time": min(1.0, settings.stats_target_aht_s / r["aht_s"]) if r.get("aht_s") else None,
            "satisfaction": o.get("satisfaction"),
            "on_time": o.get("on_time_resolution"),
        }
        used = {k: v for k, v in parts.items() if v is not None and weights.get(k, 0) > 0}
        wsum = sum(weights[k] for k in used)
        score = round(100 * sum(weights[k] * v for k, v in used.items()) / wsum, 1) if wsum else None
        out.append(
            {
                "seat": r["key"],
                "name": r.get("name", ""),
                "handled": r["handled"],
                "aht_s": r.get("aht_s"),
                "satisfaction": parts["satisfaction"],
                "on_time": parts["on_time"],
                "parts": {k: (round(v, 4) if v is not None else None) for k, v in parts.items()},
                "score": score,
            }
        )
    out.sort(key=lambda x: (x["score"] is None, -(x["score"] or 0)))
    return out
