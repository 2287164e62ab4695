"""What the statistics keep: one row per queue call, additive roll-ups, seat time, the log cursor.

``stat_call`` is the reconciled record of each caller's stay in a queue (from queue_log, joined to
the AMI call record by ``linkedid``). The roll-ups hold the additive counters of
``definitions.COUNTERS`` per (day, hour, queue, service number) and per (day, queue, seat), so a
report over a year sums a few tens of thousands of rows instead of a million calls.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class StatCall(SQLModel, table=True):
    __tablename__ = "stat_call"
    __table_args__ = (UniqueConstraint("callid", "seq", name="uq_stat_call_callid_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    callid: str = Field(max_length=64, index=True)  # the caller channel's uniqueid (queue_log)
    seq: int = 0  # 0: first queue; 1, 2…: entered another queue after a transfer
    linkedid: str = Field(default="", max_length=64, index=True)
    queue: str = Field(default="", max_length=32)
    did: str = Field(default="", max_length=32)
    caller: str = Field(default="", max_length=40, index=True)
    seat: str = Field(default="", max_length=64)  # extension of the seat who answered
    entered_at: datetime = Field(index=True)
    ended_at: datetime | None = None
    day: str = Field(max_length=10, index=True)  # China Standard Time
    hour: int = 0
    outcome: str = Field(default="", max_length=16)  # definitions.OUTCOMES
    wait_s: float | None = None
    ring_s: float | None = None
    talk_s: float | None = None
    wrap_s: float | None = None
    rna: int = 0  # seats whose phone rang out unanswered before this call was answered or left
    transfer: str = Field(default="", max_length=16)  # blind | attended
    transfer_to: str = Field(default="", max_length=80)
    exit_key: str = Field(default="", max_length=8)
    called_back: bool = False
    # callback in queue: requested | connected | failed (the call that booked one), call (ours)
    callback: str = Field(default="", max_length=16)


COUNTER_COLUMNS = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "timeout",
    "exit_key",
    "exit_empty",
    "lost",
    "answered_in_sl",
    "abandoned_in_sl",
    "transfers_blind",
    "transfers_attended",
    "rna",
    "callbacks",
    "callbacks_requested",
    "callbacks_connected",
    "callbacks_failed",
)
SUM_COLUMNS = ("wait_answered_s", "talk_s", "wrap_s")


class _Counters(SQLModel):
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    timeout: int = 0
    exit_key: int = 0
    exit_empty: int = 0
    lost: int = 0
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0
    transfers_blind: int = 0
    transfers_attended: int = 0
    rna: int = 0
    callbacks: int = 0
    callbacks_requested: int = 0
    callbacks_connected: int = 0
    callbacks_failed: int = 0
    wait_answered_s: float = 0.0
    talk_s: float = 0.0
    wrap_s: float = 0.0
    max_wait_s: float = 0.0


class StatAggHour(_Counters, table=True):
    __tablename__ = "stat_agg_hour"
    __table_args__ = (UniqueConstraint("day", "hour", "queue", "did", name="uq_stat_agg_hour"),)

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(max_length=10, index=True)
    hour: int = 0
    queue: str = Field(default="", max_length=32)
    did: str = Field(default="", max_length=32)


class StatAggSeat(_Counters, table=True):
    __tablename__ = "stat_agg_seat"
    __table_args__ = (UniqueConstraint("day", "queue", "seat", name="uq_stat_agg_seat"),)

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(max_length=10, index=True)
    queue: str = Field(default="", max_length=32)
    seat: str = Field(default="", max_length=64)


class StatSeatTime(SQLModel, table=True):
    """A seat's time per day: logged in (kind 'login'), paused by reason ('pause')."""

    __tablename__ = "stat_seat_time"
    __table_args__ = (UniqueConstraint("day", "seat", "kind", "reason", name="uq_stat_seat_time"),)

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(max_length=10, index=True)
    seat: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    reason: str = Field(default="", max_length=64)
    seconds: float = 0.0


class StatCursor(SQLModel, table=True):
    """Where reading queue_log stopped: the file's identity, the offset, and the open calls."""

    __tablename__ = "stat_cursor"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    device: int = Field(default=0, sa_type=BigInteger)
    inode: int = Field(default=0, sa_type=BigInteger)
    head: str = Field(default="", max_length=64)  # hash of the file's first line
    offset: int = Field(default=0, sa_type=BigInteger)
    # JSON: calls still in a queue, seats' open login and pause intervals
    state: str = Field(default="", sa_type=Text)
    lines: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime | None = None


class StatOrderDay(SQLModel, table=True):
    """Work orders received per China-time day, per grouping (type, category, community, outlet,
    seat) and key: the counters behind the order rates (orders.py keeps it fresh)."""

    __tablename__ = "stat_order_day"
    __table_args__ = (UniqueConstraint("dim", "day", "key", name="uq_stat_order_day"),)

    id: int | None = Field(default=None, primary_key=True)
    dim: str = Field(max_length=16)
    day: str = Field(max_length=10)
    key: str = Field(default="", max_length=80)
    orders: int = 0
    accept_on_time: int = 0
    accept_due: int = 0
    resolve_on_time: int = 0
    resolve_due: int = 0
    resolved: int = 0
    returned: int = 0
    rehandled: int = 0
    followed_up: int = 0
    satisfied: int = 0
    answered: int = 0  # 直接答复 on the call


class DiagnosticRun(SQLModel, table=True):
    """One run of ``callcenter doctor``: kept apart from the service figures, with its timings."""

    __tablename__ = "diagnostic_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(index=True)
    ok: bool = False
    linkedid: str = Field(default="", max_length=64)  # the test call, when one was placed
    # The doctor's JSON report: each hop's milliseconds and the verdict
    report: str = Field(default="", sa_type=Text)
