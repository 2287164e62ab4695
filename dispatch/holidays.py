"""The holiday calendar (节假日): which days are working days, for deadlines.

``chinese-calendar`` knows the years of its release; administrators enter the others (a year's
public holidays and make-up working days, typed in or imported from the State Council's notice as
a table) and may correct a known year. A year with any entry is known: its entered days are what
they say, its other days follow the week. A day of a year nobody knows is counted as a plain
weekday **and reported**: the deadline says which years it assumed (the order's history keeps it),
and the doctor and the administrators' banner warn from 1 November when next year is unknown.

Each process caches the entries until the ``calendar`` stamp moves (``dispatch.stamps``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import chinese_calendar
from sqlmodel import Session, col, select

from callcenter.audit.service import record as audit
from callcenter.clock import china_now
from callcenter.config import Settings
from callcenter.database import session_scope
from dispatch import stamps
from dispatch.categories import Editor
from dispatch.errors import ConfigError
from dispatch.models import Holiday

log = logging.getLogger(__name__)

STAMP = "calendar"
WARN_FROM = (11, 1)  # from 1 November, next year must be known
COLUMNS: tuple[tuple[str, str], ...] = (("day", "日期"), ("workday", "调休上班"), ("name", "名称"))


@lru_cache(maxsize=64)
def package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@dataclass
class Calendar:
    """The entered days over the package's, and the years the answers had to assume."""

    days: dict[date, bool] = field(default_factory=dict)  # entered: day → is a working day
    years: frozenset[int] = frozenset()  # years with entries
    version: int = -1

    def knows(self, year: int) -> bool:
        return year in self.years or package_knows(year)

    def is_workday(self, day: date, assumed: set[int] | None = None) -> bool:
        entered = self.days.get(day)
        if entered is not None:
            return entered
        if day.year in self.years:
            return day.weekday() < 5
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if assumed is not None:
                assumed.add(day.year)
            return day.weekday() < 5

    def missing(self, today: date) -> list[int]:
        """The years that should be known by ``today`` and are not: this year, and next year from
        1 November."""
        years = [today.year]
        if (today.month, today.day) >= WARN_FROM:
            years.append(today.year + 1)
        return [y for y in years if not self.knows(y)]


_cache: dict[str, Calendar] = {}
_lock = threading.Lock()


def current(session: Session) -> Calendar:
    key = str(session.get_bind().engine.url)
    version = stamps.current(session, STAMP)
    cal = _cache.get(key)
    if cal is None or cal.version != version:
        days = {h.day: h.workday for h in session.exec(select(Holiday))}
        cal = Calendar(days=days, years=frozenset(d.year for d in days), version=version)
        with _lock:
            _cache[key] = cal
    return cal


def missing_years(settings: Settings) -> list[int]:
    """The years the calendar should know by today (the business clock, ``settings.clock`` when
    frozen) and does not: for the doctor and the administrators' banner."""
    with session_scope(settings) as s:
        return current(s).missing(china_now(settings).date())


def forget() -> None:
    with _lock:
        _cache.clear()


def plain() -> Calendar:
    """The package's knowledge alone (no database at hand)."""
    return Calendar()


# --- administrators' changes (no commit) ------------------------------------------------------


def _day(value: Any) -> date:
    if isinstance(value, date):
        return value
    text = str(value or "").strip()[:10].replace("/", "-")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a date: {text!r}", "holiday_day") from None


def _name(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isprintable()).strip()[:32]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in {"", "0", "否", "false", "no", "off", "休", "放假"}:
        return False
    if text in {"1", "是", "true", "yes", "on", "班", "上班"}:
        return True
    raise ConfigError(f"not yes or no: {text[:20]!r}", "flag", value=text[:20])


def listing(session: Session, year: int) -> list[Holiday]:
    return list(
        session.exec(
            select(Holiday)
            .where(Holiday.day >= date(year, 1, 1), Holiday.day <= date(year, 12, 31))
            .order_by(col(Holiday.day))
        )
    )


def save_day(session: Session, editor: Editor, day: Any, workday: Any, name: Any) -> Holiday:
    d = _day(day)
    if not 2000 <= d.year <= 2100:
        raise ConfigError(f"year out of range: {d.year}", "holiday_day")
    is_work = _flag(workday)
    if is_work and d.weekday() < 5:
        raise ConfigError(f"{d} is a weekday: a make-up working day is on a weekend", "holiday_workday")
    row = session.get(Holiday, d)
    old = {"workday": row.workday, "name": row.name} if row else None
    if row is None:
        row = Holiday(day=d)
    row.workday, row.name = is_work, _name(name)
    session.add(row)
    session.flush()
    audit(
        session,
        editor.username,
        "calendar.save",
        target=f"holiday:{d.isoformat()}",
        role=editor.role,
        ip=editor.ip,
        old=old,
        new={"workday": row.workday, "name": row.name},
    )
    stamps.bump(session, STAMP)
    return row


def delete_day(session: Session, editor: Editor, day: Any) -> None:
    d = _day(day)
    row = session.get(Holiday, d)
    if row is None:
        raise ConfigError(f"no entry for {d}", "not_found")
    old = {"workday": row.workday, "name": row.name}
    session.delete(row)
    audit(
        session,
        editor.username,
        "calendar.delete",
        target=f"holiday:{d}",
        role=editor.role,
        ip=editor.ip,
        old=old,
    )
    session.flush()
    stamps.bump(session, STAMP)


def import_rows(session: Session, editor: Editor, rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """A table of days (日期, 调休上班, 名称); a day range ``2027-10-01~2027-10-07`` is every day of
    it. One wrong row refuses the table (``row`` names it)."""
    parsed: list[tuple[date, bool, str]] = []
    for i, raw in enumerate(rows, start=2):
        try:
            text = str(raw.get("day") or "").strip()
            first, _, last = text.partition("~")
            start = _day(first)
            end = _day(last) if last else start
            if end < start or (end - start).days > 31:
                raise ConfigError(f"a range of at most a month: {text!r}", "holiday_day")
            workday = _flag(raw.get("workday"))
            name = _name(raw.get("name"))
            d = start
            while d <= end:
                parsed.append((d, workday, name))
                d += timedelta(days=1)
        except ConfigError as exc:
            raise ConfigError(f"row {i}: {exc}", exc.code, row=i, **exc.params) from exc
    for d, workday, name in parsed:
        save_day(session, editor, d, workday, name)
    return {"days": len(parsed)}


def export_rows(session: Session) -> list[dict[str, Any]]:
    return [
        {"day": h.day.isoformat(), "workday": h.workday, "name": h.name}
        for h in session.exec(select(Holiday).order_by(col(Holiday.day)))
    ]
