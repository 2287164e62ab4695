"""What the dialplan's menus, opening hours and returning-caller queues are rendered from.

Only checked values reach a template: digits 0-9, service numbers and queue names matching the
render patterns, queues Asterisk is configured with. Prompt texts never enter a config file (the
dialplan names the generated files: ``cc/ivr_<number>_<digit>``, ``cc/closed_<number>``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlmodel import Session, select

from callcenter.config import Settings
from callcenter.ids import PERSONAL_QUEUE_PREFIX
from callcenter.ivr.models import IvrOption, ServiceHours
from callcenter.ivr.service import DIGITS, hours_prompt_name, option_prompt_name
from callcenter.ivr.voicemail import VOICEMAIL_DIR
from callcenter.text import is_digits

log = logging.getLogger(__name__)


@dataclass
class MenuKey:
    digit: str
    queue: str
    prompt: str


@dataclass
class Menu:
    number: str
    keys: list[MenuKey] = field(default_factory=list)

    @property
    def prompts(self) -> str:
        return "&".join(f"cc/{k.prompt}" for k in self.keys)


@dataclass
class IvrData:
    menus: list[Menu]
    closed_numbers: list[str]  # service numbers with opening hours (a closed-hours prompt)
    personal_seats: list = field(default_factory=list)  # render.SeatConf of seats in some queue


def load_ivr(session: Session, data) -> IvrData:
    """Menus and hours for the rendered service numbers (``data``: render.DialplanData)."""
    numbers = {d.number for d in data.dids}
    queues = {q.name for q in data.queues}
    menus: dict[str, Menu] = {}
    for o in session.exec(select(IvrOption).order_by(IvrOption.number, IvrOption.digit)):
        if o.number not in numbers:
            continue
        if len(o.digit) != 1 or o.digit not in DIGITS or o.queue_name not in queues:
            log.warning(
                "menu key %r of %s skipped: bad key or unknown queue %r", o.digit, o.number, o.queue_name
            )
            continue
        menus.setdefault(o.number, Menu(o.number)).keys.append(
            MenuKey(o.digit, o.queue_name, option_prompt_name(o.number, o.digit))
        )
    closed = [
        h.number
        for h in session.exec(select(ServiceHours).order_by(ServiceHours.number))
        if h.number in numbers and h.schedule != "always"
    ]
    in_queues = {m.interface for q in data.queues for m in q.members}
    personal = [s for s in data.seats if s.interface in in_queues]
    return IvrData(menus=list(menus.values()), closed_numbers=closed, personal_seats=personal)


def ivr_context(settings: Settings, instance_path: str, agi_url: str, ivr: IvrData) -> dict:
    return {
        "ivr_menus": ivr.menus,
        "ivr_closed": {n: f"cc/{hours_prompt_name(n)}" for n in ivr.closed_numbers},
        "ivr_wait": max(1, int(settings.ivr_wait_s)),
        "ivr_tries": max(1, int(settings.ivr_tries)),
        "preferred_ring": max(1, int(settings.preferred_seat_ring_s)),
        "personal_prefix": PERSONAL_QUEUE_PREFIX,
        "personal_seats": ivr.personal_seats,
        "voicemail_dir": f"{instance_path}/spool/{VOICEMAIL_DIR}",
        "voicemail_max": max(5, int(settings.voicemail_max_s)),
        "agi_after_hours": _sibling_route(agi_url, "after_hours"),
        "static_route": _static_route(settings, ivr),
    }


def _sibling_route(agi_url: str, route: str) -> str:
    """``agi://h:p/incoming?k=…`` → ``agi://h:p/<route>?k=…`` (the same server and key)."""
    base, _, last = agi_url.rpartition("/")
    _, q, query = last.partition("?")
    return f"{base}/{route}{q}{query}"


def _static_route(settings: Settings, ivr: IvrData) -> dict | None:
    """Benchmarks: ``bench_static_did`` leads to the first menu without the FastAGI step."""
    did = settings.bench_static_did.strip()
    if not did or not is_digits(did, 32) or not ivr.menus:
        return None
    menu = ivr.menus[0]
    return {"did": did, "menu_did": menu.number, "queue": menu.keys[0].queue}
