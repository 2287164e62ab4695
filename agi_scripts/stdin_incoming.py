#!/usr/bin/env python3
"""The incoming route as a classic stdin AGI script (pyst2), spawned by Asterisk per call.

Kept for sites that cannot run the FastAGI server, and as the baseline the FastAGI benchmark
compares against: ``AGI(/path/to/stdin_incoming.py,carrier,96345,hotline,${CHANNEL(linkedid)})``.
It sets the same variables as the FastAGI route, computed by the same function
(``agi_scripts.incoming.route_variables``); a process has no opening hours in memory, so it reads
the service number's row with the caller's. The pop still comes from the AMI events.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from asterisk.agi import AGI
from sqlalchemy import bindparam, select
from sqlmodel import col

from agi_scripts.incoming import order_number, route_variables
from callcenter.clock import china_now
from callcenter.config import Settings, get_settings
from callcenter.database import Query, Reads, hot_reads
from callcenter.ivr import service as ivr_service
from callcenter.ivr.models import ServiceHours
from callcenter.ivr.routing import caller_facts
from callcenter.phone import normalize

_HOURS = Query(
    select(col(ServiceHours.schedule), col(ServiceHours.open_time), col(ServiceHours.close_time)).where(
        col(ServiceHours.number) == bindparam("number")
    )
)


def _is_open(settings: Settings, reads: Reads, number: str) -> bool:
    row = reads.first(_HOURS, number=number)
    hours = ServiceHours(number=number, schedule=row[0], open_time=row[1], close_time=row[2]) if row else None
    return ivr_service.is_open(hours, china_now(settings))


def main() -> int:
    agi = AGI()
    settings = get_settings()
    # Arguments from the dialplan: source, DID (never caller text).
    source, did = agi.env.get("agi_arg_1", ""), agi.env.get("agi_arg_2", "")
    caller = normalize(agi.env.get("agi_callerid"), settings.default_region, settings.default_area_code)
    order = ""
    if source == "12345":
        order = order_number(agi.get_variable(f"PJSIP_HEADER(read,{settings.header_12345_order})"))
    since = datetime.now(UTC) - timedelta(hours=settings.preferred_seat_window_h)
    with hot_reads(settings) as reads:
        facts = caller_facts(reads, caller, since)
        values = route_variables(
            settings, source, did, caller, order, facts, lambda number: _is_open(settings, reads, number)
        )
    # pyst2 quotes values itself; only values we produced are set, CC_ROUTE_OK last.
    for name, value in values.items():
        agi.set_variable(name, value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
