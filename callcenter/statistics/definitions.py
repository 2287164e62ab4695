"""The statistics' definitions: ONE implementation, used by the reports, the API and the wallboard.

Each queue call (``stat_call`` row) adds to additive counters (``counters``); figures over any
set of calls are sums of counters, and the rates are computed from the sums (``figures``). The
wallboard's today, a report's table row and the API all go through these two functions, so they
cannot disagree. docs/statistics.md says the same in words.

- offered: calls that entered a queue, except short abandons;
- answered: offered calls a seat answered (CONNECT in queue_log);
- abandoned: the caller hung up while waiting, after ``SHORT_ABANDON_S`` or more;
- short abandons: hung up within ``SHORT_ABANDON_S`` — counted apart, in neither of the above;
- timeout / exit by key / exit empty / lost: left the queue by the queue's time limit, by a key,
  because no seat was logged in, or because Asterisk restarted while the call was queued;
- answered rate (接通率): answered ÷ offered;
- service level (15 s): answered within ``service_level`` s ÷ answered; and Asterisk's second
  form, (answered + abandoned within it) ÷ (answered + abandoned);
- ASA: total wait of answered calls ÷ answered; AHT: (talk + wrap-up) ÷ answered, wrap-up being
  the queue's configured wrap-up time after each answered call; longest wait: the longest any
  offered caller waited (answered or not);
- transfers: answered calls a seat transferred (blind, attended); ring-no-answer: seats' phones
  that rang out unanswered; callbacks: abandoned calls whose caller was answered later, within
  ``callback_window_h`` hours (called again, or called back through a queue);
- callbacks requested / connected / failed (callback in queue): offered calls whose caller
  pressed the callback key and booked a call back (such a call left by key: it is not an
  abandon, so it never counts under callbacks above); of those, the ones a seat then talked to
  on our call back, and the ones given up (no answer after every attempt, or the resident left
  before a seat answered). All three count in the queue, day and hour of the call that booked
  it. The call back itself is not an offered call (it is ours, not the resident's): it counts
  only for the seat who answered it (calls handled, talk, wrap-up).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SHORT_ABANDON_S = 5.0
# stat_call.callback of a call that booked a callback; "call" marks the call back's own stay.
CALLBACK_STATES = ("requested", "connected", "failed")

OUTCOMES = ("answered", "abandoned", "timeout", "exitkey", "exitempty", "withdrawn", "lost")

COUNTERS = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "timeout",
    "exit_key",
    "exit_empty",
    "lost",
    "answered_in_sl",
    "abandoned_in_sl",
    "transfers_blind",
    "transfers_attended",
    "rna",
    "callbacks",
    "callbacks_requested",
    "callbacks_connected",
    "callbacks_failed",
    "wait_answered_s",
    "talk_s",
    "wrap_s",
)
MAX_COUNTERS = ("max_wait_s",)


def counters(call: Mapping[str, Any], service_level: float) -> dict[str, float]:
    """What one queue call adds to the counters."""
    c: dict[str, float] = {}
    outcome = call.get("outcome")
    callback = call.get("callback") or ""
    if callback == "call":
        return c  # our call back to a resident: not an offered call (see callbacks_* above)
    wait = float(call.get("wait_s") or 0.0)
    if outcome == "abandoned" and wait < SHORT_ABANDON_S:
        c["short_abandoned"] = 1
        return c
    c["offered"] = 1
    c["max_wait_s"] = wait
    c["rna"] = int(call.get("rna") or 0)
    if outcome == "answered":
        c["answered"] = 1
        c["wait_answered_s"] = wait
        c["talk_s"] = float(call.get("talk_s") or 0.0)
        c["wrap_s"] = float(call.get("wrap_s") or 0.0)
        if wait <= service_level:
            c["answered_in_sl"] = 1
        if call.get("transfer") == "blind":
            c["transfers_blind"] = 1
        elif call.get("transfer") == "attended":
            c["transfers_attended"] = 1
    elif outcome == "abandoned":
        c["abandoned"] = 1
        if wait <= service_level:
            c["abandoned_in_sl"] = 1
        if call.get("called_back"):
            c["callbacks"] = 1
    elif outcome == "timeout":
        c["timeout"] = 1
    elif outcome in ("exitkey", "withdrawn"):
        c["exit_key"] = 1
        if callback in CALLBACK_STATES:
            c["callbacks_requested"] = 1
            if callback != "requested":
                c[f"callbacks_{callback}"] = 1
    elif outcome == "exitempty":
        c["exit_empty"] = 1
    else:
        c["lost"] = 1
    return c


def seat_counters(call: Mapping[str, Any], service_level: float) -> dict[str, float]:
    """What one queue call adds to the counters of the seat who answered it: the call's own
    counters, and for a call back (not an offered call) the seat's work on it."""
    if call.get("callback") != "call":
        c = counters(call, service_level)
        c["rna"] = 0  # a seat's ring-no-answers are its own (seat time), not the answerer's
        return c
    if call.get("outcome") != "answered":
        return {}
    c = {
        "answered": 1,
        "talk_s": float(call.get("talk_s") or 0.0),
        "wrap_s": float(call.get("wrap_s") or 0.0),
    }
    if call.get("transfer") in ("blind", "attended"):
        c[f"transfers_{call['transfer']}"] = 1
    return c


def add(total: dict[str, float], c: Mapping[str, float]) -> dict[str, float]:
    """Counters summed (max for the maxima)."""
    get = total.get
    for k, v in c.items():
        if k == "max_wait_s":  # the one maximum (MAX_COUNTERS)
            if v > get(k, 0.0):
                total[k] = v
        else:
            total[k] = get(k, 0) + v
    return total


def _rate(n: float, d: float) -> float | None:
    return round(n / d, 4) if d else None


def _avg(n: float, d: float) -> float | None:
    return round(n / d, 1) if d else None


def figures(c: Mapping[str, float]) -> dict[str, Any]:
    """The figures people read, from summed counters."""
    g = {k: c.get(k, 0) or 0 for k in (*COUNTERS, *MAX_COUNTERS)}
    ints = {k: int(g[k]) for k in COUNTERS if not k.endswith("_s")}
    answered, abandoned = g["answered"], g["abandoned"]
    return {
        **ints,
        "transfers": ints["transfers_blind"] + ints["transfers_attended"],
        "answered_rate": _rate(answered, g["offered"]),
        "abandon_rate": _rate(abandoned, g["offered"]),
        "service_level": _rate(g["answered_in_sl"], answered),
        "service_level_with_abandoned": _rate(
            g["answered_in_sl"] + g["abandoned_in_sl"], answered + abandoned
        ),
        "asa_s": _avg(g["wait_answered_s"], answered),
        "aht_s": _avg(g["talk_s"] + g["wrap_s"], answered),
        "avg_talk_s": _avg(g["talk_s"], answered),
        "wait_answered_s": round(g["wait_answered_s"], 1),
        "talk_s": round(g["talk_s"], 1),
        "wrap_s": round(g["wrap_s"], 1),
        "longest_wait_s": round(g["max_wait_s"], 1),
    }


def summarize(calls: Iterable[Mapping[str, Any]], service_level: float) -> dict[str, Any]:
    """Figures straight from call rows (tests, small sets)."""
    total: dict[str, float] = {}
    for call in calls:
        add(total, counters(call, service_level))
    return figures(total)


def seat_figures(c: Mapping[str, float], login_s: float, pause_s: Mapping[str, float]) -> dict[str, Any]:
    """A seat's figures: calls handled, handle time, login and pause time, occupancy.

    Occupancy = (talk + wrap-up) ÷ (login time − pause time), the share of available time spent
    on calls; None without login time.
    """
    f = figures(c)
    paused = sum(pause_s.values())
    available = login_s - paused
    busy = float(c.get("talk_s", 0) or 0) + float(c.get("wrap_s", 0) or 0)
    return {
        "handled": f["answered"],
        "talk_s": f["talk_s"],
        "aht_s": f["aht_s"],
        "transfers": f["transfers"],
        "rna": f["rna"],
        "login_s": round(login_s, 1),
        "pause_s": round(paused, 1),
        "pause_by_reason": {k: round(v, 1) for k, v in sorted(pause_s.items())},
        "occupancy": _rate(min(busy, available), available) if available > 0 else None,
    }
