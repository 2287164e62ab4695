"""The service's configuration as one file: the category tree, the routing rules, the holiday
calendar, the deadline policies, the message texts, the operational settings, the queues, the
service numbers with their opening hours and the voice menu (IVR), in JSON keyed by codes and names (never
database ids), so a district can stage a change or copy a working set-up to another district
whose basic data (communities, areas, grids, outlets) has the same names.

``export`` writes it, ``diff`` shows what importing it would change (the dry run), ``apply`` makes
the database say what the file says, in the caller's transaction: categories are added or updated
by code, queues by name and service numbers by number (never deleted: orders, seats and calls
keep theirs), every other part is replaced. export → apply into a fresh database → export gives
the same file. Recorded menu prompts are files, not configuration: a menu key keeps its spoken
text, and an uploaded recording stays where it is.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from callcenter import ids
from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ivr.models import IvrOption, ServiceHours
from callcenter.ivr.service import MenuError, check_hours, check_option, clean_prompt
from dispatch import categories, holidays, message_templates, operations, policies, rules, stamps
from dispatch.categories import Editor
from dispatch.errors import ConfigError
from dispatch.models import DeadlinePolicy, Holiday, MessageTemplate

FORMAT = "anning-hotline-config"
VERSION = 1
PARTS = (
    "categories",
    "rules",
    "holidays",
    "deadlines",
    "templates",
    "operations",
    "queues",
    "service_numbers",
    "service_hours",
    "ivr",
)
# The parts that change what Asterisk is told (rendered again and reloaded after an import).
TELEPHONY_PARTS = ("queues", "service_numbers", "service_hours", "ivr")
MAX_BYTES = 20 * 1024 * 1024


def export(session: Session) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "categories": categories.export_rows(session),
        "rules": rules.export_rows(session),
        "holidays": holidays.export_rows(session),
        "deadlines": [
            {"order_type": p.order_type, "urgency": p.urgency, **policies.settings_of(p)}
            for p in policies.current(session).table()
            if p.custom
        ],
        "templates": [
            {
                "name": t.name,
                "body": t.body,
                "subject": t.subject,
                "provider_code": t.provider_code,
                "param_map": dict(t.param_map or {}),
            }
            for t in session.exec(select(MessageTemplate).order_by(col(MessageTemplate.name)))
        ],
        "operations": operations.export_rows(session),
        "queues": [
            {k: getattr(q, k) for k in QUEUE_KEYS}
            for q in session.exec(select(CallQueue).order_by(col(CallQueue.name)))
        ],
        "service_numbers": [
            {"number": n.number, "title": n.title, "queue_name": n.queue_name}
            for n in session.exec(select(ServiceNumber).order_by(col(ServiceNumber.number)))
        ],
        "service_hours": [
            {k: getattr(h, k) for k in HOURS_KEYS}
            for h in session.exec(select(ServiceHours).order_by(col(ServiceHours.number)))
        ],
        "ivr": [
            {k: getattr(o, k) for k in IVR_KEYS}
            for o in session.exec(select(IvrOption).order_by(col(IvrOption.number), col(IvrOption.digit)))
        ],
    }


QUEUE_KEYS = ("name", "title", "strategy", "agent_timeout", "wrapup", "service_level")
HOURS_KEYS = ("number", "schedule", "open_time", "close_time", "closed_text")
IVR_KEYS = ("number", "digit", "queue_name", "category", "label", "prompt_text")
STRATEGIES = frozenset({"ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom"})


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True)


def loads(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BYTES:
        raise ConfigError("the file is too large", "config_file")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise ConfigError("not a configuration file (JSON)", "config_file") from None
    return check(data)


def check(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError("not a configuration file of this product", "config_file")
    if data.get("version") != VERSION:
        raise ConfigError(f"configuration version {data.get('version')!r}", "config_file")
    for part in PARTS:
        rows = data.get(part, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ConfigError(f"{part}: a list of objects", "config_file")
    return data


# --- the dry run ----------------------------------------------------------------------------------


def _keyed(part: str, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each row under its key, as canonical JSON (what two rows compare by)."""
    out: dict[str, str] = {}
    for r in rows:
        if part == "categories":
            key = str(r.get("code"))
        elif part == "holidays":
            key = str(r.get("day"))
        elif part == "deadlines":
            key = f"{r.get('order_type')}/{r.get('urgency')}"
        elif part in ("templates", "operations", "queues"):
            key = str(r.get("name"))
        elif part in ("service_numbers", "service_hours"):
            key = str(r.get("number"))
        elif part == "ivr":
            key = f"{r.get('number')}/{r.get('digit')}"
        else:  # rules have no natural key: the row itself (a repeated row counted apart)
            key = json.dumps(r, ensure_ascii=False, sort_keys=True)
            n = 1
            while key in out:
                n += 1
                key = f"{json.dumps(r, ensure_ascii=False, sort_keys=True)}#{n}"
        out[key] = json.dumps(r, ensure_ascii=False, sort_keys=True)
    return out


def diff(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    """Per part: what the file adds, removes and changes (categories are never removed)."""
    now = export(session)
    out: dict[str, Any] = {}
    for part in PARTS:
        before, after = _keyed(part, now[part]), _keyed(part, data.get(part, []))
        kept = part in ("categories", "queues", "service_numbers")
        removed = sorted(set(before) - set(after)) if not kept else []
        out[part] = {
            "added": sorted(set(after) - set(before)),
            "removed": removed,
            "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k]),
        }
    out["unchanged"] = all(not any(v.values()) for v in out.values() if isinstance(v, dict))
    return out


# --- applying ------------------------------------------------------------------------------------


def apply(session: Session, settings: Settings, editor: Editor, data: dict[str, Any]) -> dict[str, Any]:
    """Make the database say what the file says (no commit; a ``ConfigError`` names the part)."""
    data = check(data)
    changes = diff(session, data)
    try:
        part = "categories"
        categories.import_rows(session, editor, data.get("categories", []))
        part = "rules"
        rules.import_rows(session, editor, data.get("rules", []), replace=True)
        part = "holidays"
        wanted = {str(r.get("day")) for r in data.get("holidays", [])}
        for h in session.exec(select(Holiday)):
            if h.day.isoformat() not in wanted:
                holidays.delete_day(session, editor, h.day)
        for r in data.get("holidays", []):
            holidays.save_day(session, editor, r.get("day"), r.get("workday", False), r.get("name", ""))
        part = "deadlines"
        kept = set()
        for r in data.get("deadlines", []):
            given = r.get("escalate_to") or []
            recipients = ",".join(str(x) for x in given) if isinstance(given, list) else str(given)
            fields = {**r, "escalate_to": recipients}
            p = policies.save(
                session, settings, editor, str(r.get("order_type")), str(r.get("urgency")), fields
            )
            kept.add((p.order_type, p.urgency))
        for old in session.exec(select(DeadlinePolicy)):
            if (old.order_type, old.urgency) not in kept:
                session.delete(old)
        stamps.bump(session, policies.STAMP)
        part = "templates"
        names = set()
        for r in data.get("templates", []):
            message_templates.save(session, editor, str(r.get("name")), r)
            names.add(str(r.get("name")))
        for t in session.exec(select(MessageTemplate)):
            if t.name not in names:
                message_templates.reset(session, editor, t.name)
        part = "operations"
        operations.import_rows(session, settings, editor, data.get("operations", []))
        part = "queues"
        _apply_telephony(session, data)
    except ConfigError as exc:
        raise ConfigError(f"{part}: {exc}", exc.code, **{"part": part, **exc.params}) from exc
    session.flush()
    counts = {p: {k: len(v) for k, v in changes[p].items()} for p in PARTS}
    audit(
        session,
        editor.username,
        "config.import",
        target="config",
        role=editor.role,
        ip=editor.ip,
        changes=counts,
    )
    return changes


def _text(r: dict[str, Any], key: str, limit: int) -> str:
    value = r.get(key, "")
    if not isinstance(value, (str, int)) or isinstance(value, bool) or len(str(value)) > limit:
        raise ConfigError(f"{key}: text of at most {limit} characters", "config_part", part=key, detail=key)
    return str(value).strip()


def _whole(r: dict[str, Any], key: str, low: int, high: int) -> int:
    value = r.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key}: a whole number {low}–{high}", "config_part", part=key, detail=key)
    return value


def _apply_telephony(session: Session, data: dict[str, Any]) -> None:
    """Queues and service numbers upserted (never deleted); opening hours and menus replaced."""
    queues = {q.name: q for q in session.exec(select(CallQueue))}
    for r in data.get("queues", []):
        name = _text(r, "name", 32)
        if not ids.QUEUE.fullmatch(name):
            raise ConfigError(f"not a queue name: {name!r}", "config_part", part="queues", detail=name)
        strategy = _text(r, "strategy", 16) or "rrmemory"
        if strategy not in STRATEGIES:
            raise ConfigError(f"queue strategy {strategy!r}", "config_part", part="queues", detail=strategy)
        q = queues.get(name) or CallQueue(name=name)
        q.title, q.strategy = _text(r, "title", 64), strategy
        q.agent_timeout = _whole(r, "agent_timeout", 5, 120)
        q.wrapup = _whole(r, "wrapup", 0, 600)
        q.service_level = _whole(r, "service_level", 1, 600)
        session.add(q)
        queues[name] = q
    numbers = {n.number: n for n in session.exec(select(ServiceNumber))}
    for r in data.get("service_numbers", []):
        number = _text(r, "number", 32)
        if not number.isascii() or not number.isdigit():
            raise ConfigError(
                f"not a service number: {number!r}", "config_part", part="service_numbers", detail=number
            )
        queue_name = _text(r, "queue_name", 32)
        if queue_name not in queues:
            raise ConfigError(
                f"no queue {queue_name!r}", "config_part", part="service_numbers", detail=queue_name
            )
        n = numbers.get(number) or ServiceNumber(number=number, queue_name=queue_name)
        n.title, n.queue_name = _text(r, "title", 64), queue_name
        session.add(n)
        numbers[number] = n
    for h in session.exec(select(ServiceHours)):
        session.delete(h)
    recorded = {}
    for o in session.exec(select(IvrOption)):
        recorded[(o.number, o.digit)] = o.prompt_upload
        session.delete(o)
    session.flush()
    for r in data.get("service_hours", []):
        number = _text(r, "number", 32)
        if number not in numbers:
            raise ConfigError(
                f"no service number {number!r}", "config_part", part="service_hours", detail=number
            )
        schedule, opens, closes = (
            _text(r, "schedule", 16),
            _text(r, "open_time", 5),
            _text(r, "close_time", 5),
        )
        try:
            check_hours(schedule, opens, closes)
        except MenuError as exc:
            raise ConfigError(str(exc), "config_part", part="service_hours", detail=str(exc)[:200]) from exc
        session.add(
            ServiceHours(
                number=number,
                schedule=schedule,
                open_time=opens,
                close_time=closes,
                closed_text=clean_prompt(_text(r, "closed_text", 300)),
            )
        )
    seen: set[tuple[str, str]] = set()
    for r in data.get("ivr", []):
        number, digit = _text(r, "number", 32), _text(r, "digit", 1)
        if number not in numbers or (number, digit) in seen:
            raise ConfigError(
                f"menu key {number}/{digit}", "config_part", part="ivr", detail=f"{number}/{digit}"
            )
        queue_name, prompt = _text(r, "queue_name", 32), _text(r, "prompt_text", 200)
        try:
            check_option(digit, queue_name, set(queues), prompt)
        except MenuError as exc:
            raise ConfigError(str(exc), "config_part", part="ivr", detail=str(exc)[:200]) from exc
        seen.add((number, digit))
        session.add(
            IvrOption(
                number=number,
                digit=digit,
                queue_name=queue_name,
                category=_text(r, "category", 64),
                label=_text(r, "label", 64),
                prompt_text=clean_prompt(prompt),
                prompt_upload=recorded.get((number, digit), ""),
            )
        )
    session.flush()
