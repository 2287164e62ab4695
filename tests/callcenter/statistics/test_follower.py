"""Following queue_log into the database: resume after a restart, rotation, truncation."""

from __future__ import annotations

import os

from sqlalchemy import func, select

from callcenter.config import Settings, set_settings
from callcenter.database import get_engine, migrate, table_of
from callcenter.ids import DIAGNOSTICS_QUEUE
from callcenter.statistics import service
from callcenter.statistics.follower import QueueLogTail, StatsFollower
from callcenter.statistics.models import StatCall
from tests.callcenter.statistics.test_reconcile import SCENARIO, lines

DAY = "2026-11-28"


def drain(f: StatsFollower, max_bytes: int = 1 << 20) -> None:
    for _ in range(1000):
        if not f.step(max_bytes):
            return
    raise AssertionError("the follower never caught up")


def figures(settings):
    return service.report(settings, DAY, DAY, by="queue")


def write(path, lines, mode="a"):
    with open(path, mode, encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)


def test_whole_file(settings, tmp_path):
    log = tmp_path / "queue_log"
    write(log, SCENARIO)
    drain(StatsFollower(settings, path=log))
    rep = figures(settings)
    hotline = next(r for r in rep["rows"] if r["key"] == "hotline")
    assert (hotline["offered"], hotline["answered"], hotline["abandoned"], hotline["short_abandoned"]) == (
        7,
        4,
        1,
        1,
    )
    assert hotline["callbacks"] == 1 and hotline["transfers"] == 2
    assert rep["total"]["offered"] == 8  # and the transferred caller, offered again to "elderly"
    with get_engine(settings).connect() as c:
        assert c.execute(select(func.count()).select_from(StatCall)).scalar() == 9
    seats = service.report(settings, DAY, DAY, by="seat")
    lina = next(r for r in seats["rows"] if r["key"] == "座席李娜")
    assert lina["pause_by_reason"] == {"用餐": 600.0} and lina["rna"] == 1 and lina["handled"] == 2


def test_restart_at_every_line_changes_nothing(settings, tmp_path):
    whole = tmp_path / "whole"
    write(whole, SCENARIO)
    drain(StatsFollower(settings, path=whole))
    expected = figures(settings)
    for split in (1, 5, 11, 14, 22, 28):
        # A fresh database each time: the follower state lives only there.
        from callcenter.config import Settings, set_settings
        from callcenter.database import migrate

        s2 = set_settings(Settings(data_dir=tmp_path / f"var{split}", _env_file=None))
        migrate(s2)
        log = tmp_path / f"log{split}"
        write(log, SCENARIO[:split])
        drain(StatsFollower(s2, path=log), max_bytes=64)  # small batches: many commits
        write(log, SCENARIO[split:])
        drain(StatsFollower(s2, path=log))  # the app restarted: new objects, same database
        assert figures(s2) == expected, split


def test_rotation_while_following_and_while_stopped(settings, tmp_path):
    log = tmp_path / "queue_log"
    write(log, SCENARIO[:10])
    f = StatsFollower(settings, path=log)
    drain(f)
    write(log, SCENARIO[10:15])  # written just before the rotation, not yet read
    os.rename(log, tmp_path / "queue_log.0")
    write(log, SCENARIO[15:20])
    drain(f)
    # Stopped; meanwhile rotated again, with unread lines in the rotated file.
    write(log, SCENARIO[20:25])
    os.rename(log, tmp_path / "queue_log.1")
    write(log, SCENARIO[25:])
    drain(StatsFollower(settings, path=log))
    whole = tmp_path / "whole"
    write(whole, SCENARIO)
    from callcenter.config import Settings, set_settings
    from callcenter.database import migrate

    s2 = set_settings(Settings(data_dir=tmp_path / "var2", _env_file=None))
    migrate(s2)
    drain(StatsFollower(s2, path=whole))
    assert figures(settings) == figures(s2)


def test_truncation_and_partial_lines(tmp_path):
    log = tmp_path / "queue_log"
    write(log, SCENARIO[:3])
    tail = QueueLogTail(log)
    assert tail.read() == SCENARIO[:3]
    with open(log, "a") as fh:
        fh.write(SCENARIO[3][:10])  # Asterisk is still writing this line
    assert tail.read() == []
    with open(log, "a") as fh:
        fh.write(SCENARIO[3][10:] + "\n")
    assert tail.read() == [SCENARIO[3]]
    write(log, SCENARIO[4:5], mode="w")  # truncated in place (copytruncate)
    assert tail.read() == [SCENARIO[4]]
    assert tail.read() == []


def test_rebuild_from_rotated_and_live_files(settings, tmp_path):
    from callcenter.statistics.follower import rebuild

    log = tmp_path / "queue_log"
    write(tmp_path / "queue_log.1", SCENARIO[:8])
    write(tmp_path / "queue_log.0", SCENARIO[8:20])
    write(log, SCENARIO[20:])
    f = StatsFollower(settings, path=log)
    drain(f)  # only the live file: part of the day
    partial = figures(settings)
    assert rebuild(settings, log) == len(SCENARIO)
    whole = tmp_path / "whole"
    write(whole, SCENARIO)
    from callcenter.config import Settings, set_settings
    from callcenter.database import migrate

    s2 = set_settings(Settings(data_dir=tmp_path / "var2", _env_file=None))
    migrate(s2)
    drain(StatsFollower(s2, path=whole))
    assert figures(settings) == figures(s2) != partial
    # And following goes on from the live file's end.
    write(log, ["1795900000|z1|hotline|NONE|ENTERQUEUE||139|1", "1795900030|z1|hotline|NONE|ABANDON|1|1|30"])
    drain(StatsFollower(settings, path=log))
    assert service.report(settings, "2026-11-29", "2026-11-29")["total"]["abandoned"] == 1


def test_a_failed_write_loses_nothing(settings, tmp_path, monkeypatch):
    """The database refuses one batch: the follower starts again from the saved position."""
    import callcenter.statistics.follower as follower

    log = tmp_path / "queue_log"
    write(log, SCENARIO[:12])
    f = StatsFollower(settings, path=log)
    drain(f, max_bytes=200)
    write(log, SCENARIO[12:])
    real = follower.write_batch

    def broken(*args, **kw):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(follower, "write_batch", broken)
    try:
        f.step()
    except RuntimeError:
        f.reset()  # what the engine's loop does
    monkeypatch.setattr(follower, "write_batch", real)
    drain(f)
    whole = tmp_path / "whole"
    write(whole, SCENARIO)
    from callcenter.config import Settings, set_settings
    from callcenter.database import migrate

    s2 = set_settings(Settings(data_dir=tmp_path / "var2", _env_file=None))
    migrate(s2)
    drain(StatsFollower(s2, path=whole))
    assert figures(settings) == figures(s2)


def test_the_doctors_calls_are_kept_apart_from_the_figures(settings, tmp_path):
    """A diagnostics call and its seat's pause are written as a call, never rolled up."""
    plain = tmp_path / "plain"
    write(plain, SCENARIO)
    drain(StatsFollower(settings, path=plain))
    expected = figures(settings)
    expected_seats = service.report(settings, DAY, DAY, by="seat")

    other = set_settings(Settings(data_dir=tmp_path / "other", _env_file=None))
    migrate(other)
    doctor = lines(
        f"""
        820|NONE|NONE|PJSIP/seat{other.doctor_extension}|PAUSEALL|诊断
        830|d1|{DIAGNOSTICS_QUEUE}|NONE|DID|{other.doctor_did}
        831|d1|{DIAGNOSTICS_QUEUE}|NONE|ENTERQUEUE||13800000000|1
        833|d1|{DIAGNOSTICS_QUEUE}|PJSIP/seat{other.doctor_extension}|CONNECT|2|s10|1
        834|d1|{DIAGNOSTICS_QUEUE}|PJSIP/seat{other.doctor_extension}|COMPLETEAGENT|2|1|1
        850|NONE|NONE|PJSIP/seat{other.doctor_extension}|UNPAUSEALL|
        """
    )
    with_doctor = tmp_path / "with_doctor"
    write(with_doctor, SCENARIO[:-1] + doctor + SCENARIO[-1:])
    drain(StatsFollower(other, path=with_doctor))
    assert figures(other) == expected
    assert service.report(other, DAY, DAY, by="seat") == expected_seats
    with get_engine(other).connect() as c:
        t = table_of(StatCall)
        kept = c.execute(select(t.c.queue, t.c.outcome, t.c.talk_s).where(t.c.callid == "d1")).all()
    assert [tuple(r) for r in kept] == [(DIAGNOSTICS_QUEUE, "answered", 1.0)]


def test_call_records_the_engine_lost_sight_of_are_settled_from_queue_log(settings, tmp_path):
    """The engine's AMI connection was down while Asterisk ran on: it wrote the calls that ended
    meanwhile as unsettled. queue_log, which Asterisk kept writing, tells how they ended; a record
    the engine had settled itself is left alone."""
    from datetime import UTC, datetime

    from callcenter.calls.models import UNSETTLED, CallRecord
    from callcenter.database import session_scope
    from callcenter.statistics.follower import settled_call_records

    started = datetime(2026, 11, 28, tzinfo=UTC)
    with session_scope(settings) as s:
        engine_saw = {"c1": UNSETTLED, "c2": UNSETTLED, "c3": "abandoned", "c4": UNSETTLED}
        for linkedid, outcome in engine_saw.items():
            s.add(CallRecord(linkedid=linkedid, started_at=started, outcome=outcome, seat="9999"))
        s.commit()
    log = tmp_path / "queue_log"
    write(log, SCENARIO)
    follower = StatsFollower(settings, path=log)
    drain(follower)
    assert follower.ingest is not None and sorted(follower.ingest.settled) == ["c1", "c2", "c4"]  # announced
    with session_scope(settings) as s:
        recs = {r.linkedid: r for r in s.exec(select(CallRecord)).scalars()}
    assert (recs["c1"].outcome, recs["c1"].wait_s, recs["c1"].talk_s) == ("answered", 20, 60)
    assert recs["c1"].queue == "hotline" and recs["c1"].seat != "9999" and recs["c1"].ended_at is not None
    assert (recs["c2"].outcome, recs["c2"].wait_s, recs["c2"].seat) == ("abandoned", 30, "")
    assert recs["c4"].outcome == "timeout"  # left the queue at its timeout, did not hang up
    assert (recs["c3"].outcome, recs["c3"].seat) == ("abandoned", "9999")  # the engine's own, kept
    # Written after the follower closed the call, a record is settled by this lookup instead.
    with get_engine(settings).connect() as conn:
        found = settled_call_records(conn, ["c5", "c2", "nothing"])
    assert found["c5"]["outcome"] == "timeout" and "nothing" not in found
    assert found["c2"] == {**found["c2"], "outcome": "abandoned", "wait_s": 30, "seat": ""}


def test_calls_the_engine_never_saw_end_get_their_record_from_queue_log(settings, tmp_path):
    """The engine was down (killed) while calls ended: queue_log, read when it is back, gives each
    its call record (outcome, queue, seat, times, the caller in E.164); a record the engine wrote
    itself is kept; calls the engine saw are left to it."""
    from datetime import UTC, datetime

    from callcenter.calls.models import CallRecord
    from callcenter.database import session_scope
    from callcenter.directory.models import ServiceNumber

    with session_scope(settings) as s:
        s.add(ServiceNumber(number="96345", title="社区热线", queue_name="hotline"))
        s.add(CallRecord(linkedid="c2", started_at=datetime(2026, 11, 28, tzinfo=UTC), outcome="abandoned"))
        s.commit()
    log = tmp_path / "queue_log"
    write(log, SCENARIO)
    blind = StatsFollower(settings, path=log, seen=lambda at: at > 1e12)  # saw nothing of these
    drain(blind)
    with session_scope(settings) as s:
        recs = {r.linkedid: r for r in s.exec(select(CallRecord)).scalars()}
    assert set(recs) == {"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"}
    c1 = recs["c1"]
    assert (c1.outcome, c1.queue, c1.wait_s, c1.talk_s, c1.did, c1.source) == (
        "answered",
        "hotline",
        20,
        60,
        "96345",
        "carrier",
    )
    assert c1.caller == "+8613900000001" and c1.started_at is not None and c1.ended_at is not None
    assert recs["c6"].source == "12345"  # its DID line names the 12345 trunk's number
    assert recs["c2"].wait_s is None  # the engine's own record, untouched
    assert blind.ingest is not None and "c1" in blind.ingest.settled and "c2" not in blind.ingest.settled


def test_calls_the_engine_saw_are_left_to_it(settings, tmp_path):
    from callcenter.calls.models import CallRecord
    from callcenter.database import session_scope

    log = tmp_path / "queue_log"
    write(log, SCENARIO)
    drain(StatsFollower(settings, path=log, seen=lambda at: True))
    with session_scope(settings) as s:
        assert s.exec(select(CallRecord)).first() is None
