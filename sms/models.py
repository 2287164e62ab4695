"""The SMS outbox (one row per message, written in the same transaction as the order change that
caused it) and the inbound replies seen (their provider ids, so a replayed webhook is refused)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import JSON, Column, Field, SQLModel

from callcenter.clock import utcnow


class SmsStatus:
    QUEUED = "queued"  # waiting in the outbox (also: waiting for a retry)
    SENDING = "sending"  # claimed by a worker; the provider may or may not have it
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the provider's status callback said so
    UNDELIVERED = "undelivered"
    FAILED = "failed"  # given up (permanent error or too many attempts)

    DUE: frozenset[str] = frozenset({QUEUED})


class SmsMessage(SQLModel, table=True):
    __tablename__ = "sms_message"

    id: int | None = Field(default=None, primary_key=True)
    # The caller's key for "this notice about this order": enqueueing twice keeps one message.
    idempotency_key: str = Field(unique=True, max_length=128)
    to: str = Field(max_length=20, index=True)  # E.164
    body: str = Field(max_length=1000)
    segments: int = 1
    order_id: int | None = Field(default=None, foreign_key="workorder.id", index=True)
    status: str = Field(default=SmsStatus.QUEUED, max_length=16, index=True)
    provider: str = Field(default="", max_length=16)
    provider_id: str = Field(default="", max_length=64, index=True)  # Twilio's SID, Aliyun's BizId
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_at: datetime | None = None
    claimed_by: str = Field(default="", max_length=64)
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    # A domestic provider's registered template for this text and its parameters (migration
    # 0011); empty: the provider's default template with the whole text as ``content``.
    template_code: str = Field(default="", max_length=32)
    template_params: dict = Field(default_factory=dict, sa_column=Column(JSON))
    # Every status callback as the provider sent it (status, error code, time).
    callbacks: list = Field(default_factory=list, sa_column=Column(JSON))


class SmsInbound(SQLModel, table=True):
    """A reply received on the webhook. ``provider_id`` is unique: the same MessageSid twice is a replay."""

    __tablename__ = "sms_inbound"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    provider_id: str = Field(unique=True, max_length=64)
    sender: str = Field(max_length=40)
    body: str = Field(max_length=1600)
    received_at: datetime = Field(default_factory=utcnow)
    outcome: str = Field(default="", max_length=32)  # applied | unknown_sender | unknown_code | ...
    order_id: int | None = Field(default=None, foreign_key="workorder.id")
