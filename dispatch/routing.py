"""Routing (派单规则): which outlet or supplier an order goes to, from its category and place.

The rules are loaded once into dictionaries keyed by (category, place) and walked from the most
specific key to the least: the order's category, then its parent categories, then any category;
for each, the grid, the community, then the service areas the community belongs to, then
anywhere. The first key with a rule valid on the order's day gives the answer (lowest
``priority``, then lowest id). A lookup is a handful of dictionary probes, whatever the number of
rules.

Every process keeps its table until the ``routing`` stamp (``dispatch.stamps``) moves: a rule,
category or area saved on any web worker bumps it in the same transaction, and the next lookup
anywhere sees the new number and reloads (one primary-key read per lookup, no timer). The bus
message ``ConfigChanged`` tells the engine and the other workers to drop their tables at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from callcenter.clock import utcnow
from callcenter.config import CHINA_TZ
from callcenter.directory.models import Grid, Outlet, ServiceAreaCommunity
from dispatch import stamps
from dispatch.models import Category, RoutingRule

STAMP = "routing"

# How specific a match is, in the order the table is walked (shown to administrators).
PLACE_KINDS: tuple[str, ...] = ("g", "c", "a", "*")
PLACE_NAMES = {"g": "grid", "c": "community", "a": "service area", "*": "anywhere"}


@dataclass(frozen=True)
class Suggestion:
    outlet_id: int
    rule_id: int
    reason: str  # which key matched, for the seat: "category + community" ...
    category_level: str = "category"  # category | parent category | any category
    place: str = "community"  # grid | community | service area | anywhere


Key = tuple[int | None, str, int | None]


@dataclass(frozen=True, order=True)
class Entry:
    priority: int
    rule_id: int
    outlet_id: int
    valid_from: date | None = None
    valid_until: date | None = None

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


def active_rule_rows(session: Session) -> Any:
    """The active routing rules as plain rows (id, category, grid, community, area, outlet,
    priority, validity): not ORM objects, so ten thousand rules load in a fraction of the time."""
    return session.connection().execute(
        sa_select(
            col(RoutingRule.id),
            col(RoutingRule.category_id),
            col(RoutingRule.grid_id),
            col(RoutingRule.community_id),
            col(RoutingRule.area_id),
            col(RoutingRule.outlet_id),
            col(RoutingRule.priority),
            col(RoutingRule.valid_from),
            col(RoutingRule.valid_until),
        ).where(col(RoutingRule.active) == True)  # noqa: E712
    )


def key_of(category: int | None, grid: int | None, community: int | None, area: int | None) -> Key:
    if grid is not None:
        return (category, "g", grid)
    if community is not None:
        return (category, "c", community)
    if area is not None:
        return (category, "a", area)
    return (category, "*", None)


def rule_key(rule: RoutingRule) -> Key:
    return key_of(rule.category_id, rule.grid_id, rule.community_id, rule.area_id)


@dataclass
class RuleTable:
    rules: dict[Key, list[Entry]] = field(default_factory=dict)  # sorted: the best first
    parents: dict[int, int | None] = field(default_factory=dict)
    areas_of: dict[int, list[int]] = field(default_factory=dict)
    community_of_grid: dict[int, int] = field(default_factory=dict)
    version: int = -1
    _chains: dict[int | None, list[int | None]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, version: int = -1) -> RuleTable:
        table = cls(version=version)
        for cid, parent in session.exec(select(col(Category.id), Category.parent_id)):
            if cid is not None:
                table.parents[cid] = parent
        for area_id, community_id in session.exec(
            select(ServiceAreaCommunity.area_id, ServiceAreaCommunity.community_id)
        ):
            table.areas_of.setdefault(community_id, []).append(area_id)
        for gid, community_id in session.exec(select(col(Grid.id), Grid.community_id)):
            if gid is not None:
                table.community_of_grid[gid] = community_id
        inactive = set(session.exec(select(col(Outlet.id)).where(col(Outlet.active) == False)))  # noqa: E712
        for rid, cat, grid, com, area, outlet, priority, start, end in active_rule_rows(session):
            if outlet in inactive:
                continue
            key = key_of(cat, grid, com, area)
            table.rules.setdefault(key, []).append(Entry(priority, rid or 0, outlet, start, end))
        for entries in table.rules.values():
            entries.sort()
        return table

    def add(self, rule: RoutingRule) -> None:
        entry = Entry(rule.priority, rule.id or 0, rule.outlet_id, rule.valid_from, rule.valid_until)
        self.rules.setdefault(rule_key(rule), []).append(entry)

    def chain(self, category_id: int | None) -> list[int | None]:
        """The category, its parents up to the root, then "any category"."""
        hit = self._chains.get(category_id)
        if hit is not None:
            return hit
        out: list[int | None] = []
        seen: set[int] = set()
        c = category_id
        while c is not None and c not in seen and len(out) < 16:
            out.append(c)
            seen.add(c)
            c = self.parents.get(c)
        out.append(None)
        self._chains[category_id] = out
        return out

    def places(self, community_id: int | None, grid_id: int | None = None) -> list[tuple[str, int | None]]:
        if community_id is None and grid_id is not None:
            community_id = self.community_of_grid.get(grid_id)
        out: list[tuple[str, int | None]] = []
        if grid_id is not None:
            out.append(("g", grid_id))
        if community_id is not None:
            out.append(("c", community_id))
            out.extend(("a", a) for a in self.areas_of.get(community_id, ()))
        out.append(("*", None))
        return out

    def evaluate(
        self,
        category_id: int | None,
        community_id: int | None,
        grid_id: int | None = None,
        day: date | None = None,
    ) -> Suggestion | None:
        day = day or today()
        places = self.places(community_id, grid_id)
        for cat in self.chain(category_id):
            for kind, place in places:
                entries = self.rules.get((cat, kind, place))
                if not entries:
                    continue
                for e in entries:
                    if e.valid_on(day):
                        level = (
                            "category"
                            if cat == category_id and cat is not None
                            else ("parent category" if cat is not None else "any category")
                        )
                        where = PLACE_NAMES[kind]
                        return Suggestion(e.outlet_id, e.rule_id, f"{level} + {where}", level, where)
        return None


def today() -> date:
    return utcnow().astimezone(CHINA_TZ).date()


def china_date(ts: datetime) -> date:
    return ts.astimezone(CHINA_TZ).date() if ts.tzinfo else ts.date()


_tables: dict[str, RuleTable] = {}
_lock = threading.Lock()


def _db_key(session: Session) -> str:
    bind = session.get_bind()
    return str(bind.engine.url)


def table(session: Session) -> RuleTable:
    """This database's rule table, reloaded when the ``routing`` stamp moved."""
    key = _db_key(session)
    version = stamps.current(session, STAMP)
    current = _tables.get(key)
    if current is None or current.version != version:
        current = RuleTable.load(session, version)
        with _lock:
            _tables[key] = current
    return current


def invalidate(session: Session | None = None) -> None:
    """Rules, categories or areas changed: bump the stamp (in the caller's transaction, so every
    process reloads) and drop this process's tables."""
    if session is not None:
        stamps.bump(session, STAMP)
    with _lock:
        _tables.clear()


def forget() -> None:
    """Drop this process's tables (another process changed the rules: the bus said so)."""
    with _lock:
        _tables.clear()


def suggest(
    session: Session,
    category_id: int | None,
    community_id: int | None,
    grid_id: int | None = None,
    day: date | None = None,
) -> Suggestion | None:
    return table(session).evaluate(category_id, community_id, grid_id, day)


def suggest_outlet(session: Session, category_id: int | None, community_id: int | None) -> Outlet | None:
    hit = suggest(session, category_id, community_id)
    return session.get(Outlet, hit.outlet_id) if hit else None
