"""What the seat's pop shows of a resident beyond the basics: the household, the elderly profile,
the service archive and the earlier orders (read on the call service's profile worker thread)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from callcenter.config import CHINA_TZ
from callcenter.residents.models import ElderlyProfile, HouseholdMember, ServiceArchive
from dispatch.models import WorkOrder

RECENT = 5


def _day(ts) -> str:
    if ts is None:
        return ""
    if ts.tzinfo is None:
        from datetime import UTC

        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(CHINA_TZ).strftime("%Y-%m-%d")


def resident_extras(session: Session, resident_id: int) -> dict[str, Any]:
    household = session.exec(
        select(HouseholdMember).where(HouseholdMember.resident_id == resident_id).limit(10)
    ).all()
    profile = session.exec(select(ElderlyProfile).where(ElderlyProfile.resident_id == resident_id)).first()
    archive = session.exec(
        select(ServiceArchive)
        .where(ServiceArchive.resident_id == resident_id)
        .order_by(col(ServiceArchive.delivered_at).desc())
        .limit(RECENT)
    ).all()
    orders = session.exec(
        select(WorkOrder)
        .where(WorkOrder.resident_id == resident_id)
        .order_by(col(WorkOrder.created_at).desc())
        .limit(RECENT)
    ).all()
    return {
        "household": [
            {"name": m.name, "relation": m.relation, "phone": m.phone, "birth_year": m.birth_year}
            for m in household
        ],
        "elderly": {
            "health_notes": profile.health_notes,
            "emergency_phone": profile.emergency_phone,
            "caregiver": profile.caregiver,
            "caregiver_phone": profile.caregiver_phone,
        }
        if profile
        else None,
        "archive": [
            {
                "service": a.service,
                "outlet": a.outlet_name,
                "at": _day(a.delivered_at),
                "outcome": a.outcome[:200],
            }
            for a in archive
        ],
        "orders": [
            {
                "id": o.id,
                "number": o.number,
                "type": o.order_type,
                "status": o.status,
                "category": o.category,
                "created_at": _day(o.created_at),
                "summary": o.summary[:120],
            }
            for o in orders
        ],
    }
