"""The audit log: who did what, to what, when and from where. Written once, never edited."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import JSON, Column, Field, SQLModel


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC), index=True)
    actor: str = Field(max_length=64, index=True)  # username
    role: str = Field(default="", max_length=16)
    action: str = Field(max_length=48, index=True)  # e.g. account.create, account.disable, login
    target: str = Field(default="", max_length=128, index=True)
    ip: str = Field(default="", max_length=64)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON))
