"""Writing and searching the audit log. There is no update or delete here, and the database
refuses both (triggers from the migration), so not even a bug can rewrite history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from callcenter.audit.models import AuditEntry


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    role: str = "",
    ip: str = "",
    **detail: Any,
) -> AuditEntry:
    """Add an entry to the caller's transaction: it commits with the change it describes."""
    entry = AuditEntry(actor=actor, role=role, action=action, target=target[:128], ip=ip[:64], detail=detail)
    session.add(entry)
    return entry


def search(
    session: Session,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    query = select(AuditEntry)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(col(AuditEntry.action).startswith(action))
    if target:
        query = query.where(col(AuditEntry.target).contains(target, autoescape=True))
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    return list(
        session.exec(query.order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc()).limit(limit))
    )
