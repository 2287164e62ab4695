"""The call path's database reads and rows: the resident's profile for the pop, the pop itself,
and a finished call's record (the workers in ``callcenter.calls.workers`` run them on threads)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlmodel import col

from callcenter.calls.models import CallRecord
from callcenter.calls.state import LiveCall
from callcenter.config import Settings
from callcenter.database import Query, Reads, hot_reads
from callcenter.directory.models import Community, Grid, Jurisdiction
from callcenter.residents.models import Resident


def mask_id_number(id_number: str) -> str:
    """A resident ID number as a seat sees it by default: region and check digits only."""
    if len(id_number) < 10:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


# The pop's reads, built once: a statement object keeps its cache key, so each call only binds
# values (building them per call cost more than running them). Columns, not ORM objects.
_PROFILE = Query(
    select(
        col(Resident.id),
        col(Resident.name),
        col(Resident.address),
        col(Resident.elderly),
        col(Resident.lives_alone),
        col(Resident.vulnerable),
        col(Resident.birth_year),
        col(Resident.emergency_contact),
        col(Resident.id_number),
        col(Resident.community_id),
        col(Resident.grid_id),
        col(Community.name),
        col(Jurisdiction.name),
        col(Grid.name),
    )
    .join(Community, col(Community.id) == Resident.community_id, isouter=True)
    .join(Jurisdiction, col(Jurisdiction.id) == Community.jurisdiction_id, isouter=True)
    .join(Grid, col(Grid.id) == Resident.grid_id, isouter=True)
    .where(col(Resident.id) == bindparam("rid"))
)
# By resident when known, else by the number: (count, last call) each.
_CALLS = {
    by: (
        Query(select(func.count()).select_from(CallRecord).where(who)),
        Query(
            select(col(CallRecord.started_at), col(CallRecord.outcome), col(CallRecord.seat))
            .where(who)
            .order_by(col(CallRecord.started_at).desc())
            .limit(1)
        ),
    )
    for by, who in (
        ("resident", col(CallRecord.resident_id) == bindparam("key")),
        ("caller", col(CallRecord.caller) == bindparam("key")),
    )
}


class ProfileExtras(Protocol):
    """What the order domain adds to a known resident's pop, read on the profile worker's thread:
    ``({household, elderly, archive, orders}, the resident's order count)``. The composition root
    hands it in, so the call path does not depend on the order domain."""

    def __call__(self, reads: Reads, resident_id: int) -> tuple[dict[str, Any], int]: ...


def build_profile(
    settings: Settings,
    resident_id: int | None,
    caller: str | None,
    extras: ProfileExtras | None = None,
) -> dict[str, Any]:
    """The resident and their history, as the pop shows them."""
    order_count = 0
    out: dict[str, Any] = {
        "resident": None,
        "history": {"calls": 0, "last_call": None, "orders": 0, "last_order": None},
    }
    with hot_reads(settings) as reads:
        if resident_id is not None:
            row = reads.first(_PROFILE, rid=resident_id)
            if row:
                (rid, name, address, elderly, alone, vulnerable, birth_year, contact, id_number) = row[:9]
                community_id, grid_id, community, jurisdiction, grid = row[9:]
                out["resident"] = {
                    "id": rid,
                    "name": name,
                    "community": community or "",
                    "jurisdiction": jurisdiction or "",
                    "grid": grid or "",
                    "address": address,
                    "elderly": elderly,
                    "lives_alone": alone,
                    "vulnerable": vulnerable,
                    "age": (datetime.now().year - birth_year) if birth_year else None,
                    "emergency_contact": contact,
                    # The full number is shown only on request, and that request is audited.
                    "id_number_masked": mask_id_number(id_number),
                    "community_id": community_id,
                    "grid_id": grid_id,
                }
                if extras is not None:  # household, elderly profile, service archive, earlier orders
                    out["dispatch"], order_count = extras(reads, rid)
            elif extras is not None:
                order_count = extras(reads, resident_id)[1]
        if resident_id is not None or caller:
            count, last_call = _CALLS["resident" if resident_id is not None else "caller"]
            key = resident_id if resident_id is not None else caller
            out["history"]["calls"] = reads.first(count, key=key)[0]
            last = reads.first(last_call, key=key)
            if last:
                out["history"]["last_call"] = {
                    "at": last[0].isoformat(timespec="seconds"),
                    "outcome": last[1],
                    "seat": last[2],
                }
        if resident_id is not None:
            out["history"]["orders"] = order_count
            recent = (out.get("dispatch") or {}).get("orders") or []
            if recent:  # the newest of the earlier orders the pop lists
                o = recent[0]
                out["history"]["last_order"] = {
                    "number": o["number"],
                    "type": o["type"],
                    "status": o["status"],
                    "created_at": o["created_iso"],
                    "summary": o["summary"],
                }
    return out


def record_row(call: LiveCall) -> dict[str, Any]:
    return {
        "linkedid": call.linkedid,
        "caller": call.caller or call.caller_raw[:40],
        "caller_raw": call.caller_raw[:80],
        "caller_name": call.caller_name[:80],
        "did": call.did[:32],
        "source": call.source,
        "order_12345": call.order_12345,
        "summary_12345": call.summary_12345[:500],
        "resident_id": call.resident_id,
        "queue": call.queue,
        "seat": call.seat,
        "started_at": datetime.fromtimestamp(call.started, UTC),
        "ended_at": datetime.fromtimestamp(call.ended_at, UTC) if call.ended_at else None,
        "wait_s": None if call.wait_s is None else round(call.wait_s, 3),
        "ring_s": None if call.ring_s is None else round(call.ring_s, 3),
        "first_ring_s": None if call.first_ring_s is None else round(call.first_ring_s, 3),
        "talk_s": None if call.talk_s is None else round(call.talk_s, 3),
        "outcome": call.outcome,
        "ivr_choice": call.ivr_choice,
        "ivr_category": call.ivr_category[:64],
        "recording": call.recording,
    }
