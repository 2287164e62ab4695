"""Menu, opening hours and out-of-hours items: the logic behind the IVR (no I/O to Asterisk).

The hours check reads ``callcenter.clock.china_now``, which ``CALLCENTER_CLOCK`` can freeze.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import chinese_calendar
from sqlmodel import Session, col, select

from callcenter import ids
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import session_scope
from callcenter.errors import UserError
from callcenter.ivr.models import CallerRequest, IvrOption, ServiceHours

log = logging.getLogger(__name__)

DIGITS = "0123456789"
SCHEDULES = ("always", "daily", "workdays")
KINDS = ("voicemail", "callback")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")
# Prompt texts are spoken and rendered into no config file; still: one line, bounded.
_PROMPT_MAX = 200
# What CC_IVR_CHOICE holds when the caller chose nothing valid (a seat took over).
NO_CHOICE = {"invalid": "输入无效转人工", "timeout": "未选择转人工"}


class MenuError(UserError, domain="menu"):
    """An administrator's menu or hours input that cannot be used (message shown on the page)."""


# --- the clock -----------------------------------------------------------------------------------


# --- opening hours -------------------------------------------------------------------------------


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def is_working_day(day: date) -> bool:
    """China's working days: weekends and public holidays off, make-up working days (调休) on.
    Years chinese-calendar does not know yet count Monday-Friday."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


def is_open(hours: ServiceHours | None, at: datetime) -> bool:
    if hours is None or hours.schedule == "always":
        return True
    local = at.astimezone(CHINA_TZ)
    if hours.schedule == "workdays" and not is_working_day(local.date()):
        return False
    minute = local.hour * 60 + local.minute
    return _minutes(hours.open_time) <= minute < _minutes(hours.close_time)


def _spoken_time(hhmm: str) -> str:
    h, m = (int(x) for x in hhmm.split(":"))
    part = "上午" if h < 12 else "下午" if h < 18 else "晚上"
    h12 = h if h <= 12 else h - 12
    return f"{part}{h12}点" + ("" if m == 0 else "半" if m == 30 else f"{m}分")


def hours_text(hours: ServiceHours | None) -> str:
    """The hours in words, as the caller hears them and the admin page shows them."""
    if hours is None or hours.schedule == "always":
        return "全天二十四小时服务"
    span = f"{_spoken_time(hours.open_time)}至{_spoken_time(hours.close_time)}"
    if hours.schedule == "daily":
        return f"每天{span}"
    return f"周一至周五{span}，法定节假日休息，调休上班日照常服务"


def closed_prompt(hours: ServiceHours) -> str:
    if hours.closed_text.strip():
        return hours.closed_text.strip()
    return (
        f"您好，现在是非工作时间。本热线服务时间为{hours_text(hours)}。"
        "紧急情况请拨打幺幺零、幺幺九、幺二零。留言请按1，预约回电请按2。"
    )


def check_hours(schedule: str, open_time: str, close_time: str) -> None:
    if schedule not in SCHEDULES:
        raise MenuError(f"unknown schedule {schedule!r}")
    if schedule == "always":
        return
    if not _HHMM.fullmatch(open_time) or not _HHMM.fullmatch(close_time):
        raise MenuError("times are HH:MM")
    if _minutes(open_time) >= _minutes(close_time):
        raise MenuError("opening time must come before closing time")


def hours_for(session: Session, number: str) -> ServiceHours | None:
    return session.exec(select(ServiceHours).where(ServiceHours.number == number)).first()


# --- the menu ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MenuChoice:
    digit: str
    queue: str
    category: str
    label: str


def clean_prompt(text: str) -> str:
    """A prompt text: printable, one line, bounded (what espeak-ng is given)."""
    text = "".join(ch if ch.isprintable() else " " for ch in text or "")
    return " ".join(text.split())[:_PROMPT_MAX]


def check_option(digit: str, queue_name: str, known_queues: set[str], prompt_text: str) -> None:
    if len(digit) != 1 or digit not in DIGITS:
        raise MenuError("the key must be one digit 0-9")
    if not ids.QUEUE.fullmatch(queue_name or "") or queue_name not in known_queues:
        raise MenuError(f"unknown queue {queue_name!r}")
    if not clean_prompt(prompt_text):
        raise MenuError("the prompt text is empty")


def menu(session: Session, number: str) -> list[IvrOption]:
    return list(session.exec(select(IvrOption).where(IvrOption.number == number).order_by(IvrOption.digit)))


def menu_labels(session: Session) -> dict[tuple[str, str], MenuChoice]:
    """(number, digit) → choice, for the pop and the call record."""
    return {
        (o.number, o.digit): MenuChoice(o.digit, o.queue_name, o.category, o.label)
        for o in session.exec(select(IvrOption))
    }


@dataclass(frozen=True)
class MenuMeanings:
    """What each service number's menu keys mean, and the cases without a key (what the call
    workers label a pop and a call record with)."""

    choices: dict[tuple[str, str], MenuChoice]

    def meaning(self, did: str, key: str) -> tuple[str, str | None]:
        """(label, category) of a caller's key; no category for a case without a key."""
        choice = self.choices.get((did, key))
        if choice is not None:
            return choice.label, choice.category
        return NO_CHOICE.get(key, ""), None


def read_menu(settings: Settings) -> MenuMeanings:
    with session_scope(settings) as s:
        return MenuMeanings(menu_labels(s))


def option_prompt_name(number: str, digit: str) -> str:
    return f"ivr_{number}_{digit}"


def hours_prompt_name(number: str) -> str:
    return f"closed_{number}"


def ivr_prompts(session: Session) -> dict[str, str]:
    """Every prompt the menus and hours need, name → text (sounds.py speaks them)."""
    out: dict[str, str] = {}
    for o in session.exec(select(IvrOption)):
        out[option_prompt_name(o.number, o.digit)] = clean_prompt(o.prompt_text) or f"请按{o.digit}"
    for h in session.exec(select(ServiceHours)):
        if h.schedule != "always":
            out[hours_prompt_name(h.number)] = clean_prompt(closed_prompt(h))
    return out


def uploads(session: Session) -> dict[str, str]:
    """Prompt name → sha256 of an uploaded recording that replaces the spoken text."""
    return {
        option_prompt_name(o.number, o.digit): o.prompt_upload
        for o in session.exec(select(IvrOption))
        if o.prompt_upload
    }


# --- out-of-hours items --------------------------------------------------------------------------


def add_request(
    session: Session,
    kind: str,
    *,
    linkedid: str,
    caller: str,
    caller_raw: str,
    resident_id: int | None,
    did: str,
    recording: str = "",
    at: datetime | None = None,
) -> CallerRequest:
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}")
    item = CallerRequest(
        kind=kind,
        linkedid=linkedid[:64],
        caller=caller[:40],
        caller_raw=caller_raw[:80],
        resident_id=resident_id,
        did=did[:32],
        recording=recording[:128],
        created_at=at or datetime.now(UTC),
    )
    session.add(item)
    session.commit()
    session.refresh(item)
    return item


def open_requests(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    rows = session.exec(
        select(CallerRequest)
        .where(CallerRequest.done_at == None)  # noqa: E711
        .order_by(col(CallerRequest.created_at))
        .limit(limit)
    )
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "caller": r.caller or r.caller_raw,
            "resident_id": r.resident_id,
            "did": r.did,
            "linkedid": r.linkedid,
            "has_recording": bool(r.recording),
            "created_at": r.created_at.astimezone(CHINA_TZ).isoformat(timespec="seconds")
            if r.created_at.tzinfo
            else r.created_at.replace(tzinfo=UTC).astimezone(CHINA_TZ).isoformat(timespec="seconds"),
        }
        for r in rows
    ]
