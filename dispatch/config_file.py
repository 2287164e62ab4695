"""The service's configuration as one file: the category tree, the routing rules, the holiday
calendar, the deadline policies and the message texts, in JSON keyed by codes and names (never
database ids), so a district can stage a change or copy a working set-up to another district
whose basic data (communities, areas, grids, outlets) has the same names.

``export`` writes it, ``diff`` shows what importing it would change (the dry run), ``apply`` makes
the database say what the file says, in the caller's transaction: categories are added or updated
by code (never deleted: orders keep theirs), every other part is replaced. export → apply into a
fresh database → export gives the same file.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from callcenter.audit.service import record as audit
from callcenter.config import Settings
from dispatch import categories, holidays, message_templates, policies, rules, stamps
from dispatch.categories import Editor
from dispatch.errors import ConfigError
from dispatch.models import DeadlinePolicy, Holiday, MessageTemplate

FORMAT = "anning-hotline-config"
VERSION = 1
PARTS = ("categories", "rules", "holidays", "deadlines", "templates")
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
                "provider_code": t.provider_code,
                "param_map": dict(t.param_map or {}),
            }
            for t in session.exec(select(MessageTemplate).order_by(col(MessageTemplate.name)))
        ],
    }


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
        elif part == "templates":
            key = str(r.get("name"))
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
        removed = sorted(set(before) - set(after)) if part != "categories" else []
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
    except ConfigError as exc:
        raise ConfigError(f"{part}: {exc}", exc.code, part=part, **exc.params) from exc
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
