"""The category tree (事项分类): the default tree a new installation starts with, and the
administrators' changes to it: add, rename, move, disable, national codes, delete (only while
nothing uses the node), import and export as table rows (codes are the keys).

The same tree drives the order form, routing, statistics, Open311's service codes and the
knowledge base. Every change is audited (old → new) in the caller's transaction and moves the
routing stamp (a moved category changes which rules cover it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, select

from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.database import session_scope
from dispatch import routing
from dispatch.errors import ConfigError
from dispatch.models import Category, RoutingRule, WorkOrder

# (code, name, parent code, approval matter)
CATEGORY_TREE: tuple[tuple[str, str, str | None, bool], ...] = (
    ("LIFE", "生活服务", None, False),
    ("LIFE-REPAIR", "水电维修", "LIFE", False),
    ("LIFE-CLEAN", "家政保洁", "LIFE", False),
    ("LIFE-GOODS", "物资配送", "LIFE", False),
    ("ELDER", "养老服务", None, False),
    ("ELDER-HOME", "居家养老", "ELDER", False),
    ("ELDER-MEAL", "助餐送餐", "ELDER", False),
    ("ELDER-ESCORT", "陪诊就医", "ELDER", False),
    ("HEALTH", "医疗卫生", None, False),
    ("HEALTH-ASK", "医疗咨询", "HEALTH", False),
    ("HEALTH-VISIT", "上门巡诊", "HEALTH", False),
    ("PROP", "物业管理", None, False),
    ("PROP-FACILITY", "公共设施", "PROP", False),
    ("PROP-LIGHT", "楼道照明", "PROP-FACILITY", False),
    ("PROP-SANITATION", "环境卫生", "PROP", False),
    ("AFFAIRS", "社区事务", None, False),
    ("AFFAIRS-CERT", "证明办理", "AFFAIRS", True),
    ("AFFAIRS-AID", "低保救助", "AFFAIRS", True),
    ("AFFAIRS-POLICY", "政策咨询", "AFFAIRS", False),
    ("SAFETY", "安全隐患", None, False),
    ("SAFETY-FIRE", "消防隐患", "SAFETY", False),
    ("SAFETY-GAS", "燃气隐患", "SAFETY", False),
    ("DISPUTE", "矛盾纠纷", None, False),
)

CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
NATIONAL_RE = re.compile(r"[0-9]{6}")
MAX_DEPTH = 8

# The table columns of an import / export, with their Chinese headings (either is accepted).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "编码"),
    ("name", "名称"),
    ("parent", "上级编码"),
    ("national_code", "国标编码"),
    ("approval_matter", "审批事项"),
    ("active", "启用"),
)


@dataclass(frozen=True)
class Editor:
    """Who changes the configuration, for the audit log."""

    username: str
    role: str = ""
    ip: str = ""


def seed_categories(session: Session) -> dict[str, Category]:
    """The default category tree (idempotent: existing codes are kept)."""
    by_code = {c.code: c for c in session.exec(select(Category))}
    for code, name, parent, approval in CATEGORY_TREE:
        if code in by_code:
            continue
        cat = Category(
            code=code, name=name, parent_id=by_code[parent].id if parent else None, approval_matter=approval
        )
        session.add(cat)
        session.flush()
        by_code[code] = cat
    routing.invalidate(session)
    return by_code


def seed_if_empty(settings: Settings) -> int:
    """A database without any category gets the default tree (at start-up); returns how many."""
    with session_scope(settings) as s:
        if s.exec(select(func.count(col(Category.id)))).one():
            return 0
        made = len(seed_categories(s))
        s.commit()
        return made


# --- reading --------------------------------------------------------------------------------


def snapshot(cat: Category) -> dict[str, Any]:
    return {
        "code": cat.code,
        "name": cat.name,
        "parent_id": cat.parent_id,
        "national_code": cat.national_code,
        "approval_matter": cat.approval_matter,
        "active": cat.active,
    }


def tree(session: Session, with_usage: bool = True) -> list[dict[str, Any]]:
    """Every node, depth-first (children by code), with its depth, its parent's code and how many
    orders and rules use it."""
    rows = list(session.exec(select(Category).order_by(col(Category.code))))
    orders: dict[int, int] = {}
    rules: dict[int, int] = {}
    if with_usage:
        orders = dict(
            session.exec(  # type: ignore[arg-type]
                select(WorkOrder.category_id, func.count(col(WorkOrder.id)))
                .where(col(WorkOrder.category_id).is_not(None))
                .group_by(col(WorkOrder.category_id))
            ).all()
        )
        rules = dict(
            session.exec(  # type: ignore[arg-type]
                select(RoutingRule.category_id, func.count(col(RoutingRule.id)))
                .where(col(RoutingRule.category_id).is_not(None))
                .group_by(col(RoutingRule.category_id))
            ).all()
        )
    children: dict[int | None, list[Category]] = {}
    code_of = {c.id: c.code for c in rows}
    for c in rows:
        children.setdefault(c.parent_id, []).append(c)
    out: list[dict[str, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for c in children.get(parent, []):
            out.append(
                {
                    "id": c.id,
                    "code": c.code,
                    "name": c.name,
                    "parent_id": c.parent_id,
                    "parent": code_of.get(c.parent_id, "") if c.parent_id else "",
                    "national_code": c.national_code,
                    "approval_matter": c.approval_matter,
                    "active": c.active,
                    "depth": depth,
                    "leaf": c.id not in children,
                    "orders": orders.get(c.id or 0, 0),
                    "rules": rules.get(c.id or 0, 0),
                }
            )
            walk(c.id, depth + 1)

    walk(None, 0)
    return out


def leaves(session: Session, active_only: bool = True) -> list[Category]:
    """Categories without children (the ones an order is filed under)."""
    rows = list(session.exec(select(Category)))
    parents = {c.parent_id for c in rows if c.parent_id is not None and (c.active or not active_only)}
    return [c for c in rows if c.id not in parents and (c.active or not active_only)]


# --- checks ---------------------------------------------------------------------------------


def _name(value: Any) -> str:
    name = "".join(ch for ch in str(value or "") if ch.isprintable()).strip()
    if not 1 <= len(name) <= 64:
        raise ConfigError(f"a category name has 1 to 64 characters: {name[:80]!r}", "category_name")
    return name


def _code(value: Any) -> str:
    code = str(value or "").strip()
    if not CODE_RE.fullmatch(code):
        raise ConfigError(
            f"a category code is 1 to 32 letters, digits, - or _: {code[:40]!r}", "category_code"
        )
    return code


def _national(value: Any) -> str:
    code = str(value or "").strip()
    if code and not NATIONAL_RE.fullmatch(code):
        raise ConfigError(f"a national code is six digits: {code[:20]!r}", "national_code")
    return code


def _check_parent(session: Session, cat_id: int | None, parent_id: int | None) -> None:
    """The parent exists and is not the category itself or one of its descendants."""
    if parent_id is None:
        return
    if not 0 < parent_id < 2**31:
        raise ConfigError(f"no category {parent_id}", "category_parent")
    seen: set[int] = set()
    p: int | None = parent_id
    depth = 0
    while p is not None:
        if p == cat_id:
            raise ConfigError("a category cannot move below itself", "category_cycle")
        if p in seen:
            break
        seen.add(p)
        node = session.get(Category, p)
        if node is None:
            raise ConfigError(f"no category {p}", "category_parent")
        p = node.parent_id
        depth += 1
    if depth >= MAX_DEPTH:
        raise ConfigError(f"the tree is at most {MAX_DEPTH} levels deep", "category_depth", depth=MAX_DEPTH)


def _audit(session: Session, editor: Editor, action: str, cat: Category, old: dict | None) -> None:
    new = snapshot(cat)
    changed = {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v} if old else {}
    audit(
        session,
        editor.username,
        action,
        target=f"category:{cat.id}",
        role=editor.role,
        ip=editor.ip,
        name=cat.name,
        **({"changes": changed} if old else {"new": new}),
    )


def get(session: Session, cat_id: int) -> Category:
    cat = session.get(Category, cat_id) if 0 < cat_id < 2**31 else None
    if cat is None:
        raise ConfigError(f"no category {cat_id}", "not_found")
    return cat


# --- changes (no commit: the caller's transaction) --------------------------------------------


def create(
    session: Session,
    editor: Editor,
    *,
    name: Any,
    parent_id: int | None = None,
    code: Any = "",
    national_code: Any = "",
    approval_matter: bool = False,
) -> Category:
    name = _name(name)
    national = _national(national_code)
    _check_parent(session, None, parent_id)
    given = str(code or "").strip()
    cat = Category(
        code=_code(given) if given else f"TMP-{secrets.token_hex(8)}",
        name=name,
        parent_id=parent_id,
        national_code=national,
        approval_matter=bool(approval_matter),
    )
    if given and session.exec(select(Category.id).where(Category.code == cat.code)).first() is not None:
        raise ConfigError(f"the code {cat.code} is taken", "category_duplicate", value=cat.code)
    session.add(cat)
    session.flush()
    if not given:  # a code from the id: unique, and stable for imports and Open311
        cat.code = f"C{cat.id:05d}"
        session.add(cat)
        session.flush()
    _audit(session, editor, "category.create", cat, None)
    routing.invalidate(session)
    return cat


def update(session: Session, editor: Editor, cat_id: int, changes: dict[str, Any]) -> Category:
    """Rename, move (``parent_id``; None: to the top), national code, approval flag, enable or
    disable. Only the keys given change."""
    cat = get(session, cat_id)
    old = snapshot(cat)
    if "name" in changes:
        cat.name = _name(changes["name"])
    if "national_code" in changes:
        cat.national_code = _national(changes["national_code"])
    if "parent_id" in changes:
        parent = changes["parent_id"]
        parent_id = int(parent) if parent not in (None, "") else None
        _check_parent(session, cat.id, parent_id)
        cat.parent_id = parent_id
    if "approval_matter" in changes:
        cat.approval_matter = bool(changes["approval_matter"])
    if "active" in changes:
        cat.active = bool(changes["active"])
    if snapshot(cat) == old:
        return cat
    session.add(cat)
    session.flush()
    action = "category.move" if old["parent_id"] != cat.parent_id else "category.update"
    _audit(session, editor, action, cat, old)
    routing.invalidate(session)
    return cat


def usage(session: Session, cat_id: int) -> dict[str, int]:
    def count(q: Any) -> int:
        return int(session.exec(q).one())

    return {
        "orders": count(select(func.count(col(WorkOrder.id))).where(WorkOrder.category_id == cat_id)),
        "rules": count(select(func.count(col(RoutingRule.id))).where(RoutingRule.category_id == cat_id)),
        "children": count(select(func.count(col(Category.id))).where(Category.parent_id == cat_id)),
    }


def delete(session: Session, editor: Editor, cat_id: int) -> None:
    """Only a node nothing uses: no order, no rule, no child (disable it otherwise)."""
    cat = get(session, cat_id)
    used = usage(session, cat_id)
    if any(used.values()):
        raise ConfigError(f"{cat.name} is still used: {used}", "category_in_use", name=cat.name, **used)
    old = snapshot(cat)
    session.delete(cat)
    audit(
        session,
        editor.username,
        "category.delete",
        target=f"category:{cat_id}",
        role=editor.role,
        ip=editor.ip,
        name=old["name"],
        old=old,
    )
    session.flush()
    routing.invalidate(session)


# --- table import / export ------------------------------------------------------------------


def export_rows(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "code": r["code"],
            "name": r["name"],
            "parent": r["parent"],
            "national_code": r["national_code"],
            "approval_matter": r["approval_matter"],
            "active": r["active"],
        }
        for r in tree(session, with_usage=False)
    ]


def _flag(value: Any, default: bool) -> bool:
    text = str(value if value is not None else "").strip().lower()
    if not text:
        return default
    if text in {"是", "1", "true", "yes", "y", "启用"}:
        return True
    if text in {"否", "0", "false", "no", "n", "停用"}:
        return False
    raise ConfigError(f"not yes or no: {text[:20]!r}", "flag", value=text[:20])


def import_rows(session: Session, editor: Editor, rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Add or update by code (parents before children in any order of rows); a wrong row refuses
    the whole table (``ConfigError`` with ``row``). Nothing is deleted. No commit."""
    parsed: list[dict[str, Any]] = []
    for i, raw in enumerate(rows, start=2):  # row 1 is the headings
        try:
            parsed.append(
                {
                    "code": _code(raw.get("code")),
                    "name": _name(raw.get("name")),
                    "parent": str(raw.get("parent") or "").strip(),
                    "national_code": _national(raw.get("national_code")),
                    "approval_matter": _flag(raw.get("approval_matter"), False),
                    "active": _flag(raw.get("active"), True),
                }
            )
        except ConfigError as exc:
            raise ConfigError(f"row {i}: {exc}", exc.code, row=i, **exc.params) from exc
    codes = [p["code"] for p in parsed]
    if len(set(codes)) != len(codes):
        dup = next(c for c in codes if codes.count(c) > 1)
        raise ConfigError(f"the code {dup} appears twice", "category_duplicate", value=dup)
    by_code = {c.code: c for c in session.exec(select(Category))}
    known = set(by_code) | set(codes)
    for i, p in enumerate(parsed, start=2):
        if p["parent"] and p["parent"] not in known:
            raise ConfigError(f"row {i}: no parent {p['parent']}", "category_parent", row=i)
    made = changed = 0
    pending = list(parsed)
    while pending:  # parents first: each pass places the rows whose parent exists
        placed = [p for p in pending if not p["parent"] or p["parent"] in by_code]
        if not placed:
            raise ConfigError("the parents form a loop", "category_cycle")
        for p in placed:
            parent_id = by_code[p["parent"]].id if p["parent"] else None
            fields = {k: p[k] for k in ("name", "national_code", "approval_matter", "active")}
            existing = by_code.get(p["code"])
            if existing is None:
                cat = create(
                    session,
                    editor,
                    name=p["name"],
                    parent_id=parent_id,
                    code=p["code"],
                    national_code=p["national_code"],
                    approval_matter=p["approval_matter"],
                )
                if not p["active"]:
                    update(session, editor, cat.id or 0, {"active": False})
                by_code[cat.code] = cat
                made += 1
            else:
                before = snapshot(existing)
                update(session, editor, existing.id or 0, {**fields, "parent_id": parent_id})
                changed += snapshot(existing) != before
        pending = [p for p in pending if p not in placed]
    return {"created": made, "updated": changed, "rows": len(parsed)}
