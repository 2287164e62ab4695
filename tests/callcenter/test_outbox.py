"""Claiming due outbox rows (e-mail here; webhook deliveries share the code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event
from sqlmodel import select

from callcenter.database import get_engine, session_scope
from callcenter.mail import MailMessage, enqueue_mail
from callcenter.outbox import claim_due


def _writes(settings) -> list[str]:
    seen: list[str] = []

    @event.listens_for(get_engine(settings), "before_cursor_execute")
    def _count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            seen.append(statement)

    return seen


def test_nothing_due_is_one_read_and_a_stale_claim_is_taken_again(settings):
    with session_scope(settings) as s:
        later = enqueue_mail(s, ["a@example.org"], "稍后", "x", idempotency_key="later")
        stale = enqueue_mail(s, ["b@example.org"], "中断", "y", idempotency_key="stale")
        assert later is not None and stale is not None
        later.next_attempt_at = stale.next_attempt_at = datetime.now(UTC) + timedelta(hours=1)
        s.commit()
        stale_id = stale.id
    writes = _writes(settings)
    # Nothing due (both wait for a retry): no write at all.
    assert claim_due(settings, MailMessage, 16, stale_s=60) == []
    assert writes == []
    # A worker died with the row "sending" for longer than stale_s: queued again and claimed.
    with session_scope(settings) as s:
        row = s.get(MailMessage, stale_id)
        row.status, row.claimed_at = "sending", datetime.now(UTC) - timedelta(seconds=120)
        row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        s.commit()
    [taken] = claim_due(settings, MailMessage, 16, stale_s=60)
    assert taken.id == stale_id and taken.status == "sending" and taken.attempts == 1
    with session_scope(settings) as s:
        assert [
            m.idempotency_key for m in s.exec(select(MailMessage).where(MailMessage.status == "queued"))
        ] == ["later"]
