"""Importing residents from CSV or Excel, all or nothing, and the entry point for every import kind.

Residents refer to the directory (a community, a grid), so their import sits here, above it, and
uses the directory's import machinery (``callcenter.directory.imports``): the same file reading,
report, lookups and all-or-nothing driver. Duplicates are found by normalised phone and by ID
number, within the file and against the records on file; they are errors, or skipped and
reported when the caller asks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlmodel import Session, col, or_, select

from callcenter.config import Settings
from callcenter.directory import imports as basic
from callcenter.directory.imports import (
    Columns,
    ImportFileError,
    Lookups,
    Report,
    RowError,
    RowSkipped,
    clean_text,
    parse_bool,
    parse_phone,
    run_rows,
)
from callcenter.residents.models import Resident
from callcenter.text import is_digits

KIND = "residents"
COLUMNS: Columns = {
    "name": ("name", "姓名"),
    "phone": ("phone", "电话", "手机"),
    "phone2": ("phone2", "电话2", "固定电话"),
    "id_number": ("id_number", "身份证号"),
    "address": ("address", "地址", "住址"),
    "community": ("community", "社区"),
    "grid": ("grid", "网格"),
    "birth_year": ("birth_year", "出生年份"),
    "lives_alone": ("lives_alone", "独居"),
    "emergency_contact": ("emergency_contact", "紧急联系人"),
}
REQUIRED = ("name",)
KINDS = (*basic.KINDS, KIND)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_id_number(value: str) -> bool:
    """A mainland resident ID (18 characters, GB 11643 check digit)."""
    if not re.fullmatch(r"[0-9]{17}[0-9X]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


class _ResidentDupes:
    """Phones and ID numbers already on file or earlier in the file."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.phones: dict[str, str] = {}  # number → where it was seen
        self.ids: dict[str, str] = {}

    def check(self, row_no: int, phones: list[str], id_number: str) -> str | None:
        for p in phones:
            if p in self.phones:
                return f"phone {p} also in {self.phones[p]}"
        if id_number and id_number in self.ids:
            return f"ID number also in {self.ids[id_number]}"
        if phones:
            hit = self.s.exec(
                select(Resident.id).where(
                    or_(col(Resident.phone).in_(phones), col(Resident.phone2).in_(phones))
                )
            ).first()
            if hit is not None:
                return f"phone already on file (resident {hit})"
        if id_number:
            hit = self.s.exec(select(Resident.id).where(Resident.id_number == id_number)).first()
            if hit is not None:
                return f"ID number already on file (resident {hit})"
        for p in phones:
            self.phones[p] = f"row {row_no}"
        if id_number:
            self.ids[id_number] = f"row {row_no}"
        return None


def _resident(f: dict[str, str], look: Lookups, settings: Settings) -> tuple[Resident, list[str], str]:
    if not f["name"]:
        raise RowError("name is required")
    phones = [
        p
        for p in (parse_phone(settings, f["phone"], "phone"), parse_phone(settings, f["phone2"], "phone2"))
        if p
    ]
    id_number = f["id_number"].upper().replace(" ", "")
    if id_number and not valid_id_number(id_number):
        raise RowError("id_number: not a valid 18-character ID number")
    community = look.community(f["community"]) if f["community"] else None
    grid = look.grid(community, f["grid"]) if f["grid"] and community else None
    if f["grid"] and community is None:
        raise RowError("grid needs its community")
    birth_year = None
    if f["birth_year"]:
        if not is_digits(f["birth_year"], 4) or not 1900 <= int(f["birth_year"]) <= date.today().year:
            raise RowError("birth_year: a year such as 1948")
        birth_year = int(f["birth_year"])
    elif id_number:
        birth_year = int(id_number[6:10])
    resident = Resident(
        name=clean_text(f["name"], 64, "name"),
        phone=phones[0] if phones else "",
        phone2=phones[1] if len(phones) > 1 else "",
        id_number=id_number,
        address=clean_text(f["address"], 255, "address"),
        community_id=community.id if community else None,
        grid_id=grid.id if grid else None,
        birth_year=birth_year,
        elderly=bool(birth_year and date.today().year - birth_year >= 60),
        lives_alone=parse_bool(f["lives_alone"], "lives_alone"),
        emergency_contact=clean_text(f["emergency_contact"], 64, "emergency_contact"),
    )
    return resident, phones, id_number


def import_residents(
    session: Session,
    settings: Settings,
    rows: list[dict[str, str]],
    progress: Callable[[int, int], None] | None = None,
    skip_duplicates: bool = False,
) -> Report:
    """Import residents, all or nothing; duplicates are errors unless ``skip_duplicates``."""
    look = Lookups(session)
    dupes = _ResidentDupes(session)

    def build(row_no: int, f: dict[str, str]) -> list[Any]:
        resident, phones, id_number = _resident(f, look, settings)
        why = dupes.check(row_no, phones, id_number)
        if why:
            if skip_duplicates:
                raise RowSkipped(f"duplicate: {why}")
            raise RowError(f"duplicate: {why}")
        return [resident]

    return run_rows(session, KIND, COLUMNS, REQUIRED, rows, build, progress)


def import_table(
    session: Session,
    settings: Settings,
    kind: str,
    rows: list[dict[str, str]],
    progress: Callable[[int, int], None] | None = None,
    skip_duplicates: bool = False,
) -> Report:
    """Import a table of any kind in ``KINDS``: residents here, basic data by the directory."""
    if kind == KIND:
        return import_residents(session, settings, rows, progress, skip_duplicates)
    if kind not in basic.KINDS:
        raise ImportFileError(f"unknown kind {kind!r}")
    return basic.run_import(session, settings, kind, rows, progress)
