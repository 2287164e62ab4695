"""Registering residents from a call: the number a seat sees on an unknown caller's pop becomes
a new resident, or is linked to one already on file. Phones are kept normalised (E.164), so the
duplicate check and the next call's screen pop find them."""

from __future__ import annotations

from sqlalchemy import bindparam, union_all
from sqlmodel import Session, col, or_, select

from callcenter.audit.service import record
from callcenter.config import Settings
from callcenter.database import Query, hot_reads
from callcenter.directory.models import Community, Grid
from callcenter.errors import UserError
from callcenter.phone import normalize
from callcenter.residents.models import Resident


class ResidentError(UserError, domain="resident"):
    """A request the seat can correct; ``existing`` is the resident a duplicate points at."""

    def __init__(self, message: str, existing: Resident | None = None) -> None:
        super().__init__(message)
        self.existing = existing


def by_phone(session: Session, phone: str) -> Resident | None:
    return session.exec(
        select(Resident).where(or_(Resident.phone == phone, Resident.phone2 == phone))
    ).first()


# The resident whose phone or second phone is this number, with the priority flags the FastAGI
# route reads. Built once (it runs on every call); each half of the union uses its own index (an
# OR of two columns may scan the table).
RESIDENT_BY_PHONE = Query(
    union_all(
        select(
            col(Resident.id), col(Resident.elderly), col(Resident.lives_alone), col(Resident.vulnerable)
        ).where(col(Resident.phone) == bindparam("caller")),
        select(
            col(Resident.id), col(Resident.elderly), col(Resident.lives_alone), col(Resident.vulnerable)
        ).where(col(Resident.phone2) == bindparam("caller")),
    ).limit(1)
)


def find_resident_id(settings: Settings, caller: str | None) -> int | None:
    """The resident whose phone (or second phone) is this E.164 number; any thread."""
    if not caller:
        return None
    with hot_reads(settings) as reads:
        row = reads.first(RESIDENT_BY_PHONE, caller=caller)
    return row[0] if row else None


def _phone(raw: str) -> str:
    phone = normalize(raw)
    if phone is None:
        raise ResidentError("not a usable phone number")
    return phone


def register(
    session: Session,
    actor: str,
    role: str,
    name: str,
    phone: str,
    community_id: int | None,
    grid_id: int | None = None,
    address: str = "",
) -> Resident:
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not 1 <= len(name) <= 64:
        raise ResidentError("a name of 1-64 characters")
    phone = _phone(phone)
    existing = by_phone(session, phone)
    if existing is not None:
        raise ResidentError("this number belongs to a registered resident", existing)
    if community_id is not None and session.get(Community, community_id) is None:
        raise ResidentError("unknown community")
    if grid_id is not None:
        grid = session.get(Grid, grid_id)
        if grid is None or grid.community_id != community_id:
            raise ResidentError("that grid is not in that community")
    resident = Resident(
        name=name,
        phone=phone,
        community_id=community_id,
        grid_id=grid_id,
        address="".join(ch for ch in address if ch.isprintable()).strip()[:255],
    )
    session.add(resident)
    session.flush()
    record(session, actor, "resident.create", target=f"resident:{resident.id}", role=role, phone=phone)
    session.commit()
    return resident


def link_phone(session: Session, actor: str, role: str, resident_id: int, phone: str) -> Resident:
    """Add a number to a resident already on file (their second phone)."""
    phone = _phone(phone)
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise ResidentError("no such resident")
    existing = by_phone(session, phone)
    if existing is not None:
        raise ResidentError("this number belongs to a registered resident", existing)
    if resident.phone2:
        raise ResidentError("this resident has two numbers already")
    resident.phone2 = phone
    session.add(resident)
    record(session, actor, "resident.link_phone", target=f"resident:{resident.id}", role=role, phone=phone)
    session.commit()
    return resident


def search(session: Session, text: str, limit: int = 20) -> list[Resident]:
    """By name (prefix) or phone (any written form)."""
    text = text.strip()[:64]
    if not text:
        return []
    phone = normalize(text)
    if phone:
        found = by_phone(session, phone)
        return [found] if found else []
    return list(session.exec(select(Resident).where(col(Resident.name).startswith(text)).limit(limit)))
