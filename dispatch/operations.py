"""Operational settings administrators change on /admin/operations without a developer: the seats'
pause reasons, the default service-level threshold and answered-rate alert (each queue's own
threshold is on the queue, /admin/basic), the supervisors' mobiles and e-mails, the daily report's
recipients and hour, and when the daily order summaries go out.

The environment (``Settings``) gives the defaults; a saved value overrides it on every process.
Code keeps reading ``settings.pause_reasons`` and the like: ``current(session, settings)`` writes
the saved values onto the process's ``Settings`` whenever the ``operations`` stamp moved, and the
bus's ``ConfigChanged`` makes each process do it at once (``reload``), so no restart is needed.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from callcenter.audit.service import record as audit
from callcenter.clock import utcnow
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue
from callcenter.mail import valid_address
from callcenter.phone import normalize
from callcenter.text import is_digits
from dispatch import stamps
from dispatch.categories import Editor
from dispatch.errors import ConfigError
from dispatch.models import OperationalSetting

STAMP = "operations"
MAX_ITEMS = 20


def _text_list(raw: Any) -> list[str]:
    """One item a line (commas and Chinese separators too), or a JSON list."""
    if isinstance(raw, list):
        items = [str(x) for x in raw]
    else:
        text = str(raw or "")
        for sep in ("，", "；", ";", ",", "、"):
            text = text.replace(sep, "\n")
        items = text.splitlines()
    out = list(dict.fromkeys(" ".join(x.split()) for x in items if x.strip()))
    if len(out) > MAX_ITEMS:
        raise ConfigError(f"at most {MAX_ITEMS} items", "operations_items", limit=MAX_ITEMS)
    return out


def _pause_reasons(raw: Any) -> list[str]:
    out = _text_list(raw)
    if not out:
        raise ConfigError("at least one pause reason", "operations_pause_reason", value="")
    for item in out:
        # Shown to seats and sent in the pause command: words only, no separators.
        if len(item) > 16 or not all(ch.isalnum() or ch in " -_（）()" for ch in item):
            raise ConfigError(
                f"not a pause reason: {item[:16]!r}", "operations_pause_reason", value=item[:16]
            )
    return out


def _mobiles(settings: Settings) -> Callable[[Any], list[str]]:
    def parse(raw: Any) -> list[str]:
        out = []
        for item in _text_list(raw):
            e164 = normalize(item[:32], settings.default_region, settings.default_area_code)
            if e164 is None:
                raise ConfigError(f"not a phone number: {item[:32]!r}", "operations_phone", value=item[:32])
            out.append(e164)
        return list(dict.fromkeys(out))

    return parse


def _addresses(raw: Any) -> list[str]:
    out = _text_list(raw)
    for item in out:
        if not valid_address(item):
            raise ConfigError(f"not an e-mail address: {item[:64]!r}", "operations_email", value=item[:64])
    return out


def _int_in(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        text = str(raw).strip()
        if isinstance(raw, bool) or not is_digits(text) or len(text) > 6 or not low <= int(text) <= high:
            raise ConfigError(f"a whole number {low}–{high}", "operations_number", low=low, high=high)
        return int(text)

    return parse


def _rate(raw: Any) -> float:
    """A percentage 1–100 (what the page asks for) kept as a fraction."""
    text = str(raw).strip().rstrip("%").strip()
    whole, _, frac = text.partition(".")
    if isinstance(raw, bool) or not is_digits(whole) or (frac and not is_digits(frac)) or len(text) > 8:
        raise ConfigError("a percentage 1–100", "operations_number", low=1, high=100)
    value = float(text)
    if not 1 <= value <= 100:
        raise ConfigError("a percentage 1–100", "operations_number", low=1, high=100)
    return round(value / 100, 4)


def _clock_time(raw: Any) -> str:
    text = str(raw or "").strip()
    if not text:
        return ""  # never
    hh, sep, mm = text.partition(":")
    if not (sep and is_digits(hh) and is_digits(mm) and len(mm) == 2 and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(f"not a time of day: {text[:8]!r}", "operations_time", value=text[:8])
    return f"{int(hh):02d}:{mm}"


@dataclass(frozen=True)
class Field_:
    name: str  # the Settings attribute
    label: str  # catalogue key
    kind: str  # list | number | rate | time (how the page shows it)
    parse: Callable[[Settings], Callable[[Any], Any]]


FIELDS: tuple[Field_, ...] = (
    Field_("pause_reasons", "operations.pause_reasons", "list", lambda s: _pause_reasons),
    Field_("service_level_s", "operations.service_level_s", "number", lambda s: _int_in(1, 600)),
    Field_("answered_rate_alert", "operations.answered_rate_alert", "rate", lambda s: _rate),
    Field_("supervisor_phones", "operations.supervisor_phones", "list", _mobiles),
    Field_("supervisor_emails", "operations.supervisor_emails", "list", lambda s: _addresses),
    Field_("stats_report_recipients", "operations.stats_report_recipients", "list", lambda s: _addresses),
    Field_("stats_report_hour", "operations.stats_report_hour", "number", lambda s: _int_in(0, 23)),
    Field_("daily_summary_at", "operations.daily_summary_at", "time", lambda s: _clock_time),
)
BY_NAME = {f.name: f for f in FIELDS}


@dataclass
class _Applied:
    """What one process's ``Settings`` carries: its environment defaults and the stamp applied."""

    ref: weakref.ReferenceType[Settings]
    defaults: dict[str, Any]
    version: int = -1
    saved: dict[str, Any] = field(default_factory=dict)


_applied: dict[int, _Applied] = {}
_lock = threading.Lock()


def _state(settings: Settings) -> _Applied:
    with _lock:
        state = _applied.get(id(settings))
        if state is None or state.ref() is not settings:
            defaults = {f.name: copy.deepcopy(getattr(settings, f.name)) for f in FIELDS}
            state = _applied[id(settings)] = _Applied(weakref.ref(settings), defaults)
        return state


def defaults(settings: Settings) -> dict[str, Any]:
    return dict(_state(settings).defaults)


def current(session: Session, settings: Settings) -> Settings:
    """``settings`` with the administrators' values written onto it (re-read when the stamp moved)."""
    state = _state(settings)
    version = stamps.current(session, STAMP)
    if version != state.version:
        rows = session.exec(select(OperationalSetting)).all()
        saved = {r.name: r.value for r in rows if r.name in BY_NAME}
        with _lock:
            for f in FIELDS:
                setattr(settings, f.name, copy.deepcopy(saved.get(f.name, state.defaults[f.name])))
            state.saved, state.version = saved, version
    return settings


def reload(settings: Settings) -> None:
    """Apply the saved values now (a process's start, and ``ConfigChanged`` on the bus)."""
    with session_scope(settings) as s:
        current(s, settings)


def saved(session: Session) -> dict[str, Any]:
    """The values administrators saved (the rest are the environment's)."""
    return {
        r.name: r.value
        for r in session.exec(select(OperationalSetting).order_by(col(OperationalSetting.name)))
    }


def save(session: Session, settings: Settings, editor: Editor, data: dict[str, Any]) -> dict[str, Any]:
    """Set the fields ``data`` names (one transaction, the caller's); ``reset`` lists fields that go
    back to the environment's value. The changed fields, old → new, audited."""
    state = _state(settings)
    current(session, settings)
    wanted: dict[str, Any] = {}
    for f in FIELDS:
        if f.name in data:
            wanted[f.name] = f.parse(settings)(data[f.name])
    reset = data.get("reset") or []
    if isinstance(reset, str):
        reset = [reset]
    if not isinstance(reset, list):
        raise ConfigError("reset: a list of names", "operations_items", limit=len(FIELDS))
    for name in reset[: len(FIELDS)]:
        if str(name) in BY_NAME:
            wanted[str(name)] = state.defaults[str(name)]
    changes: dict[str, dict[str, Any]] = {}
    for name, value in wanted.items():
        old = getattr(settings, name)
        row = session.get(OperationalSetting, name)
        if value == state.defaults[name]:
            if row is not None:
                session.delete(row)
        else:
            if row is None:
                row = OperationalSetting(name=name, value=value)
            row.value, row.updated_at, row.updated_by = value, utcnow(), editor.username
            session.add(row)
        if old != value:
            changes[name] = {"old": old, "new": value}
    if changes:
        session.flush()
        audit(
            session,
            editor.username,
            "operations.save",
            target="operations",
            role=editor.role,
            ip=editor.ip,
            old={k: v["old"] for k, v in changes.items()},
            new={k: v["new"] for k, v in changes.items()},
        )
        stamps.bump(session, STAMP)
    return changes


def import_rows(session: Session, settings: Settings, editor: Editor, rows: list[dict[str, Any]]) -> None:
    """The configuration file's part: exactly these values saved, every other field back to the
    environment's."""
    data: dict[str, Any] = {}
    for r in rows:
        name = str(r.get("name", ""))
        if name not in BY_NAME:
            raise ConfigError(f"no setting {name[:48]!r}", "not_found")
        data[name] = r.get("value")
    data["reset"] = [f.name for f in FIELDS if f.name not in data]
    save(session, settings, editor, data)


def export_rows(session: Session) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in saved(session).items()]


# --- each queue's own figures (the rest of a queue is the IVR's and the seats') -----------------

QUEUE_FIELDS: dict[str, tuple[int, int]] = {
    "service_level": (1, 600),  # the threshold its service level counts (s)
    "agent_timeout": (5, 120),  # how long a seat's phone rings before the next one (s)
    "wrapup": (0, 600),  # after-call work (s)
}


def save_queue(session: Session, editor: Editor, name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A queue's title and figures; the changed ones, old → new, audited (queues.conf is rendered
    again by the caller's ``ConfigRequest``)."""
    queue = session.exec(select(CallQueue).where(CallQueue.name == name[:32])).first()
    if queue is None:
        raise ConfigError(f"no queue {name[:32]!r}", "not_found")
    changes: dict[str, dict[str, Any]] = {}
    if "title" in data:
        title = " ".join(str(data["title"]).split())
        if len(title) > 64:
            raise ConfigError("a title has at most 64 characters", "operations_items", limit=64)
        if title != queue.title:
            changes["title"] = {"old": queue.title, "new": title}
            queue.title = title
    for key, (low, high) in QUEUE_FIELDS.items():
        if key in data:
            value = _int_in(low, high)(data[key])
            if value != getattr(queue, key):
                changes[key] = {"old": getattr(queue, key), "new": value}
                setattr(queue, key, value)
    if changes:
        session.add(queue)
        session.flush()
        audit(
            session,
            editor.username,
            "queue.save",
            target=f"queue:{queue.name}",
            role=editor.role,
            ip=editor.ip,
            old={k: v["old"] for k, v in changes.items()},
            new={k: v["new"] for k, v in changes.items()},
        )
    return changes
