"""Routing (派单规则): which outlet or supplier an order goes to, from its category and place.

The rules are loaded once into dictionaries keyed by (category, place) and walked from the most
specific key to the least: the order's category, then its parent categories, then any category;
for each, the community, then the service areas the community belongs to, then anywhere. The
first key with rules gives the answer (lowest ``priority``, then lowest id). A lookup is a handful
of dictionary probes, whatever the number of rules; the table reloads when rules change.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from callcenter.directory.models import Outlet, ServiceAreaCommunity
from dispatch.models import Category, RoutingRule

RELOAD_AFTER_S = 30.0  # another process may have changed the rules


@dataclass(frozen=True)
class Suggestion:
    outlet_id: int
    rule_id: int
    reason: str  # which key matched, for the seat: "category+community" ...


Key = tuple[int | None, str, int | None]


@dataclass
class RuleTable:
    rules: dict[Key, tuple[int, int, int]] = field(default_factory=dict)  # key → (priority, rule, outlet)
    parents: dict[int, int | None] = field(default_factory=dict)
    areas_of: dict[int, list[int]] = field(default_factory=dict)
    loaded_at: float = 0.0

    @classmethod
    def load(cls, session: Session) -> RuleTable:
        table = cls(loaded_at=time.monotonic())
        for cid, parent in session.exec(select(col(Category.id), Category.parent_id)):
            if cid is not None:
                table.parents[cid] = parent
        for area_id, community_id in session.exec(
            select(ServiceAreaCommunity.area_id, ServiceAreaCommunity.community_id)
        ):
            table.areas_of.setdefault(community_id, []).append(area_id)
        for rule in session.exec(select(RoutingRule).where(RoutingRule.active == True)):  # noqa: E712
            table.add(rule)
        return table

    def add(self, rule: RoutingRule) -> None:
        if rule.community_id is not None:
            key: Key = (rule.category_id, "c", rule.community_id)
        elif rule.area_id is not None:
            key = (rule.category_id, "a", rule.area_id)
        else:
            key = (rule.category_id, "*", None)
        entry = (rule.priority, rule.id or 0, rule.outlet_id)
        best = self.rules.get(key)
        if best is None or entry < best:
            self.rules[key] = entry

    def _categories(self, category_id: int | None) -> list[int | None]:
        chain: list[int | None] = []
        seen: set[int] = set()
        c = category_id
        while c is not None and c not in seen and len(chain) < 16:
            chain.append(c)
            seen.add(c)
            c = self.parents.get(c)
        chain.append(None)
        return chain

    def evaluate(self, category_id: int | None, community_id: int | None) -> Suggestion | None:
        places: list[tuple[str, int | None]] = []
        if community_id is not None:
            places.append(("c", community_id))
            places.extend(("a", a) for a in self.areas_of.get(community_id, ()))
        places.append(("*", None))
        for cat in self._categories(category_id):
            for kind, place in places:
                hit = self.rules.get((cat, kind, place))
                if hit is not None:
                    what = (
                        "category"
                        if cat == category_id and cat is not None
                        else ("parent category" if cat is not None else "any category")
                    )
                    where = {"c": "community", "a": "service area", "*": "anywhere"}[kind]
                    return Suggestion(outlet_id=hit[2], rule_id=hit[1], reason=f"{what} + {where}")
        return None


_tables: dict[str, RuleTable] = {}
_lock = threading.Lock()


def _db_key(session: Session) -> str:
    bind = session.get_bind()
    return str(bind.engine.url)


def table(session: Session) -> RuleTable:
    key = _db_key(session)
    current = _tables.get(key)
    if current is None or time.monotonic() - current.loaded_at > RELOAD_AFTER_S:
        current = RuleTable.load(session)
        with _lock:
            _tables[key] = current
    return current


def invalidate(session: Session | None = None) -> None:
    """Rules, categories or areas changed: the next lookup reloads."""
    with _lock:
        if session is None:
            _tables.clear()
        else:
            _tables.pop(_db_key(session), None)


def suggest(session: Session, category_id: int | None, community_id: int | None) -> Suggestion | None:
    return table(session).evaluate(category_id, community_id)


def suggest_outlet(session: Session, category_id: int | None, community_id: int | None) -> Outlet | None:
    hit = suggest(session, category_id, community_id)
    return session.get(Outlet, hit.outlet_id) if hit else None
