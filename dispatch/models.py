"""Work orders (工单). The lifecycle and dispatch arrive with the dispatch issue; the pop counts them now."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


class WorkOrder(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, unique=True, max_length=32)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", index=True)
    call_linkedid: str = Field(default="", max_length=64, index=True)
    order_type: str = Field(default="咨询", max_length=8)
    category: str = Field(default="", max_length=64)
    status: str = Field(default="受理", max_length=16)
    summary: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC), index=True)
