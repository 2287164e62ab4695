"""The FastAGI route table: one route, one small module (as wazo-agid does)."""

from __future__ import annotations

import functools

from agi_scripts.after_hours import after_hours  # --- telephony A ---
from agi_scripts.callback import callback  # --- telephony B ---
from agi_scripts.followup import followup  # --- telephony B ---
from agi_scripts.incoming import incoming
from agi_scripts.server import FastAgiServer

ROUTES = {
    "incoming": incoming,
    "after_hours": after_hours,  # --- telephony A ---
    "callback": callback,  # --- telephony B ---
    "followup": followup,  # --- telephony B ---
}


def register_routes(server: FastAgiServer, context) -> None:
    for path, route in ROUTES.items():
        server.add_route(path, functools.partial(route, context=context))
