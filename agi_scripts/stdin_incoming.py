#!/usr/bin/env python3
"""The incoming route as a classic stdin AGI script (pyst2), spawned by Asterisk per call.

Kept for sites that cannot run the FastAGI server, and as the baseline the FastAGI benchmark
compares against: ``AGI(/path/to/stdin_incoming.py,carrier,96345,hotline,${CHANNEL(linkedid)})``.
It sets the same variables as the FastAGI route; the pop still comes from the AMI events.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    from asterisk.agi import AGI

    from callcenter.config import get_settings
    from callcenter.ivr.routing import find_resident_id
    from callcenter.phone import normalize

    agi = AGI()
    settings = get_settings()
    caller = normalize(agi.env.get("agi_callerid"), settings.default_region, settings.default_area_code)
    resident_id = find_resident_id(settings, caller)
    # pyst2 quotes values itself; only values we produced are set.
    if caller:
        agi.set_variable("CC_CALLER", caller)
    if resident_id is not None:
        agi.set_variable("CC_RESIDENT_ID", str(resident_id))
    agi.set_variable("CC_ROUTE_AT", f"{time.time():.6f}")
    agi.set_variable("CC_ROUTE_OK", "1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
