"""Claiming due rows of an outbox table (e-mail, webhook deliveries) for one worker.

A row is ``queued`` until a worker claims it (``sending``, ``claimed_at``, one more attempt) with
a conditional update, so two workers never take the same row; a row left ``sending`` longer than
``stale_s`` by a worker that died is queued again (receivers de-duplicate by idempotency key).
The table needs ``id``, ``status``, ``claimed_at``, ``next_attempt_at`` and ``attempts``.

A row a worker gave up on (a permanent error, or too many attempts) is ``failed``: a dead letter
that stays until a supervisor retries it on the messaging desk (``requeue_failed``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from callcenter.config import Settings
from callcenter.database import session_scope


def claim_due(settings: Settings, model: Any, batch: int, stale_s: float) -> list[Any]:
    now = datetime.now(UTC)
    out: list[Any] = []
    with session_scope(settings) as s:
        # Polled every second while nothing is due: one read, not a write transaction (an
        # UPDATE and its commit, to SQLite a file sync) each time.
        work = s.exec(
            select(model.id)
            .where(
                ((model.status == "queued") & (model.next_attempt_at <= now))
                | ((model.status == "sending") & (model.claimed_at < now - timedelta(seconds=stale_s)))
            )
            .limit(1)
        ).first()
        if work is None:
            return out
        s.exec(
            update(model)
            .where(model.status == "sending", model.claimed_at < now - timedelta(seconds=stale_s))
            .values(status="queued")
        )
        s.commit()
        ids = s.exec(
            select(model.id)
            .where(model.status == "queued", model.next_attempt_at <= now)
            .order_by(model.id)
            .limit(batch)
        ).all()
        for i in ids:
            r = s.exec(
                update(model)
                .where(model.id == i, model.status == "queued")
                .values(status="sending", claimed_at=now, attempts=model.attempts + 1)
            )
            s.commit()
            if r.rowcount == 1:
                row = s.get(model, i)
                if row is not None:
                    out.append(row)
    return out


FAILED = "failed"


def failed_rows(session: Session, model: Any, limit: int) -> list[Any]:
    """The dead letters of an outbox table, oldest first."""
    query = select(model).where(model.status == FAILED).order_by(col(model.id)).limit(limit)
    return list(session.exec(query))


def count_failed(session: Session, model: Any) -> int:
    return session.exec(select(func.count()).select_from(model).where(model.status == FAILED)).one()


def requeue_failed(session: Session, model: Any, row_id: int) -> bool:
    """A dead letter queued again now, with its attempts counted afresh (no commit). False when
    the row is not (or no longer) failed: two supervisors retrying at once send it once."""
    result = session.exec(
        update(model)
        .where(model.id == row_id, model.status == FAILED)
        .values(status="queued", attempts=0, next_attempt_at=datetime.now(UTC), claimed_at=None)
    )
    return result.rowcount == 1
