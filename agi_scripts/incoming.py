"""FastAGI route ``incoming``: who is calling, and where their call goes.

Normalises the caller number, finds the resident, reads the 12345 platform's headers, sets
channel variables for the dialplan and hands the rest to the call service. Quick by design:
two indexed reads (callcenter/ivr/routing.py) and a few AGI round trips; the pop's profile is built later.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

from agi_scripts.server import AgiRequest
from callcenter import ids
from callcenter.calls.state import Identified
from callcenter.config import Settings
from callcenter.ivr.routing import CallerFacts
from callcenter.phone import normalize
from callcenter.text import is_digits

_ORDER = re.compile(r"[A-Za-z0-9_\-]{1,40}")

log = logging.getLogger(__name__)


def clean_text(value: str | None, limit: int) -> str:
    """Untrusted header text: printable, bounded. Escaping happens where it is shown."""
    if not value:
        return ""
    return "".join(ch for ch in value if ch.isprintable())[:limit]


def order_number(raw: str | None) -> str:
    """The 12345 platform's order number header, or "" when it is not a plain bounded token."""
    return raw if raw and _ORDER.fullmatch(raw) else ""


def route_variables(
    settings: Settings,
    source: str,
    did: str,
    caller: str | None,
    order: str,
    facts: CallerFacts,
    is_open: Callable[[str], bool],
) -> dict[str, str]:
    """The channel variables the dialplan reads after the route, in the order they are set."""
    values: dict[str, str] = {}
    if caller:
        values["CC_CALLER"] = caller
    if facts.resident_id is not None:
        values["CC_RESIDENT_ID"] = str(facts.resident_id)
    if order:
        values["CC_ORDER12345"] = order
    # Opening hours, priority, the returning caller's seat.
    if source != "12345" and not is_open(did):
        values["CC_OPEN"] = "0"
    priority = settings.trunk12345_priority if source == "12345" else 0
    if facts.priority:
        priority = max(priority, settings.priority_vulnerable)
    if priority:
        values["CC_PRIORITY"] = str(priority)
    if facts.last_seat:
        values["CC_PREFERRED_SEAT"] = facts.last_seat
    # When the route ran (the doctor reads it from AMI channel variables to time the hop).
    values["CC_ROUTE_AT"] = f"{time.time():.6f}"
    values["CC_ROUTE_OK"] = "1"  # last: the dialplan trusts the route only once all is set
    return values


async def incoming(request: AgiRequest, context) -> None:
    settings = context.settings
    h = request.headers
    # Arguments from the dialplan: source, DID, queue, linkedid (never caller text).
    source, did, queue, linkedid = (request.arg(i) for i in (1, 2, 3, 4))
    if not ids.CALL_ID.fullmatch(linkedid or ""):
        linkedid = await request.get_variable("CHANNEL(linkedid)") or h.get("agi_uniqueid", "")
    caller = normalize(h.get("agi_callerid"), settings.default_region, settings.default_area_code)

    order = summary = ""
    if source == "12345":
        raw_order, raw_summary = await request.get_variables(
            f"PJSIP_HEADER(read,{settings.header_12345_order})",
            f"PJSIP_HEADER(read,{settings.header_12345_summary})",
        )
        order = order_number(raw_order)
        if raw_order and not order:
            # Injection characters, an oversized or empty value: the call goes on without it.
            log.warning("12345 call %s: order number header refused (%d chars)", linkedid, len(raw_order))
        summary = clean_text(raw_summary, 500)
        if raw_summary and len(raw_summary) > 500:
            log.warning("12345 call %s: summary header cut from %d chars", linkedid, len(raw_summary))
    elif source != "carrier":
        log.warning("incoming call %s: unknown source %r, routed as a carrier call", linkedid, source[:16])

    try:
        facts = await asyncio.wait_for(context.ivr.facts(caller), settings.route_budget_s)
        looked_up = True
    except TimeoutError:
        # The caller must not wait in silence for a slow database: the dialplan goes on to the
        # queue, and the engine's profile worker finds the resident for the pop.
        log.warning(
            "incoming call %s: the caller's lookup took over %g s; routed without it",
            linkedid,
            settings.route_budget_s,
        )
        facts, looked_up = CallerFacts(), False
    resident_id = facts.resident_id
    values = route_variables(settings, source, did, caller, order, facts, context.ivr.is_open)
    # The engine hears who calls before Asterisk has the answer: the queue rings a seat once the
    # last variable is set, and its AgentCalled must find the call identified (its first pop
    # then carries the resident and the 12345 order number, not only a later one).
    context.calls.identified(
        Identified(
            linkedid=linkedid,
            caller=caller,
            resident_id=resident_id,
            did=did if is_digits(did, 32) else "",
            source=source if source in ("carrier", "12345") else "carrier",
            queue=queue if ids.QUEUE.fullmatch(queue or "") else "",
            order_12345=order,
            summary_12345=summary,
            looked_up=looked_up,
        )
    )
    await request.set_variables(values)
