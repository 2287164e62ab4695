"""The hotline's voice menu (IVR), opening hours per service number, and what callers leave
out of hours (voicemail, callback requests). Administrators edit the first two; the dialplan is
rendered from them (asterisk_conf/render.py), never written by hand."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class IvrOption(SQLModel, table=True):
    """One key of a service number's menu: the queue (skill) it leads to and the order category
    the seat starts from. A service number without options has no menu (straight to its queue)."""

    __tablename__ = "ivr_option"
    __table_args__ = (UniqueConstraint("number", "digit", name="uq_ivr_option_number_digit"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, max_length=32)  # the service number (DID)
    digit: str = Field(max_length=1)  # 0-9
    queue_name: str = Field(max_length=32)
    category: str = Field(default="", max_length=64)  # the work-order category it suggests
    label: str = Field(default="", max_length=64)  # what the seat's pop shows
    prompt_text: str = Field(default="", max_length=200)  # spoken in Mandarin (espeak-ng)
    # sha256 of an administrator's recorded file used instead of the spoken text ("": none)
    prompt_upload: str = Field(default="", max_length=64)


class ServiceHours(SQLModel, table=True):
    """When a service number is staffed. ``schedule``: ``always`` (24 h), ``daily`` (every day
    between open and close) or ``workdays`` (China's working days: public holidays off, make-up
    working days on, from chinese-calendar). Out of hours callers may leave a voicemail or ask
    for a callback. A service number without a row is always open."""

    __tablename__ = "service_hours"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, unique=True, max_length=32)
    schedule: str = Field(default="workdays", max_length=16)
    open_time: str = Field(default="08:30", max_length=5)  # HH:MM, China time
    close_time: str = Field(default="17:30", max_length=5)  # HH:MM; 24:00 allowed
    # What the caller hears out of hours, spoken (empty: made from the hours).
    closed_text: str = Field(default="", max_length=300)


class CallerRequest(SQLModel, table=True):
    """A voicemail or a callback request left out of hours: an item for the seats next morning."""

    __tablename__ = "caller_request"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # voicemail | callback
    linkedid: str = Field(default="", index=True, max_length=64)
    caller: str = Field(default="", max_length=40)  # E.164 when possible
    caller_raw: str = Field(default="", max_length=80)
    resident_id: int | None = Field(default=None, index=True)
    did: str = Field(default="", max_length=32)
    recording: str = Field(default="", max_length=128)  # file name in the voicemail folder
    created_at: datetime = Field(index=True)
    done_at: datetime | None = None
    done_by: str = Field(default="", max_length=64)
