"""Deadline policies (办理时限) per order type × urgency, set by administrators: the completion
limit in working days or hours, the acceptance (签收) limit, the reminder's (催办) lead time and
the supervision's (督办) extra recipients. Without a row, the defaults of ``dispatch.deadlines``
hold. Each process caches the rows until the ``deadlines`` stamp moves."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from callcenter import phone
from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.mail import valid_address
from dispatch import stamps
from dispatch.categories import Editor
from dispatch.errors import ConfigError
from dispatch.models import ORDER_TYPES, URGENCIES, DeadlinePolicy

STAMP = "deadlines"
UNITS = ("workdays", "hours")
DEFAULT_LIMITS: dict[tuple[str, str], tuple[int, str]] = {
    # 12345 practice: inquiries are answered fastest, complaints and reports get the longest.
    ("咨询", "normal"): (1, "workdays"),
    ("求助", "normal"): (3, "workdays"),
    ("投诉", "normal"): (5, "workdays"),
    ("举报", "normal"): (5, "workdays"),
    ("建议", "normal"): (5, "workdays"),
    ("表扬", "normal"): (3, "workdays"),
    ("咨询", "urgent"): (4, "hours"),
    ("求助", "urgent"): (2, "hours"),
    ("投诉", "urgent"): (24, "hours"),
    ("举报", "urgent"): (24, "hours"),
    ("建议", "urgent"): (24, "hours"),
    ("表扬", "urgent"): (24, "hours"),
}
# 签收: an outlet confirms it has the order within this time of its dispatch (clock time).
DEFAULT_ACCEPT_MINUTES = {"urgent": 30, "normal": 120}


@dataclass(frozen=True)
class Policy:
    order_type: str
    urgency: str
    amount: int
    unit: str
    accept_minutes: int
    remind_lead_hours: int = 0
    escalate_to: tuple[str, ...] = ()
    custom: bool = False  # an administrator's row (else the defaults)

    @property
    def accept_within(self) -> timedelta:
        return timedelta(minutes=self.accept_minutes)

    @property
    def escalate_phones(self) -> list[str]:
        return [x for x in self.escalate_to if x.startswith("+")]

    @property
    def escalate_emails(self) -> list[str]:
        return [x for x in self.escalate_to if "@" in x]


def default(order_type: str, urgency: str) -> Policy:
    amount, unit = DEFAULT_LIMITS.get((order_type, urgency), DEFAULT_LIMITS[("求助", "normal")])
    return Policy(order_type, urgency, amount, unit, DEFAULT_ACCEPT_MINUTES.get(urgency, 120))


@dataclass
class Policies:
    rows: dict[tuple[str, str], Policy] = field(default_factory=dict)
    version: int = -1

    def get(self, order_type: str, urgency: str) -> Policy:
        return self.rows.get((order_type, urgency)) or default(order_type, urgency)

    def table(self) -> list[Policy]:
        return [self.get(t, u) for u in URGENCIES for t in ORDER_TYPES]


def _policy(row: DeadlinePolicy) -> Policy:
    return Policy(
        row.order_type,
        row.urgency,
        row.amount,
        row.unit,
        row.accept_minutes,
        row.remind_lead_hours,
        tuple(x for x in row.escalate_to.split(",") if x),
        custom=True,
    )


_cache: dict[str, Policies] = {}
_lock = threading.Lock()


def current(session: Session) -> Policies:
    key = str(session.get_bind().engine.url)
    version = stamps.current(session, STAMP)
    cached = _cache.get(key)
    if cached is None or cached.version != version:
        cached = Policies(
            {(r.order_type, r.urgency): _policy(r) for r in session.exec(select(DeadlinePolicy))}, version
        )
        with _lock:
            _cache[key] = cached
    return cached


def forget() -> None:
    with _lock:
        _cache.clear()


def _int(data: dict[str, Any], name: str, low: int, high: int) -> int:
    text = str(data.get(name, "")).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not low <= int(text) <= high:
        raise ConfigError(f"{name}: {low} to {high}", "policy_range", field=name, low=low, high=high)
    return int(text)


def _recipients(settings: Settings, value: Any) -> str:
    out = []
    for raw in str(value or "").replace("，", ",").replace("；", ",").replace(";", ",").split(","):
        item = raw.strip()
        if not item:
            continue
        if "@" in item:
            if not valid_address(item):
                raise ConfigError(
                    f"not an e-mail address: {item[:64]!r}", "policy_recipient", value=item[:64]
                )
            out.append(item)
        else:
            number = phone.normalize(item, settings.default_region, settings.default_area_code)
            if number is None:
                raise ConfigError(f"not a phone number: {item[:32]!r}", "policy_recipient", value=item[:32])
            out.append(number)
    text = ",".join(dict.fromkeys(out))
    if len(text) > 255:
        raise ConfigError("too many recipients", "policy_recipient", value="…")
    return text


def settings_of(policy: Policy) -> dict[str, Any]:
    """The policy's settings as JSON values (for the audit log and the configuration file)."""
    return {
        "amount": policy.amount,
        "unit": policy.unit,
        "accept_minutes": policy.accept_minutes,
        "remind_lead_hours": policy.remind_lead_hours,
        "escalate_to": list(policy.escalate_to),
    }


def save(
    session: Session, settings: Settings, editor: Editor, order_type: str, urgency: str, data: dict[str, Any]
) -> Policy:
    """Set the policy of one order type and urgency (no commit)."""
    if order_type not in ORDER_TYPES or urgency not in URGENCIES:
        raise ConfigError(f"no such order type / urgency: {order_type!r} {urgency!r}", "policy_kind")
    unit = str(data.get("unit", "")).strip()
    if unit not in UNITS:
        raise ConfigError(f"unit: {unit[:16]!r}", "policy_unit")
    amount = _int(data, "amount", 1, 60 if unit == "workdays" else 720)
    accept = _int(data, "accept_minutes", 5, 7 * 24 * 60)
    lead = _int(data, "remind_lead_hours", 0, 720)
    if unit == "hours" and lead >= amount:
        raise ConfigError("the reminder comes before the deadline", "policy_lead")
    row = session.exec(
        select(DeadlinePolicy).where(
            DeadlinePolicy.order_type == order_type, DeadlinePolicy.urgency == urgency
        )
    ).first()
    old = settings_of(_policy(row) if row else default(order_type, urgency))
    if row is None:
        row = DeadlinePolicy(order_type=order_type, urgency=urgency, amount=amount)
    row.amount, row.unit, row.accept_minutes, row.remind_lead_hours = amount, unit, accept, lead
    row.escalate_to = _recipients(settings, data.get("escalate_to"))
    session.add(row)
    session.flush()
    new = settings_of(_policy(row))
    changes = {k: [old[k], v] for k, v in new.items() if old[k] != v}
    audit(
        session,
        editor.username,
        "deadline.save",
        target=f"deadline:{order_type}/{urgency}",
        role=editor.role,
        ip=editor.ip,
        changes=changes,
    )
    stamps.bump(session, STAMP)
    return _policy(row)
