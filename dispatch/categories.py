"""The default category tree (分类): kept as data; a new installation starts with it, and
administrators' imports add to it (codes are the keys)."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from callcenter.config import Settings
from callcenter.database import session_scope
from dispatch import routing
from dispatch.models import Category

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
