"""Static members' login time and callback in queue, from queue_log lines (tables by hand).

Static members (queues.conf ``member =>``) get no ADDMEMBER / REMOVEMEMBER from Asterisk; the
engine writes them (callid STATIC) when the phone comes and goes, and again at every re-sync:
a login line for a seat already logged in, or a logout for one that is not, changes nothing.
"""

from __future__ import annotations

import json

import pytest

from callcenter.statistics import definitions as defs
from callcenter.statistics.queue_log import parse_line
from callcenter.statistics.reconcile import KEY_GRACE_S, Reconciler
from tests.callcenter.statistics.test_reconcile import by_id, lines, run

DAY = "2026-11-28"
IN = "STATIC|{q}|PJSIP/seat1003|ADDMEMBER|"
OUT = "STATIC|{q}|PJSIP/seat1003|REMOVEMEMBER|"


def static(*steps: tuple[int, str, str]) -> list[str]:
    return lines("\n".join(f"{t}|" + line.format(q=q) for t, line, q in steps))


# (what happens, lines, expected login seconds of seat 1003, expected pause seconds by reason)
LOGINS = [
    ("phone on 0 s, off 600 s", static((0, IN, "hotline"), (600, OUT, "hotline")), 600.0, {}),
    (
        "the engine restarted at 300 s and wrote the login again",
        static((0, IN, "hotline"), (300, IN, "hotline"), (600, OUT, "hotline")),
        600.0,
        {},
    ),
    (
        "a logout while not logged in (a re-sync of a phone that is off) is nothing",
        static((0, OUT, "hotline"), (100, IN, "hotline"), (400, OUT, "hotline"), (450, OUT, "hotline")),
        300.0,
        {},
    ),
    (
        "two queues: logged in while a member of at least one",
        static((0, IN, "hotline"), (100, IN, "elderly"), (400, OUT, "hotline"), (600, OUT, "elderly")),
        600.0,
        {},
    ),
    (
        "Asterisk restarted at 400 s: the login ends, the re-sync at 410 s starts a new one",
        static(
            (0, IN, "hotline"),
            (400, "NONE|NONE|NONE|QUEUESTART|", ""),
            (410, IN, "hotline"),
            (600, OUT, "hotline"),
        ),
        590.0,
        {},
    ),
    (
        # Asterisk writes PAUSE / UNPAUSE for static members itself, under the member name.
        "paused for training 100–160 s (PAUSEALL, then per queue)",
        static(
            (0, IN, "hotline"),
            (100, "NONE|NONE|座席王芳|PAUSEALL|培训", ""),
            (100, "NONE|hotline|座席王芳|PAUSE|培训", ""),
            (160, "NONE|hotline|座席王芳|UNPAUSE|", ""),
            (160, "NONE|NONE|座席王芳|UNPAUSEALL|", ""),
            (600, OUT, "hotline"),
        ),
        600.0,
        {"培训": 60.0},
    ),
]


def seat_seconds(seat_time: dict) -> tuple[float, dict[str, float]]:
    login = sum(v for (d, s, k, _r), v in seat_time.items() if s == "1003" and k == "login")
    pause = {r: v for (d, s, k, r), v in seat_time.items() if s == "1003" and k == "pause"}
    return login, pause


@pytest.mark.parametrize("what,log,login,pause", LOGINS, ids=[c[0] for c in LOGINS])
def test_static_member_login_time(what, log, login, pause):
    names = {"PJSIP/seat1003": "1003", "座席王芳": "1003"}
    for split in (None, *range(1, len(log))):  # an app restart at any line changes nothing
        r = Reconciler(seat_of=lambda a: names.get(a, a))
        seat_time: dict = {}
        for i, line in enumerate(log):
            if split == i:
                state = json.loads(json.dumps(r.state()))
                for k, v in r.take()[1].items():
                    seat_time[k] = seat_time.get(k, 0) + v
                r = Reconciler(seat_of=lambda a: names.get(a, a))
                r.load_state(state)
            r.feed(parse_line(line))
        for k, v in r.take()[1].items():
            seat_time[k] = seat_time.get(k, 0) + v
        assert seat_seconds(seat_time) == (login, pause), (what, split)
        assert all(d == DAY for (d, *_rest) in seat_time)


def test_static_member_occupancy_by_hand():
    # 600 s logged in, 60 s paused, one 90 s call with 10 s wrap-up: 100 / 540.
    c = defs.seat_counters({"outcome": "answered", "wait_s": 2, "talk_s": 90, "wrap_s": 10}, 15)
    f = defs.seat_figures(defs.add({}, c), login_s=600.0, pause_s={"培训": 60.0})
    assert (f["login_s"], f["pause_s"], f["occupancy"]) == (600.0, 60.0, round(100 / 540, 4))


CALLBACKS = lines(
    """
    -300|NONE|NONE|NONE|QUEUESTART|
    -200|a0|hotline|NONE|ENTERQUEUE||13900000001|1
    -170|a0|hotline|NONE|ABANDON|1|1|30
    1|c1|hotline|NONE|DID|96345
    1|c1|hotline|NONE|ENTERQUEUE||13900000001|1
    3|c1|hotline|NONE|EXITWITHKEY|1|1|1|2
    3|c1|hotline|NONE|ENTERQUEUE||13900000001|1
    10|c1|hotline|NONE|EXITWITHKEY|1|1|1|7
    11|c1|hotline|NONE|CALLBACKREQ|c1
    20|c2|hotline|NONE|ENTERQUEUE||13900000002|1
    40|c2|hotline|NONE|EXITWITHKEY|1|1|1|20
    41|c2|hotline|NONE|CALLBACKREQ|c2
    50|c3|hotline|NONE|ENTERQUEUE||13900000003|1
    70|c3|hotline|NONE|EXITWITHKEY|1|1|1|20
    71|c3|hotline|NONE|CALLBACKREQ|c3
    80|c4|hotline|NONE|ENTERQUEUE||13900000004|1
    90|c4|hotline|NONE|EXITWITHKEY|1|1|1|10
    91|c4|hotline|NONE|CALLBACKREQ|c4
    95|c5|hotline|NONE|ENTERQUEUE||13900000005|1
    99|c5|hotline|NONE|EXITWITHKEY|5|1|1|4
    100|o1|hotline|NONE|CALLBACKCALL|c1
    102|o1|hotline|NONE|ENTERQUEUE||96345|1
    105|o1|hotline|座席张敏|CONNECT|3|s1|2
    165|o1|hotline|座席张敏|COMPLETEAGENT|3|60|1
    166|o1|hotline|NONE|CALLBACKEND|c1
    200|o3|hotline|NONE|CALLBACKCALL|c3
    201|o3|hotline|NONE|ENTERQUEUE||96345|1
    220|o3|hotline|NONE|ABANDON|1|1|19
    220|o3|hotline|NONE|CALLBACKEND|c3
    300|o4|hotline|NONE|CALLBACKCALL|c4
    303|o4|hotline|NONE|CALLBACKEND|c4
    900|c2|hotline|NONE|CALLBACKFAIL|c2
    950|c1|hotline|NONE|CALLBACKFAIL|c1
    1000|r3|hotline|NONE|ENTERQUEUE||13900000003|1
    1004|r3|hotline|座席张敏|CONNECT|4|s3|2
    1064|r3|hotline|座席张敏|COMPLETECALLER|4|60|1
    """
)


def test_callback_in_queue_by_hand():
    whole, _ = run(CALLBACKS)
    for split in (None, *range(1, len(CALLBACKS))):  # restarts in the middle change nothing
        rows, seat_time = run(CALLBACKS, split)
        assert by_id(rows) == by_id(whole), split
    calls = by_id(whole)
    # c1 pressed too early (3 s) and went back to its place: one call; it booked at 10 s.
    assert sorted(calls) == [(c, 0) for c in ("a0", "c1", "c2", "c3", "c4", "c5", "o1", "o3", "r3")]
    c1 = calls[("c1", 0)]
    assert (c1["outcome"], c1["wait_s"], c1["exit_key"], c1["callback"], c1["did"]) == (
        "exitkey",
        9.0,  # 2 s before the early key + 7 s after it
        "1",
        "connected",
        "96345",
    )
    assert [calls[(c, 0)]["callback"] for c in ("c2", "c3", "c4", "c5")] == [
        "failed",  # every attempt unanswered (the engine's CALLBACKFAIL)
        "failed",  # the resident answered, then hung up in the queue before a seat answered
        "failed",  # the resident answered and hung up during the greeting
        "",  # another key, no booking: left by key after KEY_GRACE_S
    ]
    o1 = calls[("o1", 0)]
    assert (o1["callback"], o1["outcome"], o1["seat"], o1["talk_s"], o1["caller"]) == (
        "call",
        "answered",
        "1001",
        60.0,
        "13900000001",  # the resident's number, not the hotline's caller ID we showed
    )
    # The earlier abandon of the same resident counts as called back (a different call); the
    # call that booked the callback is no abandon and never counts under "callbacks".
    assert calls[("a0", 0)]["called_back"] is True and c1["called_back"] is False
    # The resident of c3 left our call back unanswered, then called again and was answered: the
    # call back is not their abandoned call, so nothing counts as called back.
    assert calls[("o3", 0)]["called_back"] is False and calls[("c3", 0)]["called_back"] is False

    f = defs.summarize(whole, service_level=15)
    assert (f["offered"], f["answered"], f["abandoned"], f["exit_key"], f["callbacks"]) == (7, 1, 1, 5, 1)
    assert (f["callbacks_requested"], f["callbacks_connected"], f["callbacks_failed"]) == (4, 1, 3)
    # The call back counts for the seat who answered it, not as an offered call.
    seat = defs.add({}, defs.seat_counters(o1, 15))
    assert (seat.get("answered"), seat.get("talk_s")) == (1, 60.0)
    assert defs.seat_counters(calls[("o3", 0)], 15) == {}


def test_an_exit_by_key_counts_once_the_log_is_quiet():
    r = Reconciler()
    for line in lines(
        """
        0|k1|hotline|NONE|ENTERQUEUE||13900000009|1
        8|k1|hotline|NONE|EXITWITHKEY|1|1|1|8
        """
    ):
        r.feed(parse_line(line))
    assert r.take()[0] == []
    r.flush(r.last_ts + KEY_GRACE_S + 1)
    (row,), _, _ = r.take()
    assert (row["outcome"], row["wait_s"], row["callback"]) == ("exitkey", 8.0, "")
