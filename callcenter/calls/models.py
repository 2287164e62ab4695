"""What the hotline keeps of each call: one call record per call, and the queue events behind it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import JSON, Column, Field, SQLModel

# A call whose end the engine did not see (its AMI connection was down while Asterisk ran on):
# the statistics follower settles it from queue_log (statistics/follower.py).
UNSETTLED = "unsettled"


class CallRecord(SQLModel, table=True):
    # A caller's latest call (the route offers it to the same seat first)
    __table_args__ = (Index("ix_callrecord_caller_started_at", "caller", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    linkedid: str = Field(index=True, unique=True, max_length=64)
    caller: str = Field(default="", max_length=40, index=True)  # normalised (E.164) when possible
    caller_raw: str = Field(default="", max_length=80)
    caller_name: str = Field(default="", max_length=80)  # as the caller sent it: untrusted
    did: str = Field(default="", max_length=32)
    source: str = Field(default="carrier", max_length=16)  # carrier | 12345
    order_12345: str = Field(default="", max_length=64)
    summary_12345: str = Field(default="", max_length=500)
    resident_id: int | None = Field(default=None, index=True)
    queue: str = Field(default="", max_length=32)
    seat: str = Field(default="", max_length=16)  # extension of the seat who answered
    started_at: datetime = Field(index=True)
    ended_at: datetime | None = None
    wait_s: float | None = None  # queue entry to answer (or to abandon)
    ring_s: float | None = None  # seat's phone ringing to answer
    # The hotline answering to the first seat's phone ringing (GB/T 33358's 15 s starts at answer)
    first_ring_s: float | None = None
    talk_s: float | None = None
    # answered | abandoned | timeout | ivr | failed, or UNSETTLED until queue_log tells
    outcome: str = Field(default="", max_length=16)
    # The menu key the caller chose (or invalid / timeout) and its category
    ivr_choice: str = Field(default="", max_length=16)
    ivr_category: str = Field(default="", max_length=64)
    recording: str = Field(default="", max_length=96)  # file in Asterisk's spool/monitor, or ""


class QueueEventRow(SQLModel, table=True):
    __tablename__ = "queue_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    linkedid: str = Field(default="", index=True, max_length=64)
    event: str = Field(max_length=32)
    queue: str = Field(default="", max_length=32)
    interface: str = Field(default="", max_length=64)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON))
