"""Deadlines (办理时限): per order type and urgency, in working days (Chinese public holidays and
make-up working days: ``dispatch.holidays``, the administrators' calendar over ``chinese-calendar``)
or in hours for urgent orders. A day of a year no calendar knows counts as a plain weekday and the
year is added to the caller's ``assumed`` set, so the order's history says so (never silently).

A working-day deadline falls at the close of business (18:00 China time) of the N-th working day
after the day the order was dispatched; the reminder (催办) goes out one working day before it, or
a quarter of the time before an hours deadline.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from callcenter.config import CHINA_TZ
from dispatch.holidays import Calendar, plain
from dispatch.policies import Policy, default

CLOSE_OF_BUSINESS = time(18, 0)


def accept_deadline(dispatched: datetime, urgency: str, policy: Policy | None = None) -> datetime:
    """签收 expected by then: clock time (an unread dispatch is what it catches, whatever the day)."""
    if dispatched.tzinfo is None:
        dispatched = dispatched.replace(tzinfo=UTC)
    policy = policy or default(order_type="求助", urgency=urgency)
    return (dispatched + policy.accept_within).astimezone(UTC)


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


def deadline(
    start: datetime,
    order_type: str,
    urgency: str,
    calendar: Calendar | None = None,
    assumed: set[int] | None = None,
    policy: Policy | None = None,
) -> tuple[datetime, datetime]:
    """(deadline, reminder time), both timezone-aware UTC, by the administrators' ``policy`` (the
    defaults without one). Years counted as plain weekdays (no calendar knows them) are added to
    ``assumed``."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    policy = policy or default(order_type, urgency)
    lead = timedelta(hours=policy.remind_lead_hours)
    if policy.unit == "hours":
        due = start + timedelta(hours=policy.amount)
        remind = due - (lead or timedelta(hours=policy.amount) / 4)
        return due.astimezone(UTC), remind.astimezone(UTC)
    local_day = start.astimezone(CHINA_TZ).date()
    due_day = add_workdays(local_day, policy.amount, calendar, assumed)
    due = datetime.combine(due_day, CLOSE_OF_BUSINESS, tzinfo=CHINA_TZ)
    if lead:
        return due.astimezone(UTC), max(due - lead, start).astimezone(UTC)
    remind_day = previous_workday(due_day, calendar, assumed)
    remind = datetime.combine(remind_day, CLOSE_OF_BUSINESS, tzinfo=CHINA_TZ)
    if remind <= start.astimezone(CHINA_TZ):  # a one-day limit: remind at noon of the last day
        remind = datetime.combine(due_day, time(12, 0), tzinfo=CHINA_TZ)
    return due.astimezone(UTC), remind.astimezone(UTC)
