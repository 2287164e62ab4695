"""The doctor's runs and test calls: kept apart from the service figures, shown on their own page.

``callcenter doctor`` records each run here with the timings of every hop; its test calls go
through the diagnostics queue (``ids.DIAGNOSTICS_QUEUE``), whose calls the follower writes as
calls but never rolls up, so the wallboard, the reports and the exports never count them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from callcenter.database import table_of
from callcenter.ids import DIAGNOSTICS_QUEUE
from callcenter.statistics.models import DiagnosticRun, StatCall

# The hops of a run as the doctor reports them (milliseconds), in the order a call takes them.
TIMINGS = (
    "db_ms",
    "redis_ms",
    "ami_login_ms",
    "invite_to_route_ms",
    "route_to_agent_called_ms",
    "agent_called_to_pop_ms",
)


def record_run(session: Session, started_at: datetime, report: dict[str, Any], linkedid: str = "") -> None:
    session.add(
        DiagnosticRun(
            started_at=started_at,
            ok=report.get("doctor") == "ok",
            linkedid=linkedid[:64],
            report=json.dumps(report, ensure_ascii=False),
        )
    )


def recent_runs(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs, newest first, each with its timings (None for a hop not reached)."""
    out = []
    newest = select(DiagnosticRun).order_by(col(DiagnosticRun.started_at).desc()).limit(limit)
    for run in session.exec(newest):
        try:
            report = json.loads(run.report) if run.report else {}
        except ValueError:
            report = {}
        if not isinstance(report, dict):
            report = {}
        out.append(
            {
                "started_at": _utc(run.started_at),
                "ok": run.ok,
                "linkedid": run.linkedid,
                "timings": {k: report.get(k) for k in TIMINGS},
            }
        )
    return out


def recent_calls(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """The diagnostics queue's calls as the follower wrote them (wait, ring and talk times)."""
    t = table_of(StatCall)
    rows = session.connection().execute(
        sa_select(t.c.entered_at, t.c.linkedid, t.c.seat, t.c.outcome, t.c.wait_s, t.c.ring_s, t.c.talk_s)
        .where(t.c.queue == DIAGNOSTICS_QUEUE)
        .order_by(t.c.entered_at.desc())
        .limit(limit)
    )
    out = []
    for r in rows:
        call = dict(r._mapping)
        call["entered_at"] = _utc(call["entered_at"])
        out.append(call)
    return out


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at  # SQLite gives UTC without a zone
