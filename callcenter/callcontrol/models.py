"""What call control keeps: callbacks waiting for a free seat, and follow-up calls (回访).

Recordings need no table of their own: the file name is a column of the call record
(``CallRecord.recording``), built from Asterisk's uniqueid, never from caller data.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from callcenter.clock import utcnow


class Callback(SQLModel, table=True):
    """A caller to call back when a seat is free: one who pressed the callback key in the queue
    (``requested``), or a missed call (漏接): hung up while waiting (``abandoned``) or called
    out of hours (``closed``). Missed calls from one number merge into one item; a missed one
    is called seat first (the seat's phone rings, then the resident's). An item whose automatic
    calls never reached the resident becomes a seat's ``task``, as does a follow-up (回访) that
    neither the call nor the SMS got an answer to (``followup``, the order in ``reference``)."""

    id: int | None = Field(default=None, primary_key=True)
    linkedid: str = Field(default="", max_length=64, index=True)  # the call that asked for it
    phone: str = Field(max_length=40)  # E.164; a refused one: the caller ID as it came (shown only)
    queue: str = Field(default="", max_length=32)
    requested_at: datetime = Field(default_factory=utcnow, index=True)
    # waiting | calling | done | failed | refused (by the dial-out policy, its reason in ``outcome``)
    # | task (the automatic calls did not reach the resident: a seat's to do, until one marks it)
    status: str = Field(default="waiting", max_length=16, index=True)
    attempts: int = 0
    last_attempt_at: datetime | None = None
    seat: str = Field(default="", max_length=16)  # who talked to the resident in the end
    outcome: str = Field(default="", max_length=32)  # answered | noanswer | busy | ...
    done_at: datetime | None = None
    kind: str = Field(default="requested", max_length=16)  # requested | abandoned | closed | followup
    did: str = Field(default="", max_length=32)  # the number called (its opening hours apply)
    missed_count: int = 1  # missed calls merged into this item
    last_missed_at: datetime | None = None
    first_dialled_at: datetime | None = None  # the resident's phone first dialled back
    call_linkedid: str = Field(default="", max_length=64)  # the call that called back
    reference: str = Field(default="", max_length=64)  # a follow-up task's order (its number)


class FollowUp(SQLModel, table=True):
    """A follow-up call asking the resident to rate the service by keypad (1 best … 5 worst).

    ``reference`` is opaque to telephony (a work order number from dispatch, for example): the
    result is published on the bus with it, and the requester stores it where it belongs."""

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=64, index=True)
    phone: str = Field(max_length=40)
    requested_at: datetime = Field(default_factory=utcnow)
    status: str = Field(
        default="pending", max_length=16, index=True
    )  # pending | calling | rated | unreachable
    attempts: int = 0
    last_attempt_at: datetime | None = None
    rating: int | None = None  # 1 very satisfied … 5 very dissatisfied
    done_at: datetime | None = None
