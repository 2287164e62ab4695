"""queue_log → one record per queue call, around ring-no-answer, transfers, exits, restarts."""

from __future__ import annotations

import json
from datetime import datetime

from callcenter.config import CHINA_TZ
from callcenter.statistics import definitions as defs
from callcenter.statistics.queue_log import parse_line
from callcenter.statistics.reconcile import Reconciler

T0 = int(datetime(2026, 11, 28, 9, 0, tzinfo=CHINA_TZ).timestamp())
NAMES = {"座席张敏": "1001", "座席李娜": "1002"}


def lines(text: str) -> list[str]:
    out = []
    for raw in text.strip().splitlines():
        dt, rest = raw.strip().split("|", 1)
        out.append(f"{T0 + int(dt)}|{rest}")
    return out


SCENARIO = lines(
    """
    0|NONE|NONE|NONE|QUEUESTART|
    1|NONE|NONE|座席李娜|PAUSEALL|用餐
    1|NONE|hotline|座席李娜|PAUSE|用餐
    9|c1|hotline|NONE|DID|96345
    10|c1|hotline|NONE|ENTERQUEUE||13900000001|1
    25|c1|hotline|座席李娜|RINGNOANSWER|15000
    30|c1|hotline|座席张敏|CONNECT|20|s1|5
    90|c1|hotline|座席张敏|COMPLETECALLER|20|60|1
    100|c2|hotline|NONE|ENTERQUEUE||13900000002|1
    130|c2|hotline|NONE|ABANDON|1|1|30
    140|c3|hotline|NONE|ENTERQUEUE||13900000003|1
    143|c3|hotline|NONE|ABANDON|1|1|3
    150|c4|hotline|NONE|ENTERQUEUE||13900000004|1
    450|c4|hotline|NONE|EXITWITHTIMEOUT|1|1|300
    460|c5|hotline|NONE|ENTERQUEUE||13900000005|1
    470|c5|hotline|NONE|EXITWITHKEY|0|1|1|10
    500|c6|hotline|NONE|DID|12345
    501|c6|hotline|NONE|ENTERQUEUE||13900000006|1
    505|c6|hotline|座席张敏|CONNECT|4|s6|2
    535|c6|hotline|座席张敏|BLINDTRANSFER|2|cc-queues|4|30|1
    536|c6|elderly|NONE|ENTERQUEUE||13900000006|1
    546|c6|elderly|座席李娜|CONNECT|10|s7|3
    606|c6|elderly|座席李娜|COMPLETEAGENT|10|60|1
    601|NONE|hotline|座席李娜|UNPAUSE|
    601|NONE|NONE|座席李娜|UNPAUSEALL|
    700|c7|hotline|NONE|ENTERQUEUE||13900000002|1
    712|c7|hotline|座席李娜|CONNECT|12|s8|4
    752|c7|hotline|座席李娜|ATTENDEDTRANSFER|BRIDGE|b-1|12|40|1
    800|c8|hotline|NONE|ENTERQUEUE||13900000008|1
    810|c8|hotline|座席张敏|CONNECT|10|s9|3
    900|NONE|NONE|NONE|QUEUESTART|
    """
)


def run(all_lines: list[str], split: int | None = None) -> tuple[list[dict], dict]:
    r = Reconciler(seat_of=lambda a: NAMES.get(a, a), wrapup={"hotline": 5, "elderly": 10})
    rows, seat_time = [], {}
    for i, line in enumerate(all_lines):
        if split is not None and i == split:
            # The app stops here and starts again: only the saved state goes across.
            state = json.loads(json.dumps(r.state()))
            closed, st, _cb = r.take()
            rows += closed
            for k, v in st.items():
                seat_time[k] = seat_time.get(k, 0) + v
            r = Reconciler(seat_of=lambda a: NAMES.get(a, a), wrapup={"hotline": 5, "elderly": 10})
            r.load_state(state)
        r.feed(parse_line(line))
    closed, st, callbacks = r.take()
    rows += closed
    for k, v in st.items():
        seat_time[k] = seat_time.get(k, 0) + v
    for cid, seq, kind in callbacks:  # what the writer does to rows already written
        row = next(x for x in rows if (x["callid"], x["seq"]) == (cid, seq))
        if kind == "called_back":
            row["called_back"] = True
        elif row["callback"] == "requested":
            row["callback"] = kind
    return rows, seat_time


def by_id(rows):
    return {(r["callid"], r["seq"]): r for r in rows}


def test_one_record_per_queue_call():
    rows, seat_time = run(SCENARIO)
    calls = by_id(rows)
    assert len(rows) == 9
    c1 = calls[("c1", 0)]
    assert (c1["outcome"], c1["seat"], c1["wait_s"], c1["talk_s"], c1["rna"], c1["did"]) == (
        "answered",
        "1001",
        20.0,
        60.0,
        1,
        "96345",
    )
    assert c1["wrap_s"] == 5.0 and c1["day"] == "2026-11-28" and c1["hour"] == 9
    assert calls[("c2", 0)]["outcome"] == "abandoned" and calls[("c2", 0)]["wait_s"] == 30.0
    assert calls[("c2", 0)]["called_back"] is True  # the same caller was answered at 700 s
    assert calls[("c3", 0)]["outcome"] == "abandoned" and calls[("c3", 0)]["wait_s"] == 3.0
    assert calls[("c4", 0)]["outcome"] == "timeout"
    assert calls[("c5", 0)]["outcome"] == "exitkey" and calls[("c5", 0)]["exit_key"] == "0"
    # Blind transfer: answered in hotline by 1001, then a new record in elderly with the same DID.
    t0, t1 = calls[("c6", 0)], calls[("c6", 1)]
    assert (t0["queue"], t0["outcome"], t0["transfer"], t0["talk_s"], t0["seat"]) == (
        "hotline",
        "answered",
        "blind",
        30.0,
        "1001",
    )
    assert t0["transfer_to"] == "2@cc-queues"
    assert (t1["queue"], t1["outcome"], t1["seat"], t1["wait_s"], t1["did"]) == (
        "elderly",
        "answered",
        "1002",
        10.0,
        "12345",
    )
    c7 = calls[("c7", 0)]
    assert (c7["transfer"], c7["talk_s"], c7["transfer_to"]) == ("attended", 40.0, "BRIDGE:b-1")
    # Asterisk restarted while c8 was talking: answered, talk up to the restart.
    c8 = calls[("c8", 0)]
    assert (c8["outcome"], c8["talk_s"]) == ("answered", 90.0)
    # 1002 paused for lunch from 1 s to 601 s: one pause, not two (PAUSEALL + PAUSE).
    assert seat_time[("2026-11-28", "1002", "pause", "用餐")] == 600.0
    assert seat_time[("2026-11-28", "1002", "rna", "")] == 1


def test_figures_by_hand():
    rows, _ = run(SCENARIO)
    hotline = defs.summarize([r for r in rows if r["queue"] == "hotline"], service_level=15)
    # hotline: c1 c2 c4 c5 c6 c7 c8 offered (c3 is a short abandon); answered c1 c6 c7 c8.
    assert (hotline["offered"], hotline["answered"], hotline["abandoned"], hotline["short_abandoned"]) == (
        7,
        4,
        1,
        1,
    )
    assert (hotline["timeout"], hotline["exit_key"], hotline["transfers"], hotline["callbacks"]) == (
        1,
        1,
        2,
        1,
    )
    assert hotline["answered_rate"] == round(4 / 7, 4)
    # within 15 s: c6 (4), c7 (12), c8 (10); c1 waited 20. Abandoned c2 waited 30: outside.
    assert hotline["service_level"] == 0.75
    assert hotline["service_level_with_abandoned"] == round(3 / 5, 4)
    assert hotline["asa_s"] == round((20 + 4 + 12 + 10) / 4, 1)
    assert hotline["aht_s"] == round((60 + 30 + 40 + 90 + 4 * 5) / 4, 1)
    assert hotline["longest_wait_s"] == 300.0
    assert hotline["rna"] == 1


def test_restart_anywhere_changes_nothing():
    whole, seat_whole = run(SCENARIO)
    for split in range(1, len(SCENARIO)):
        rows, seat_time = run(SCENARIO, split=split)
        assert by_id(rows) == by_id(whole), split
        assert seat_time == seat_whole, split


def test_pause_over_midnight_is_split():
    midnight = int(datetime(2026, 11, 29, 0, 0, tzinfo=CHINA_TZ).timestamp())
    r = Reconciler()
    r.feed(parse_line(f"{midnight - 600}|NONE|hotline|PJSIP/seat1001|ADDMEMBER|"))
    r.feed(parse_line(f"{midnight - 60}|NONE|hotline|PJSIP/seat1001|PAUSE|培训"))
    r.feed(parse_line(f"{midnight + 120}|NONE|hotline|PJSIP/seat1001|UNPAUSE|"))
    r.feed(parse_line(f"{midnight + 300}|NONE|hotline|PJSIP/seat1001|REMOVEMEMBER|"))
    _, st, _ = r.take()
    assert st == {
        ("2026-11-28", "PJSIP/seat1001", "pause", "培训"): 60.0,
        ("2026-11-29", "PJSIP/seat1001", "pause", "培训"): 120.0,
        ("2026-11-28", "PJSIP/seat1001", "login", ""): 600.0,
        ("2026-11-29", "PJSIP/seat1001", "login", ""): 300.0,
    }


def test_seat_figures_occupancy():
    c = defs.add({}, defs.counters({"outcome": "answered", "wait_s": 3, "talk_s": 600, "wrap_s": 60}, 15))
    f = defs.seat_figures(c, login_s=3600, pause_s={"用餐": 1200})
    assert f["handled"] == 1 and f["occupancy"] == round(660 / 2400, 4) and f["pause_s"] == 1200
    assert defs.seat_figures({}, 0, {})["occupancy"] is None


RETURNING = lines(
    """
    0|NONE|NONE|NONE|QUEUESTART|
    9|r1|cc-seat-1001|NONE|DID|96345|hotline
    10|r1|cc-seat-1001|NONE|ENTERQUEUE||13900000011|1
    13|r1|cc-seat-1001|座席张敏|CONNECT|3|s1|3
    73|r1|cc-seat-1001|座席张敏|COMPLETECALLER|3|60|1
    99|r2|cc-seat-1002|NONE|DID|96345|elderly
    100|r2|cc-seat-1002|NONE|ENTERQUEUE||13900000012|1
    110|r2|cc-seat-1002|座席李娜|RINGNOANSWER|10000
    110|r2|cc-seat-1002|NONE|EXITWITHTIMEOUT|1|1|10
    110|r2|elderly|NONE|DID|96345
    110|r2|elderly|NONE|ENTERQUEUE||13900000012|1
    115|r2|elderly|座席张敏|CONNECT|5|s2|2
    175|r2|elderly|座席张敏|COMPLETEAGENT|5|60|1
    200|r3|cc-seat-1002|NONE|DID|96345|hotline
    200|r3|cc-seat-1002|NONE|ENTERQUEUE||13900000013|1
    206|r3|cc-seat-1002|NONE|ABANDON|1|1|6
    """
)


def test_a_returning_callers_seat_queue_counts_for_the_queue_it_was_for():
    for split in (None, 4, 9, 10):  # restarts in the middle change nothing
        rows, _ = run(RETURNING, split)
        calls = by_id(rows)
        assert sorted(calls) == [("r1", 0), ("r2", 0), ("r3", 0)], split
        r1, r2, r3 = calls[("r1", 0)], calls[("r2", 0)], calls[("r3", 0)]
        assert (r1["queue"], r1["outcome"], r1["seat"], r1["wait_s"], r1["did"]) == (
            "hotline",
            "answered",
            "1001",
            3.0,
            "96345",
        )
        # The seat let it ring out: one call, in elderly, whose wait includes the 10 s ring-out.
        assert (r2["queue"], r2["outcome"], r2["seat"], r2["wait_s"], r2["rna"]) == (
            "elderly",
            "answered",
            "1001",
            15.0,
            1,
        )
        assert (r3["queue"], r3["outcome"], r3["wait_s"]) == ("hotline", "abandoned", 6.0)
