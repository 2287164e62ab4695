"""Administrators' deadline policies: a saved policy sets the next dispatch's deadlines, reminder
and acceptance limit; supervision also reaches the policy's recipients; bad values are refused."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.config import CHINA_TZ
from callcenter.database import session_scope
from dispatch import categories, policies, service, transitions
from dispatch.errors import ConfigError
from sms.models import SmsMessage

ADMIN = categories.Editor("admin", "admin", "127.0.0.1")


def test_a_policy_sets_the_next_dispatch(settings, world):
    with session_scope(settings) as s:
        policies.save(
            s,
            settings,
            ADMIN,
            "求助",
            "urgent",
            {
                "amount": "6",
                "unit": "hours",
                "accept_minutes": "15",
                "remind_lead_hours": "2",
                "escalate_to": "13900001111, lead@example.org",
            },
        )
        s.commit()
    start = datetime(2026, 10, 1, 9, 0, tzinfo=CHINA_TZ)
    with session_scope(settings) as s:
        order = service.create_order(
            s,
            world.seat,
            order_type="求助",
            urgency="urgent",
            summary="老人摔倒",
            category_id=world.cat_elder,
            community_id=world.community,
            now=start,
        )
        transitions.transition(s, order, "派单", world.seat, now=start, outlet_id=world.outlet_a)
        assert order.deadline_at.astimezone(CHINA_TZ) == start + timedelta(hours=6)
        assert order.remind_at.astimezone(CHINA_TZ) == start + timedelta(hours=4)
        assert order.accept_due_at.astimezone(CHINA_TZ) == start + timedelta(minutes=15)
        transitions.transition(
            s, order, "督办", world.supervisor, now=start + timedelta(hours=7), note="超时"
        )
        s.commit()
        to = {m.to for m in s.exec(select(SmsMessage).where(SmsMessage.order_id == order.id))}
        assert "+8613900001111" in to
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "deadline.save")).one()
        assert entry.detail["changes"]["amount"] == [2, 6]
        assert entry.detail["changes"]["escalate_to"] == [[], ["+8613900001111", "lead@example.org"]]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (
            {"amount": "0", "unit": "workdays", "accept_minutes": "60", "remind_lead_hours": "0"},
            "policy_range",
        ),
        ({"amount": "3", "unit": "weeks", "accept_minutes": "60", "remind_lead_hours": "0"}, "policy_unit"),
        ({"amount": "3", "unit": "hours", "accept_minutes": "60", "remind_lead_hours": "3"}, "policy_lead"),
        (
            {
                "amount": "3",
                "unit": "workdays",
                "accept_minutes": "60",
                "remind_lead_hours": "0",
                "escalate_to": "x",
            },
            "policy_recipient",
        ),
    ],
)
def test_bad_policies_are_refused(settings, data, code):
    with session_scope(settings) as s, pytest.raises(ConfigError) as err:
        policies.save(s, settings, ADMIN, "投诉", "normal", data)
    assert err.value.key == f"errors.config.{code}"
