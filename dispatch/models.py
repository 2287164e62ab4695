"""Work orders (工单) and what dispatch keeps around them: the category tree, the order's history,
linked calls, attachments, service areas and routing rules.

Statuses and actions are the Chinese terms of 12345 practice (they are what seats, outlets and
SMS replies say), stored as such; the enums give them English names. ``dispatch.transitions``
holds the state machine.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum, nonmember
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import JSON, Column, Field, SQLModel

from callcenter.clock import utcnow

ORDER_TYPES: tuple[str, ...] = ("咨询", "求助", "投诉", "举报", "建议", "表扬")
# The 回访's result; a dissatisfied order waits for a supervisor's 重办 review (re-open or close)
SATISFACTION: tuple[str, ...] = ("满意", "基本满意", "不满意")
DISSATISFIED = SATISFACTION[2]
URGENCIES: tuple[str, ...] = ("normal", "urgent")


class Status(StrEnum):
    """An order's status; the values are what the database stores (and what people read)."""

    RECEIVED = "受理"  # taken, not yet dispatched
    DISPATCHED = "已派单"
    ACCEPTED = "已签收"
    IN_PROGRESS = "办理中"
    RESOLVED = "已办结"
    FOLLOWED_UP = "已回访"
    CLOSED = "已归档"
    RETURNED = "已退单"
    MERGED = "已并单"

    OPEN = nonmember(frozenset({RECEIVED, DISPATCHED, ACCEPTED, IN_PROGRESS, RETURNED}))
    AT_OUTLET = nonmember(frozenset({DISPATCHED, ACCEPTED, IN_PROGRESS}))
    FINAL = nonmember(frozenset({CLOSED, MERGED}))


class Action(StrEnum):
    """What is done to an order; the values are the history's ``action`` (and the SMS keywords)."""

    RECEIVE = "受理"  # taking the order (creation, not a transition)
    ANSWER = "直接答复"
    DISPATCH = "派单"
    REDISPATCH = "改派"
    ACCEPT = "签收"
    PROGRESS = "办理"
    RESOLVE = "办结"
    RETURN = "退单"
    EXTEND = "延期"
    APPROVE_EXTENSION = "延期审批"
    REMIND = "催办"
    SUPERVISE = "督办"
    FOLLOW_UP = "回访"
    REVIEW = "审核"
    REOPEN = "重办"
    MERGE = "并单"
    CLOSE = "归档"


class Category(SQLModel, table=True):
    """A node of the category tree (kept as data; seeded by the migration's callers and the demo)."""

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(default=None, foreign_key="category.id", index=True)
    code: str = Field(index=True, unique=True, max_length=32)
    name: str = Field(max_length=64)
    # Matters the approval platform (审批平台) tracks as 办件.
    approval_matter: bool = False
    active: bool = True
    # The national six-digit code of the matter (GB/T 39666-2020 style), optional (migration 0011).
    national_code: str = Field(default="", max_length=6)


class WorkOrder(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, unique=True, max_length=32)  # readable: GD20261128-00001
    resident_id: int | None = Field(default=None, foreign_key="resident.id", index=True)
    call_linkedid: str = Field(default="", max_length=64, index=True)  # the call it was taken on
    order_type: str = Field(default="咨询", max_length=8)
    category: str = Field(default="", max_length=64)  # the category's name, as shown
    status: str = Field(default=Status.RECEIVED.value, max_length=16, index=True)
    summary: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # --- added by the dispatch migration (0003) ---
    # The numeric code outlets quote in SMS replies ("签收 1234"); ``open_code`` holds it while the
    # order is open and is NULL after, so a unique index makes it unique among open orders only.
    short_code: str = Field(default="", max_length=8)
    open_code: str | None = Field(default=None, unique=True, index=True, max_length=8)
    category_id: int | None = Field(default=None, foreign_key="category.id", index=True)
    urgency: str = Field(default="normal", max_length=8)
    caller_phone: str = Field(default="", max_length=40)
    caller_name: str = Field(default="", max_length=64)
    community_id: int | None = Field(default=None, foreign_key="community.id", index=True)
    grid_id: int | None = Field(default=None, foreign_key="grid.id")
    address: str = Field(default="", max_length=255, index=True)  # repeat orders at one address
    outlet_id: int | None = Field(default=None, foreign_key="outlet.id", index=True)
    suggested_outlet_id: int | None = Field(default=None, foreign_key="outlet.id")
    created_by: str = Field(default="", max_length=64)
    dispatched_at: datetime | None = None
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    deadline_at: datetime | None = Field(default=None, index=True)
    accept_due_at: datetime | None = None  # 签收 expected by then (set on each dispatch)
    remind_at: datetime | None = None
    reminded_at: datetime | None = None
    supervised_at: datetime | None = None
    extension_requested_until: datetime | None = None
    extension_reason: str = Field(default="", max_length=255)
    resolution: str = Field(default="", max_length=1000)
    return_reason: str = Field(default="", max_length=255)
    satisfaction: str = Field(default="", max_length=16)  # SATISFACTION
    reviewed: bool = False  # complaints: a supervisor's review before closing
    # Listed on the public Open311 read API (a supervisor's choice, e.g. a road repair the whole
    # community may follow); a hotline order is confidential until then.
    public: bool = False
    reopen_count: int = 0
    return_count: int = 0  # 退单 by outlets (the return rate, 回退率)
    repeat_of_id: int | None = Field(default=None, foreign_key="workorder.id")  # flagged, not merged
    merged_into_id: int | None = Field(default=None, foreign_key="workorder.id")
    updated_at: datetime = Field(default_factory=utcnow)
    # The resident's six-digit query code (提取码), sent with the order number in the receipt SMS.
    query_code: str = Field(default="", max_length=6)
    # The resident's own rating and words from the resident's page (shown to staff, never re-sent)
    resident_comment: str = Field(default="", max_length=500)


class OrderHistory(SQLModel, table=True):
    """Every transition of an order: who, when, from which status to which, and why."""

    __tablename__ = "order_history"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="workorder.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=64)
    role: str = Field(default="", max_length=16)
    action: str = Field(max_length=16)
    from_status: str = Field(default="", max_length=16)
    to_status: str = Field(default="", max_length=16)
    note: str = Field(default="", max_length=1000)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON))


class OrderCall(SQLModel, table=True):
    """A call linked to an order (the one it was taken on, and later calls about it)."""

    __tablename__ = "order_call"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="workorder.id", index=True)
    linkedid: str = Field(max_length=64, index=True)
    recording: str = Field(default="", max_length=255)  # file name under the recordings folder
    linked_at: datetime = Field(default_factory=utcnow)


class OrderAttachment(SQLModel, table=True):
    __tablename__ = "order_attachment"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="workorder.id", index=True)
    filename: str = Field(max_length=128)  # as uploaded (shown escaped)
    content_type: str = Field(max_length=64)
    size: int
    stored_as: str = Field(max_length=128)  # random name under <data_dir>/attachments/
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = Field(default_factory=utcnow)


class RoutingRule(SQLModel, table=True):
    """Orders of this category (or any below it) in this community / service area go to this outlet.

    Empty category, community and area are wildcards; the most specific match wins, then the
    lowest ``priority``.
    """

    __tablename__ = "routing_rule"

    id: int | None = Field(default=None, primary_key=True)
    category_id: int | None = Field(default=None, foreign_key="category.id", index=True)
    community_id: int | None = Field(default=None, foreign_key="community.id")
    area_id: int | None = Field(default=None, foreign_key="service_area.id")
    outlet_id: int = Field(foreign_key="outlet.id")
    priority: int = 100
    active: bool = True
    # --- migration 0011: grids, validity dates (China dates, both inclusive), a note ---
    grid_id: int | None = Field(default=None, foreign_key="grid.id")
    valid_from: date | None = None
    valid_until: date | None = None
    note: str = Field(default="", max_length=255)


class ConfigStamp(SQLModel, table=True):
    """A counter per part of the administrators' configuration (``routing`` …), bumped in the
    transaction of every change: each process compares it with the one its cache was built from,
    so a change applies to the very next lookup on every web worker and the engine."""

    __tablename__ = "config_stamp"

    name: str = Field(primary_key=True, max_length=32)
    version: int = 0


class OutletLink(SQLModel, table=True):
    """A link to one order's page, e-mailed to the outlet that holds it. The signed token names
    this row by its nonce: the link works only while the row says so (same order and outlet, not
    expired, not revoked)."""

    __tablename__ = "outlet_link"

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(max_length=32, unique=True, index=True)
    order_id: int = Field(foreign_key="workorder.id", index=True)
    outlet_id: int = Field(foreign_key="outlet.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class Holiday(SQLModel, table=True):
    """A day of the holiday calendar entered by an administrator (or imported from the State
    Council's notice): a public holiday, or a make-up working day (调休上班) on a weekend. A year
    with any row here is known; its other days follow the week (Monday to Friday work)."""

    __tablename__ = "holiday"

    day: date = Field(primary_key=True)
    workday: bool = False  # True: a make-up working day
    name: str = Field(default="", max_length=32)  # 春节, 国庆节 …


class MessageTemplate(SQLModel, table=True):
    """An administrator's text for one registered message (``dispatch.message_templates``): the
    body (and an e-mail's subject) with named ``{variables}``, and the domestic provider's
    registered template code with the mapping of its parameter names to our variables. No row:
    the registry's default text."""

    __tablename__ = "message_template"

    name: str = Field(primary_key=True, max_length=48)
    body: str = Field(max_length=4000)
    subject: str = Field(default="", max_length=200)  # an e-mail's
    provider_code: str = Field(default="", max_length=32)
    param_map: dict = Field(default_factory=dict, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = Field(default="", max_length=64)


class OperationalSetting(SQLModel, table=True):
    """An administrator's value for one operational setting (``dispatch.operations``: pause
    reasons, supervisors' contacts, report recipients …); no row: the environment's value."""

    __tablename__ = "operational_setting"

    name: str = Field(primary_key=True, max_length=48)
    value: Any = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = Field(default="", max_length=64)


class DeadlinePolicy(SQLModel, table=True):
    """An administrator's deadline policy for one order type and urgency (without a row, the
    defaults in ``dispatch.deadlines`` hold): the completion limit in working days or hours, the
    acceptance (签收) limit, the reminder's (催办) lead time and who hears of a supervision (督办)."""

    __tablename__ = "deadline_policy"
    __table_args__ = (UniqueConstraint("order_type", "urgency"),)

    id: int | None = Field(default=None, primary_key=True)
    order_type: str = Field(max_length=8)
    urgency: str = Field(max_length=8)
    amount: int  # the completion limit
    unit: str = Field(default="workdays", max_length=8)  # workdays | hours
    accept_minutes: int = 120
    remind_lead_hours: int = 0  # 0: one working day before (a quarter of an hours limit)
    escalate_to: str = Field(default="", max_length=255)  # E.164 mobiles and e-mail addresses
