"""Grid event and approval records, and the webhook outbox that pushes them.

One record per order (unique on the order's number); each change bumps ``version`` and queues a
delivery keyed ``<kind>:<number>:<version>`` — the receiver sees the same ``Idempotency-Key``
header on every retry of one version and can keep the newest version per number.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import JSON, Column, Field, SQLModel

from callcenter.clock import utcnow


class GridEvent(SQLModel, table=True):
    """网格事件: what the grid management platform tracks for an order."""

    __tablename__ = "grid_event"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="workorder.id", unique=True)
    order_number: str = Field(unique=True, max_length=32)
    grid_id: int | None = Field(default=None, foreign_key="grid.id")
    grid: str = Field(default="", max_length=64)
    community: str = Field(default="", max_length=64)
    category: str = Field(default="", max_length=64)
    location: str = Field(default="", max_length=255)
    status: str = Field(default="", max_length=16)
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class ApprovalRecord(SQLModel, table=True):
    """审批办件: an order about an approval matter, as the approval platform tracks it."""

    __tablename__ = "approval_record"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="workorder.id", unique=True)
    order_number: str = Field(unique=True, max_length=32)
    matter: str = Field(default="", max_length=64)
    applicant: str = Field(default="", max_length=64)
    status: str = Field(default="", max_length=16)  # 受理 / 办理中 / 办结 / 退回
    outcome: str = Field(default="", max_length=1000)
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One version of one record to push to one URL (the webhook outbox)."""

    __tablename__ = "webhook_delivery"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=128)
    kind: str = Field(max_length=16)  # grid | approval
    order_number: str = Field(max_length=32, index=True)
    url: str = Field(max_length=500)
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = Field(default="queued", max_length=16, index=True)  # queued | sending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_at: datetime | None = None
    response_status: int | None = None
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class Open311Token(SQLModel, table=True):
    """A token handed out by Open311 ``POST requests.json`` (GeoReport v2 ``tokens/{token}``)."""

    __tablename__ = "open311_token"

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(unique=True, max_length=64)
    order_id: int = Field(foreign_key="workorder.id", index=True)
    client: str = Field(default="", max_length=64)  # which api_key (its fingerprint), for the audit
    created_at: datetime = Field(default_factory=utcnow)


class MailMessage(SQLModel, table=True):
    """The e-mail outbox: order notices and daily summaries, written with the change that caused
    them and sent by the messaging worker (``idempotency_key``: never the same notice twice)."""

    __tablename__ = "mail_message"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=128)
    to: list = Field(default_factory=list, sa_column=Column(JSON))
    subject: str = Field(max_length=255)
    text: str
    html: str | None = None
    order_id: int | None = Field(default=None, foreign_key="workorder.id", index=True)
    status: str = Field(default="queued", max_length=16, index=True)  # queued | sending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_at: datetime | None = None
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
