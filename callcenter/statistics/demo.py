"""A month of queue history for the demo, so the reports and the scorecard show something.

The lines are what Asterisk's queue_log would hold for the demo's past calls and a typical
month's traffic; they go through the same reconciler and writer as the live log (not through a
file and not through the live cursor), and stop at yesterday: today's figures stay the real ones.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from sqlmodel import Session, col, select

from callcenter import ids
from callcenter.accounts.models import Account
from callcenter.config import CHINA_TZ
from callcenter.statistics.follower import write_batch
from callcenter.statistics.queue_log import parse_line
from callcenter.statistics.reconcile import Reconciler
from callcenter.text import clean_name


def history_lines(seats: dict[str, str], days: int = 30, per_day: int = 120, seed: int = 2026) -> list[str]:
    """queue_log lines for ``days`` days before today; ``seats``: member name → extension."""
    rnd = random.Random(seed)
    names = sorted(seats)
    today = datetime.now(CHINA_TZ).date()
    out: list[tuple[float, str]] = []
    busy = [0, 0, 0, 0, 0, 0, 1, 3, 8, 10, 10, 8, 5, 7, 9, 9, 8, 6, 4, 3, 2, 1, 1, 0]
    hours = [h for h, w in enumerate(busy) for _ in range(w)]
    n = 0
    for back in range(days, 0, -1):
        day0 = datetime.combine(today - timedelta(days=back), time(0), CHINA_TZ).timestamp()
        for name in names:
            iface = ids.seat_interface(seats[name])
            # Demo seats are static members: the engine logs their phones in (presence.py).
            out.append((day0 + 8 * 3600, f"STATIC|hotline|{iface}|ADDMEMBER|"))
            out.append((day0 + 12 * 3600, f"NONE|hotline|{name}|PAUSE|用餐"))
            out.append((day0 + 12 * 3600 + rnd.randrange(1800, 3600), f"NONE|hotline|{name}|UNPAUSE|"))
            out.append((day0 + 17.5 * 3600, f"STATIC|hotline|{iface}|REMOVEMEMBER|"))
        for _ in range(int(per_day * rnd.uniform(0.7, 1.3))):
            n += 1
            t = day0 + rnd.choice(hours) * 3600 + rnd.random() * 3600
            cid = f"{int(t)}.{n}"
            caller = f"139{rnd.randrange(10**8):08d}"
            out.append((t - 1, f"{cid}|hotline|NONE|DID|{'12345' if n % 6 == 0 else '96345'}"))
            out.append((t, f"{cid}|hotline|NONE|ENTERQUEUE||{caller}|1"))
            wait = int(rnd.expovariate(1 / 10)) + 1
            r = rnd.random()
            if r < 0.88 and names:
                agent = rnd.choice(names)
                talk = int(rnd.expovariate(1 / 140)) + 15
                out.append((t + wait, f"{cid}|hotline|{agent}|CONNECT|{wait}|{cid}1|3"))
                end = "BLINDTRANSFER|1002|seats" if r < 0.02 else "COMPLETECALLER"
                out.append((t + wait + talk, f"{cid}|hotline|{agent}|{end}|{wait}|{talk}|1"))
            elif n % 3 == 0 and names:
                # Booked a callback by key; called back 10 min later: answered, or given up.
                out.append((t + wait, f"{cid}|hotline|NONE|EXITWITHKEY|1|1|1|{wait}"))
                out.append((t + wait + 1, f"{cid}|hotline|NONE|CALLBACKREQ|{cid}"))
                called, ocid = t + wait + 600, f"{int(t) + 600}.{n}9"
                if n % 4:
                    agent = names[n % len(names)]
                    out.append((called, f"{ocid}|hotline|NONE|CALLBACKCALL|{cid}"))
                    out.append((called + 5, f"{ocid}|hotline|NONE|ENTERQUEUE||96345|1"))
                    out.append((called + 8, f"{ocid}|hotline|{agent}|CONNECT|3|{ocid}1|2"))
                    out.append((called + 98, f"{ocid}|hotline|{agent}|COMPLETEAGENT|3|90|1"))
                    out.append((called + 99, f"{ocid}|hotline|NONE|CALLBACKEND|{cid}"))
                else:
                    out.append((called + 400, f"{cid}|hotline||CALLBACKFAIL|{cid}"))
            else:
                out.append((t + wait, f"{cid}|hotline|NONE|ABANDON|1|1|{wait}"))
    out.sort(key=lambda x: x[0])
    return [f"{int(ts)}|{line}" for ts, line in out]


def load_history(session: Session, days: int = 30, service_level: float = 15) -> int:
    """Write the history on the session's own transaction (load_demo commits it). Returns calls."""
    seats = {
        clean_name(a.display_name, fallback=clean_name(a.username, fallback=a.extension)): a.extension
        for a in session.exec(
            select(Account).where(Account.role == "seat", col(Account.extension).is_not(None))
        )
        if a.extension is not None  # the query's own filter, said again for the type checker
    }
    r = Reconciler(
        seat_of=lambda agent: seats.get(agent) or ids.seat_of(agent) or agent, wrapup={"hotline": 5}
    )
    for line in history_lines(seats, days):
        entry = parse_line(line)
        if entry is not None:  # every line made above is one
            r.feed(entry)
    closed, seat_time, callbacks = r.take()
    write_batch(session.connection(), service_level, closed, seat_time, callbacks)
    return len(closed)
