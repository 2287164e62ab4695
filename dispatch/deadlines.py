"""Deadlines (办理时限): per order type and urgency, in working days (Chinese public holidays and
make-up working days: ``dispatch.holidays``, the administrators' calendar over ``chinese-calendar``)
or in hours for urgent orders. A day of a year no calendar knows counts as a plain weekday and the
year is added to the caller's ``assumed`` set, so the order's history says so (never silently).

A working-day deadline falls at the close of business (18:00 China time) of the N-th working day
after the day the order was dispatched; the reminder (催办) goes out one working day before it, or
a quarter of the time before an hours deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from callcenter.config import CHINA_TZ
from dispatch.holidays import Calendar, plain

CLOSE_OF_BUSINESS = time(18, 0)


@dataclass(frozen=True)
class Limit:
    amount: int
    unit: str  # "workdays" | "hours"


# 12345 practice: inquiries are answered fastest, complaints and reports get the longest.
DEFAULT_LIMITS: dict[tuple[str, str], Limit] = {
    ("咨询", "normal"): Limit(1, "workdays"),
    ("求助", "normal"): Limit(3, "workdays"),
    ("投诉", "normal"): Limit(5, "workdays"),
    ("举报", "normal"): Limit(5, "workdays"),
    ("建议", "normal"): Limit(5, "workdays"),
    ("表扬", "normal"): Limit(3, "workdays"),
    ("咨询", "urgent"): Limit(4, "hours"),
    ("求助", "urgent"): Limit(2, "hours"),
    ("投诉", "urgent"): Limit(24, "hours"),
    ("举报", "urgent"): Limit(24, "hours"),
    ("建议", "urgent"): Limit(24, "hours"),
    ("表扬", "urgent"): Limit(24, "hours"),
}


# 签收: an outlet confirms it has the order within this time of its dispatch (clock time: an
# unread dispatch is what the acceptance deadline is meant to catch, whatever the day).
ACCEPT_WITHIN: dict[str, timedelta] = {"urgent": timedelta(minutes=30), "normal": timedelta(hours=2)}


def accept_deadline(dispatched: datetime, urgency: str) -> datetime:
    if dispatched.tzinfo is None:
        dispatched = dispatched.replace(tzinfo=UTC)
    return (dispatched + ACCEPT_WITHIN.get(urgency, ACCEPT_WITHIN["normal"])).astimezone(UTC)


def is_workday(day: date, calendar: Calendar | None = None, assumed: set[int] | None = None) -> bool:
    return (calendar or plain()).is_workday(day, assumed)


def add_workdays(
    day: date, n: int, calendar: Calendar | None = None, assumed: set[int] | None = None
) -> date:
    """The n-th working day after ``day`` (``day`` itself does not count)."""
    d = day
    left = n
    while left > 0:
        d += timedelta(days=1)
        if is_workday(d, calendar, assumed):
            left -= 1
    return d


def previous_workday(day: date, calendar: Calendar | None = None, assumed: set[int] | None = None) -> date:
    d = day - timedelta(days=1)
    while not is_workday(d, calendar, assumed):
        d -= timedelta(days=1)
    return d


def limit_for(order_type: str, urgency: str) -> Limit:
    return DEFAULT_LIMITS.get((order_type, urgency), DEFAULT_LIMITS[("求助", "normal")])


def deadline(
    start: datetime,
    order_type: str,
    urgency: str,
    calendar: Calendar | None = None,
    assumed: set[int] | None = None,
) -> tuple[datetime, datetime]:
    """(deadline, reminder time), both timezone-aware UTC. Years counted as plain weekdays (no
    calendar knows them) are added to ``assumed``."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    limit = limit_for(order_type, urgency)
    if limit.unit == "hours":
        due = start + timedelta(hours=limit.amount)
        return due.astimezone(UTC), (due - timedelta(hours=limit.amount) / 4).astimezone(UTC)
    local_day = start.astimezone(CHINA_TZ).date()
    due_day = add_workdays(local_day, limit.amount, calendar, assumed)
    due = datetime.combine(due_day, CLOSE_OF_BUSINESS, tzinfo=CHINA_TZ)
    remind_day = previous_workday(due_day, calendar, assumed)
    remind = datetime.combine(remind_day, CLOSE_OF_BUSINESS, tzinfo=CHINA_TZ)
    if remind <= start.astimezone(CHINA_TZ):  # a one-day limit: remind at noon of the last day
        remind = datetime.combine(due_day, time(12, 0), tzinfo=CHINA_TZ)
    return due.astimezone(UTC), remind.astimezone(UTC)
