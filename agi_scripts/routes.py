"""The FastAGI route table: one route, one small module (as wazo-agid does)."""

from __future__ import annotations

import functools

from agi_scripts.after_hours import after_hours
from agi_scripts.callback import callback
from agi_scripts.followup import followup
from agi_scripts.incoming import incoming
from agi_scripts.missed_callback import missed_callback
from agi_scripts.server import FastAgiServer

# path -> (route, thread_safe): a thread-safe route runs on the FastAGI server's own loop (reads
# and thread-safe calls only); the others on the engine's loop (agi_scripts/server.py).
ROUTES = {
    "incoming": (incoming, True),
    "after_hours": (after_hours, False),
    "callback": (callback, False),
    "followup": (followup, False),
    "missed_callback": (missed_callback, False),
}


def register_routes(server: FastAgiServer, context) -> None:
    for path, (route, thread_safe) in ROUTES.items():
        server.add_route(path, functools.partial(route, context=context), thread_safe=thread_safe)
