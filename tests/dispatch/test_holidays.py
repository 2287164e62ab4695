"""The administrators' holiday calendar: a deadline counted across a holiday entered for a year
``chinese-calendar`` does not know; a year nobody knows is counted on weekdays and said so in the
order's history; the warning from 1 November uses the business clock, never the wall date."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.config import CHINA_TZ
from callcenter.database import session_scope
from dispatch import categories, deadlines, holidays, service, transitions
from dispatch.errors import ConfigError
from dispatch.models import OrderHistory

ADMIN = categories.Editor("admin", "admin", "127.0.0.1")


def test_next_year_is_one_the_package_does_not_know():
    # The tests below rely on it; a newer chinese-calendar release moves this year on.
    assert holidays.package_knows(2026) and not holidays.package_knows(2031)


def _dispatch_on(s, world, when: datetime):
    order = service.create_order(
        s,
        world.seat,
        order_type="投诉",
        summary="噪音扰民",
        category_id=world.cat_water,
        community_id=world.community,
        now=when,
    )
    transitions.transition(s, order, "派单", world.seat, now=when, outlet_id=world.outlet_a)
    return order


def test_a_deadline_across_an_entered_holiday_of_an_unknown_year(settings, world):
    start = datetime(2031, 9, 30, 9, 0, tzinfo=CHINA_TZ)  # a Tuesday; 投诉: 5 working days
    with session_scope(settings) as s:
        plain = _dispatch_on(s, world, start)
        assumed = s.exec(
            select(OrderHistory).where(OrderHistory.order_id == plain.id, OrderHistory.action == "派单")
        ).one()
        # Nobody knows 2031: weekdays only, and the history says so.
        assert assumed.detail["calendar_assumed"] == [2031]
        assert plain.deadline_at.astimezone(CHINA_TZ).date() == date(2031, 10, 7)
        # The administrator enters National Day (1-7 Oct) and the make-up Saturday 11 Oct.
        holidays.import_rows(
            s,
            ADMIN,
            [
                {"day": "2031-10-01~2031-10-07", "workday": "否", "name": "国庆节"},
                {"day": "2031/10/11", "workday": "是", "name": "国庆节调休"},
            ],
        )
        s.commit()
    with session_scope(settings) as s:
        order = _dispatch_on(s, world, start)
        # Working days after 30 Sept: 8, 9, 10, 11 (Saturday, make-up), 13 October.
        assert order.deadline_at.astimezone(CHINA_TZ) == datetime(2031, 10, 13, 18, 0, tzinfo=CHINA_TZ)
        hist = s.exec(
            select(OrderHistory).where(OrderHistory.order_id == order.id, OrderHistory.action == "派单")
        ).one()
        assert "calendar_assumed" not in hist.detail
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "calendar.save")).all()[0].detail[
            "new"
        ] == {
            "workday": False,
            "name": "国庆节",
        }


def test_entered_days_override_the_package():
    cal = holidays.Calendar(days={date(2026, 10, 8): False}, years=frozenset({2026}))
    assumed: set[int] = set()
    # With 2026 entered, only its entered days differ from the week: 1 Oct is an ordinary Thursday.
    assert deadlines.add_workdays(date(2026, 9, 30), 1, cal, assumed) == date(2026, 10, 1)
    assert deadlines.add_workdays(date(2026, 10, 7), 1, cal, assumed) == date(2026, 10, 9)
    assert assumed == set()


@pytest.mark.parametrize(
    ("today", "missing"),
    [
        (date(2026, 10, 31), []),  # before 1 November: next year is not asked for yet
        (date(2026, 11, 1), [2027]) if not holidays.package_knows(2027) else (date(2026, 11, 1), []),
        (date(2031, 3, 1), [2031]),  # this year unknown
    ],
)
def test_the_warning_starts_on_1_november(today, missing):
    assert holidays.Calendar().missing(today) == missing


def test_the_warning_follows_the_business_clock(settings):
    frozen = settings.model_copy(update={"clock": "2030-11-01T09:00:00"})
    assert holidays.missing_years(frozen) == [2030, 2031]
    with session_scope(settings) as s:
        holidays.save_day(s, ADMIN, "2031-01-01", False, "元旦")
        holidays.save_day(s, ADMIN, "2030-01-01", False, "元旦")
        s.commit()
    assert holidays.missing_years(frozen) == []


@pytest.mark.parametrize(
    ("day", "workday", "code"),
    [
        ("2031-13-01", False, "holiday_day"),
        ("2031-10-08", True, "holiday_workday"),
        ("1999-01-01", False, "holiday_day"),
    ],
)
def test_bad_days_are_refused(settings, day, workday, code):
    with session_scope(settings) as s, pytest.raises(ConfigError) as err:
        holidays.save_day(s, ADMIN, day, workday, "")
    assert err.value.key == f"errors.config.{code}"
