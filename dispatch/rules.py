"""The administrators' routing rules (派单规则): saving, disabling and deleting rules, the preview
("an order of category X from community Y goes to …, by rule …"), the coverage report (category ×
community pairs no rule covers, rules that can never win) and the table import / export.

A rule is the one source of truth for where orders go: the outlet's own form no longer holds
categories or areas. Every change is audited (old → new) and moves the routing stamp in the
caller's transaction, so the very next order on any process uses it (``dispatch.routing``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from callcenter.audit.service import record as audit
from callcenter.directory.models import Community, Grid, Outlet, ServiceArea
from dispatch import routing
from dispatch.categories import Editor, leaves
from dispatch.errors import ConfigError
from dispatch.models import Category, RoutingRule

FIELDS = (
    "category_id",
    "community_id",
    "area_id",
    "grid_id",
    "outlet_id",
    "priority",
    "valid_from",
    "valid_until",
    "note",
    "active",
)

# The table columns of an import / export: names, not ids, so a table moves between districts.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("category", "分类编码"),
    ("community", "社区"),
    ("area", "服务片区"),
    ("grid", "网格"),
    ("outlet", "网点"),
    ("priority", "优先级"),
    ("valid_from", "生效日期"),
    ("valid_until", "失效日期"),
    ("note", "备注"),
    ("active", "启用"),
)


def snapshot(rule: RoutingRule) -> dict[str, Any]:
    out = {f: getattr(rule, f) for f in FIELDS}
    for f in ("valid_from", "valid_until"):
        out[f] = out[f].isoformat() if out[f] else None
    return out


def _int_or_none(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise ConfigError(f"{field}: not an id: {text[:20]!r}", "rule_field", field=field)
    return int(text)


def _day(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ConfigError(f"{field}: not a date: {str(value)[:20]!r}", "rule_date", field=field) from None


def clean(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    """The rule's fields from a form or JSON body, checked against the database."""
    out: dict[str, Any] = {}
    for f in ("category_id", "community_id", "area_id", "grid_id", "outlet_id"):
        out[f] = _int_or_none(data.get(f), f)
    checks = (
        ("category_id", Category),
        ("community_id", Community),
        ("area_id", ServiceArea),
        ("grid_id", Grid),
        ("outlet_id", Outlet),
    )
    for f, model in checks:
        if out[f] is not None and session.get(model, out[f]) is None:
            raise ConfigError(f"{f}: no such item {out[f]}", "rule_unknown", field=f)
    if out["outlet_id"] is None:
        raise ConfigError("a rule names the outlet or supplier it sends orders to", "rule_outlet")
    if sum(out[f] is not None for f in ("community_id", "area_id", "grid_id")) > 1:
        raise ConfigError("a rule covers one place: a grid, a community or a service area", "rule_place")
    priority = str(data.get("priority", "") or "100").strip()
    if not (priority.isascii() and priority.isdigit()) or len(priority) > 4:
        raise ConfigError(f"priority is 0 to 9999: {priority[:10]!r}", "rule_priority")
    out["priority"] = int(priority)
    out["valid_from"] = _day(data.get("valid_from"), "valid_from")
    out["valid_until"] = _day(data.get("valid_until"), "valid_until")
    if out["valid_from"] and out["valid_until"] and out["valid_until"] < out["valid_from"]:
        raise ConfigError("the rule ends before it starts", "rule_dates")
    out["note"] = "".join(ch for ch in str(data.get("note") or "") if ch.isprintable()).strip()[:255]
    active = data.get("active", True)
    out["active"] = (
        active if isinstance(active, bool) else str(active).lower() in {"1", "true", "on", "yes", "是"}
    )
    return out


def _audit(session: Session, editor: Editor, action: str, rule: RoutingRule, old: dict | None) -> None:
    new = snapshot(rule)
    detail: dict[str, Any] = (
        {"changes": {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}} if old else {"new": new}
    )
    audit(
        session, editor.username, action, target=f"rule:{rule.id}", role=editor.role, ip=editor.ip, **detail
    )


def get(session: Session, rule_id: int) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id) if 0 < rule_id < 2**31 else None
    if rule is None:
        raise ConfigError(f"no rule {rule_id}", "not_found")
    return rule


def create(session: Session, editor: Editor, data: dict[str, Any]) -> RoutingRule:
    rule = RoutingRule(**clean(session, data))
    session.add(rule)
    session.flush()
    _audit(session, editor, "rule.create", rule, None)
    routing.invalidate(session)
    return rule


def update(session: Session, editor: Editor, rule_id: int, data: dict[str, Any]) -> RoutingRule:
    rule = get(session, rule_id)
    old = snapshot(rule)
    merged = {**old, **{k: v for k, v in data.items() if k in FIELDS}}
    for k, v in clean(session, merged).items():
        setattr(rule, k, v)
    if snapshot(rule) == old:
        return rule
    session.add(rule)
    session.flush()
    _audit(session, editor, "rule.update", rule, old)
    routing.invalidate(session)
    return rule


def delete(session: Session, editor: Editor, rule_id: int) -> None:
    rule = get(session, rule_id)
    old = snapshot(rule)
    session.delete(rule)
    audit(
        session,
        editor.username,
        "rule.delete",
        target=f"rule:{rule_id}",
        role=editor.role,
        ip=editor.ip,
        old=old,
    )
    session.flush()
    routing.invalidate(session)


# --- reading: the list, the preview, the coverage -------------------------------------------------


@dataclass
class Names:
    """Ids to names (and back) for the page, the preview and the table."""

    categories: dict[int, Category]
    communities: dict[int, str]
    areas: dict[int, str]
    grids: dict[int, tuple[str, int]]
    outlets: dict[int, str]

    @classmethod
    def load(cls, session: Session) -> Names:
        return cls(
            categories={c.id: c for c in session.exec(select(Category)) if c.id is not None},
            communities={c.id: c.name for c in session.exec(select(Community)) if c.id is not None},
            areas={a.id: a.name for a in session.exec(select(ServiceArea)) if a.id is not None},
            grids={g.id: (g.name, g.community_id) for g in session.exec(select(Grid)) if g.id is not None},
            outlets={o.id: o.name for o in session.exec(select(Outlet)) if o.id is not None},
        )

    def category(self, cid: int | None) -> str:
        return self.categories[cid].name if cid is not None and cid in self.categories else ""

    def place(self, rule: RoutingRule) -> str:
        if rule.grid_id is not None:
            name, community = self.grids.get(rule.grid_id, ("", 0))
            return f"{self.communities.get(community, '')}/{name}"
        if rule.community_id is not None:
            return self.communities.get(rule.community_id, "")
        if rule.area_id is not None:
            return self.areas.get(rule.area_id, "")
        return ""


def listing(session: Session, outlet_id: int | None = None) -> list[dict[str, Any]]:
    names = Names.load(session)
    q = select(RoutingRule).order_by(
        col(RoutingRule.category_id), col(RoutingRule.priority), col(RoutingRule.id)
    )
    if outlet_id is not None:
        q = q.where(RoutingRule.outlet_id == outlet_id)
    out = []
    for r in session.exec(q):
        out.append(
            {
                **snapshot(r),
                "id": r.id,
                "category": names.category(r.category_id),
                "place": names.place(r),
                "place_kind": routing.PLACE_NAMES[routing.rule_key(r)[1]],
                "outlet": names.outlets.get(r.outlet_id, ""),
            }
        )
    return out


def preview(
    session: Session,
    category_id: int | None,
    community_id: int | None,
    grid_id: int | None = None,
    day: date | None = None,
) -> dict[str, Any]:
    """Where an order of this category from this place goes on this day, and by which rule."""
    hit = routing.suggest(session, category_id, community_id, grid_id, day)
    if hit is None:
        return {"outlet": None, "rule": None}
    outlet = session.get(Outlet, hit.outlet_id)
    return {
        "outlet": {"id": hit.outlet_id, "name": outlet.name if outlet else ""},
        "rule": {
            "id": hit.rule_id,
            "category_level": hit.category_level,
            "place": hit.place,
            "reason": hit.reason,
        },
    }


def coverage(session: Session, day: date | None = None) -> dict[str, Any]:
    """Every (active leaf category, community) pair no rule covers on ``day``, and the rules that
    can never win (expired, disabled outlet, or always beaten by a rule of the same key)."""
    day = day or routing.today()
    table = routing.table(session)
    cats = [(c.id, c.name, table.chain(c.id)) for c in sorted(leaves(session), key=lambda c: c.code)]
    communities = list(session.exec(select(col(Community.id), Community.name).order_by(col(Community.id))))
    # The categories with a rule valid on the day at each place; a (leaf, community) pair is
    # covered when the leaf or a parent (or "any category") has one at a place of the community.
    at_place: dict[tuple[str, int | None], set[int | None]] = {}
    for (cat_id, kind, place), entries in table.rules.items():
        if kind != "g" and any(e.valid_on(day) for e in entries):
            at_place.setdefault((kind, place), set()).add(cat_id)
    uncovered = []
    for com_id, com_name in communities:
        here: set[int | None] = set()
        for kind, place in table.places(com_id):
            here |= at_place.get((kind, place), set())
        for cat_id, cat_name, chain in cats:
            if here.isdisjoint(chain):
                uncovered.append(
                    {
                        "category_id": cat_id,
                        "category": cat_name,
                        "community_id": com_id,
                        "community": com_name,
                    }
                )
    return {
        "day": day.isoformat(),
        "pairs": len(cats) * len(communities),
        "uncovered": uncovered,
        "never_win": never_win(session, day),
    }


def never_win(session: Session, day: date) -> list[dict[str, Any]]:
    inactive_outlets = set(session.exec(select(col(Outlet.id)).where(col(Outlet.active) == False)))  # noqa: E712
    inactive_cats = set(session.exec(select(col(Category.id)).where(col(Category.active) == False)))  # noqa: E712
    by_key: dict[routing.Key, list[Any]] = {}
    out: list[dict[str, Any]] = []
    for r in routing.active_rule_rows(session):
        by_key.setdefault(routing.key_of(r.category_id, r.grid_id, r.community_id, r.area_id), []).append(r)
    for rules in by_key.values():
        rules.sort(key=lambda r: (r.priority, r.id or 0))
        for i, r in enumerate(rules):
            why = ""
            if r.valid_until is not None and r.valid_until < day:
                why = "expired"
            elif r.outlet_id in inactive_outlets:
                why = "outlet_inactive"
            elif r.category_id in inactive_cats:
                why = "category_inactive"
            else:
                for better in rules[:i]:
                    if better.outlet_id in inactive_outlets:
                        continue
                    if _contains(better, r):
                        why = f"shadowed:{better.id}"
                        break
            if why:
                out.append(
                    {"id": r.id, "reason": why.split(":")[0], "by": why.split(":")[1] if ":" in why else None}
                )
    return sorted(out, key=lambda x: x["id"] or 0)


def _contains(better: Any, rule: Any) -> bool:
    """``better`` is valid on every day ``rule`` is."""
    start_ok = better.valid_from is None or (
        rule.valid_from is not None and better.valid_from <= rule.valid_from
    )
    end_ok = better.valid_until is None or (
        rule.valid_until is not None and rule.valid_until <= better.valid_until
    )
    return start_ok and end_ok


# --- table import / export --------------------------------------------------------------------


def export_rows(session: Session) -> list[dict[str, Any]]:
    names = Names.load(session)
    out = []
    for r in session.exec(select(RoutingRule).order_by(col(RoutingRule.id))):
        grid = ""
        if r.grid_id is not None:
            gname, gcom = names.grids.get(r.grid_id, ("", 0))
            grid = f"{names.communities.get(gcom, '')}/{gname}"
        cat = names.categories.get(r.category_id) if r.category_id is not None else None
        out.append(
            {
                "category": cat.code if cat else "",
                "community": names.communities.get(r.community_id, "") if r.community_id else "",
                "area": names.areas.get(r.area_id, "") if r.area_id else "",
                "grid": grid,
                "outlet": names.outlets.get(r.outlet_id, ""),
                "priority": r.priority,
                "valid_from": r.valid_from.isoformat() if r.valid_from else "",
                "valid_until": r.valid_until.isoformat() if r.valid_until else "",
                "note": r.note,
                "active": r.active,
            }
        )
    return out


def import_rows(
    session: Session, editor: Editor, rows: Iterable[dict[str, Any]], replace: bool = False
) -> dict[str, int]:
    """Rules from a table of names (``COLUMNS``); a wrong row refuses the whole table (``row``
    names it). ``replace``: the table is the whole rule set (the others are deleted). No commit."""
    names = Names.load(session)
    cat_by_code = {c.code: cid for cid, c in names.categories.items()}
    com_by_name = {v: k for k, v in names.communities.items()}
    area_by_name = {v: k for k, v in names.areas.items()}
    grid_by_name = {f"{names.communities.get(c, '')}/{n}": gid for gid, (n, c) in names.grids.items()}
    outlet_by_name = {v: k for k, v in names.outlets.items()}
    parsed = []
    for i, raw in enumerate(rows, start=2):

        def look(table: dict[str, int], field: str, raw: dict[str, Any] = raw, row: int = i) -> int | None:
            text = str(raw.get(field) or "").strip()
            if not text:
                return None
            if text not in table:
                raise ConfigError(
                    f"row {row}: unknown {field} {text[:40]!r}", "rule_unknown", field=field, row=row
                )
            return table[text]

        try:
            parsed.append(
                clean(
                    session,
                    {
                        "category_id": look(cat_by_code, "category"),
                        "community_id": look(com_by_name, "community"),
                        "area_id": look(area_by_name, "area"),
                        "grid_id": look(grid_by_name, "grid"),
                        "outlet_id": look(outlet_by_name, "outlet"),
                        "priority": raw.get("priority"),
                        "valid_from": raw.get("valid_from"),
                        "valid_until": raw.get("valid_until"),
                        "note": raw.get("note"),
                        "active": raw.get("active") if raw.get("active") not in (None, "") else True,
                    },
                )
            )
        except ConfigError as exc:
            if "row" in exc.params:
                raise
            raise ConfigError(f"row {i}: {exc}", exc.code, row=i, **exc.params) from exc
    deleted = 0
    if replace:
        for r in session.exec(select(RoutingRule)):
            session.delete(r)
            deleted += 1
        session.flush()
    for p in parsed:
        session.add(RoutingRule(**p))
    session.flush()
    audit(
        session,
        editor.username,
        "rule.import",
        target="rules",
        role=editor.role,
        ip=editor.ip,
        created=len(parsed),
        deleted=deleted,
    )
    routing.invalidate(session)
    return {"created": len(parsed), "deleted": deleted}
