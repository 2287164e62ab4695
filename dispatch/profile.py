"""What the seat's pop shows of a resident beyond the basics: the household, the elderly profile,
the service archive and the earlier orders (read on the call service's profile worker thread)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select  # sqlmodel's select types at most four columns
from sqlmodel import Session, col, select

from callcenter.audit.service import record
from callcenter.clock import iso_seconds, local_day
from callcenter.database import Query, Reads
from callcenter.phone import normalize
from callcenter.residents.models import ElderlyProfile, HouseholdMember, Resident, ServiceArchive
from dispatch.errors import DispatchError
from dispatch.models import WorkOrder

RECENT = 5


# Built once (the pop reads them on every identified call): columns, not ORM objects.
_HOUSEHOLD = Query(
    select(HouseholdMember.name, HouseholdMember.relation, HouseholdMember.phone, HouseholdMember.birth_year)
    .where(HouseholdMember.resident_id == bindparam("rid"))
    .limit(10)
)
_ELDERLY = Query(
    select(
        ElderlyProfile.health_notes,
        ElderlyProfile.emergency_phone,
        ElderlyProfile.caregiver,
        ElderlyProfile.caregiver_phone,
    ).where(ElderlyProfile.resident_id == bindparam("rid"))
)
_ARCHIVE = Query(
    select(
        ServiceArchive.service,
        ServiceArchive.outlet_name,
        ServiceArchive.delivered_at,
        ServiceArchive.outcome,
    )
    .where(ServiceArchive.resident_id == bindparam("rid"))
    .order_by(col(ServiceArchive.delivered_at).desc())
    .limit(RECENT)
)
_ORDERS = Query(
    sa_select(
        col(WorkOrder.id),
        col(WorkOrder.number),
        col(WorkOrder.order_type),
        col(WorkOrder.status),
        col(WorkOrder.category),
        col(WorkOrder.created_at),
        col(WorkOrder.summary),
    )
    .where(col(WorkOrder.resident_id) == bindparam("rid"))
    .order_by(col(WorkOrder.created_at).desc())
    .limit(RECENT)
)


def resident_extras(reads: Reads, resident_id: int) -> dict[str, Any]:
    """``reads``: ``callcenter.database.hot_reads`` on the call path, ``Reads(session)`` in a page."""
    profile = reads.first(_ELDERLY, rid=resident_id)
    orders = reads.all(_ORDERS, rid=resident_id)
    return {
        "household": [
            {"name": name, "relation": relation, "phone": phone, "birth_year": birth_year}
            for name, relation, phone, birth_year in reads.all(_HOUSEHOLD, rid=resident_id)
        ],
        "elderly": {
            "health_notes": profile[0],
            "emergency_phone": profile[1],
            "caregiver": profile[2],
            "caregiver_phone": profile[3],
        }
        if profile
        else None,
        "archive": [
            {"service": service, "outlet": outlet, "at": local_day(at), "outcome": outcome[:200]}
            for service, outlet, at, outcome in reads.all(_ARCHIVE, rid=resident_id)
        ],
        "orders": [
            {
                "id": oid,
                "number": number,
                "type": order_type,
                "status": status,
                "category": category,
                "created_at": local_day(created),
                "created_iso": (iso_seconds(created) or ""),
                "summary": summary[:120],
            }
            for oid, number, order_type, status, category, created, summary in orders
        ],
    }


_ORDERS_COUNT = Query(
    select(func.count()).select_from(WorkOrder).where(WorkOrder.resident_id == bindparam("rid"))
)


def pop_extras(reads: Reads, resident_id: int) -> tuple[dict[str, Any], int]:
    """The order domain's part of a known caller's pop and their order count
    (``callcenter.calls.service.ProfileExtras``)."""
    return resident_extras(reads, resident_id), reads.first(_ORDERS_COUNT, rid=resident_id)[0]


# --- editing (the resident page) ---------------------------------------------------------------


def _text(value: object, limit: int) -> str:
    return "".join(ch for ch in str(value or "") if ch.isprintable()).strip()[:limit]


def add_household_member(
    session: Session,
    actor: str,
    role: str,
    resident_id: int,
    name: str,
    relation: str = "",
    phone: str = "",
    birth_year: int | None = None,
) -> HouseholdMember:
    """A member of the resident's household (no commit; audited with the change)."""
    if session.get(Resident, resident_id) is None:
        raise DispatchError("no such resident", "not_found")
    name = _text(name, 64)
    if not name:
        raise DispatchError("a name is required")
    number = ""
    if phone.strip():
        number = normalize(phone) or ""
        if not number:
            raise DispatchError("not a usable phone number")
    if birth_year is not None and not 1900 <= birth_year <= 2100:
        raise DispatchError("a birth year between 1900 and 2100")
    member = HouseholdMember(
        resident_id=resident_id, name=name, relation=_text(relation, 16), phone=number, birth_year=birth_year
    )
    session.add(member)
    session.flush()
    record(
        session,
        actor,
        "resident.household_add",
        target=f"resident:{resident_id}",
        role=role,
        member=member.id,
    )
    return member


def save_elderly_profile(
    session: Session,
    actor: str,
    role: str,
    resident_id: int,
    *,
    health_notes: str = "",
    emergency_phone: str = "",
    caregiver: str = "",
    caregiver_phone: str = "",
    lives_alone: bool | None = None,
    vulnerable: bool | None = None,
) -> ElderlyProfile:
    """Create or update the elderly profile; living alone and vulnerability stay on the resident."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise DispatchError("no such resident", "not_found")
    phones = {}
    for key, raw in (("emergency_phone", emergency_phone), ("caregiver_phone", caregiver_phone)):
        phones[key] = ""
        if raw.strip():
            phones[key] = normalize(raw) or ""
            if not phones[key]:
                raise DispatchError("not a usable phone number")
    profile = session.exec(select(ElderlyProfile).where(ElderlyProfile.resident_id == resident_id)).first()
    profile = profile or ElderlyProfile(resident_id=resident_id)
    profile.health_notes = _text(health_notes, 500)
    profile.caregiver = _text(caregiver, 64)
    profile.emergency_phone = phones["emergency_phone"]
    profile.caregiver_phone = phones["caregiver_phone"]
    session.add(profile)
    if lives_alone is not None:
        resident.lives_alone = lives_alone
    if vulnerable is not None:
        resident.vulnerable = vulnerable
    session.add(resident)
    session.flush()
    record(session, actor, "resident.elderly_profile", target=f"resident:{resident_id}", role=role)
    return profile
