"""Reads of the directory that other domains need, and the edits of single items from the basic
data pages (their checks, rules and audit entry; adding an item is an import of one row)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, select

from callcenter import phone
from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.database import get_engine, session_scope, table_of
from callcenter.directory import imports
from callcenter.directory.models import (
    CallQueue,
    Community,
    Grid,
    Jurisdiction,
    Outlet,
    ServiceArea,
    ServiceAreaCommunity,
    ServiceNumber,
)


@dataclass(frozen=True, slots=True)
class QueueParams:
    wrapup_s: int
    service_level_s: int


def queue_params(settings: Settings) -> dict[str, QueueParams]:
    """Each queue's wrap-up time and service-level threshold, as rendered into queues.conf."""
    with session_scope(settings) as s:
        return {
            q.name: QueueParams(wrapup_s=q.wrapup, service_level_s=q.service_level)
            for q in s.exec(select(CallQueue))
        }


@dataclass(frozen=True, slots=True)
class DisplayNames:
    """What a person reads for the ids that cross the edges (ids stay in URLs and APIs): a queue's
    title, a service number's title, an outlet's and a community's name. An id without a name
    reads as itself."""

    queues: dict[str, str]
    numbers: dict[str, str]
    outlets: dict[str, str]  # str(outlet.id) → name
    communities: dict[str, str]  # str(community.id) → name

    def queue(self, name: str) -> str:
        return self.queues.get(name) or name

    def number(self, number: str) -> str:
        return self.numbers.get(number) or number

    def for_page(self) -> dict[str, dict[str, str]]:
        """The names a console or wallboard page maps the ids of its messages with."""
        return {"queues": self.queues, "numbers": self.numbers}


def display_names(conn: Connection) -> DisplayNames:
    q, n, o, c = (table_of(m) for m in (CallQueue, ServiceNumber, Outlet, Community))
    return DisplayNames(
        queues={name: title for name, title in conn.execute(sa_select(q.c.name, q.c.title)) if title},
        numbers={num: title for num, title in conn.execute(sa_select(n.c.number, n.c.title)) if title},
        outlets={str(i): name for i, name in conn.execute(sa_select(o.c.id, o.c.name))},
        communities={str(i): name for i, name in conn.execute(sa_select(c.c.id, c.c.name))},
    )


def load_display_names(settings: Settings) -> DisplayNames:
    with get_engine(settings).connect() as conn:
        return display_names(conn)


# --- single-item edits (basic data administration) ---------------------------------------------

EDITABLE = ("jurisdictions", "communities", "grids", "service_areas", "outlets", "service_numbers")
MODELS: dict[str, type[SQLModel]] = {
    "jurisdictions": Jurisdiction,
    "communities": Community,
    "grids": Grid,
    "service_areas": ServiceArea,
    "outlets": Outlet,
    "service_numbers": ServiceNumber,
}
# What the edit form of an existing item changes (outlets: their contacts, see update_outlet).
EDIT_FIELDS: dict[str, tuple[str, ...]] = {
    "jurisdictions": ("name", "code"),
    "communities": ("name", "urban"),
    "grids": ("name",),
    "service_areas": ("name", "communities"),
    "service_numbers": ("title", "queue_name"),
}
QUEUE_NAME = re.compile(r"[a-z0-9_-]{1,32}")


@dataclass(frozen=True, slots=True)
class Editor:
    """Who edits, for the audit log."""

    username: str
    role: str
    ip: str


def update_item(s: Session, kind: str, item_id: int, form: dict[str, str], editor: Editor) -> list[str]:
    """Edit an existing item's own fields (references to it stay as they are). Returns the
    problems found (nothing is changed then); commits otherwise."""
    obj: Any = s.get(MODELS[kind], item_id)
    if obj is None:
        return ["not found"]
    values: dict[str, Any] = {f: " ".join(form.get(f, "").split()) for f in EDIT_FIELDS[kind]}
    errors = []
    if "name" in values and not values["name"]:
        errors.append("name is required")
    if "name" in values and len(values["name"]) > 64:
        errors.append("name: longer than 64 characters")
    if kind == "jurisdictions":
        other = s.exec(
            select(Jurisdiction).where(Jurisdiction.name == values["name"], Jurisdiction.id != item_id)
        )
        if other.first() is not None:
            errors.append(f"jurisdiction {values['name']!r} exists")
    if kind == "service_numbers" and not QUEUE_NAME.fullmatch(values["queue_name"]):
        errors.append("queue_name: lowercase letters, digits, - and _")
    members: list[int] = []
    if kind == "service_areas":
        look = imports.Lookups(s)
        for name in imports.split_list(values.pop("communities")):
            try:
                members.append(look.community(name).id or 0)
            except imports.RowError as exc:
                errors.append(str(exc))
    if kind == "communities":
        try:
            values["urban"] = imports.parse_bool(values["urban"] or "是", "urban")
        except imports.RowError as exc:
            errors.append(str(exc))
    if errors:
        return errors
    before = {k: getattr(obj, k) for k in values}
    for k, v in values.items():
        setattr(obj, k, v)
    s.add(obj)
    if kind == "service_areas":
        for m in s.exec(select(ServiceAreaCommunity).where(ServiceAreaCommunity.area_id == item_id)):
            s.delete(m)
        for cid in members:
            s.add(ServiceAreaCommunity(area_id=item_id, community_id=cid))
    audit(
        s,
        editor.username,
        "basic.update",
        target=f"{kind}:{item_id}",
        role=editor.role,
        ip=editor.ip,
        before=before,
        after=values,
    )
    s.commit()
    return []


def update_outlet(
    s: Session, settings: Settings, outlet_id: int, form: dict[str, str], editor: Editor
) -> list[str]:
    """Outlets change contacts and hours often (the SMS reply check uses these numbers). Returns
    the problems found (nothing is changed then); commits otherwise."""
    outlet = s.get(Outlet, outlet_id)
    if outlet is None or outlet.id is None:
        return ["not found"]
    errors = []
    numbers = []
    for raw in [form.get("phone", "")] + imports.split_list(form.get("phones", "")):
        if not raw:
            continue
        n = phone.normalize(raw, settings.default_region, settings.default_area_code)
        if n is None:
            errors.append(f"{raw!r} is not a phone number")
        numbers.append(n)
    emails = [form.get("email", "")] + imports.split_list(form.get("emails", ""))
    for e in emails:
        if e and not imports.EMAIL.fullmatch(e):
            errors.append(f"{e!r} is not an e-mail address")
    if not form.get("phone"):
        errors.append("phone is required")
    if form.get("categories", "").strip() or form.get("areas", "").strip():
        # What an outlet serves is the routing rules' (one source of truth), not the outlet's.
        errors.append("categories and areas an outlet serves are routing rules (派单规则)")
    if errors:
        return errors
    before = {"phone": outlet.phone, "phones": outlet.phones, "email": outlet.email, "emails": outlet.emails}
    outlet.phone = numbers[0] or ""
    outlet.phones = ",".join(n for n in numbers[1:] if n)
    outlet.email = emails[0]
    outlet.emails = ",".join(e for e in emails[1:] if e)
    outlet.working_hours = form.get("working_hours", "").strip()[:64]
    outlet.active = form.get("active", "on") in ("on", "true", "1")
    s.add(outlet)
    audit(
        s,
        editor.username,
        "basic.outlet_update",
        target=f"outlet:{outlet.id}",
        role=editor.role,
        ip=editor.ip,
        before=before,
        after={"phone": outlet.phone, "phones": outlet.phones, "email": outlet.email},
    )
    s.commit()
    return []


def outlets_by_sms_number(s: Session, settings: Settings, number: str) -> list[Outlet]:
    """The outlets that registered ``number`` (E.164) to reply by SMS."""
    out = []
    for outlet in s.exec(select(Outlet)):
        for raw in outlet.sms_numbers():
            if phone.normalize(raw, settings.default_region, settings.default_area_code) == number:
                out.append(outlet)
                break
    return out
