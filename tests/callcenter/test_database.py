"""The call path's hot reads: plain sqlite3 gives the same rows as SQLAlchemy, and sees new rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func
from sqlmodel import select

from callcenter.calls.models import CallRecord
from callcenter.database import Query, Reads, SqliteReads, get_engine, hot_reads, session_scope
from callcenter.residents.models import Resident

_CALLS = Query(
    select(CallRecord.linkedid, CallRecord.started_at, CallRecord.seat)
    .where(CallRecord.caller == bindparam("caller"), CallRecord.started_at >= bindparam("since"))
    .order_by(CallRecord.started_at.desc())
    .limit(5)
)
_FLAGS = Query(
    select(Resident.name, Resident.elderly, Resident.vulnerable).where(Resident.id == bindparam("rid"))
)
_COUNT = Query(select(func.count()).select_from(CallRecord))


def test_sqlite_reads_give_sqlalchemys_values(settings):
    now = datetime.now(UTC).replace(microsecond=0)
    with session_scope(settings) as s:
        r = Resident(name="王秀英", phone="+8613919310001", elderly=True)
        s.add(r)
        for i, hours_ago in enumerate((1, 5, 30)):
            s.add(
                CallRecord(
                    linkedid=f"c{i}",
                    caller="+8613919310001",
                    seat="1001",
                    started_at=now - timedelta(hours=hours_ago),
                )
            )
        s.commit()
        rid = r.id
    since = now - timedelta(hours=24)
    with get_engine(settings).connect() as conn, hot_reads(settings) as raw:
        assert isinstance(raw, SqliteReads)
        orm = Reads(conn)
        assert raw.all(_CALLS, caller="+8613919310001", since=since) == [
            tuple(r) for r in orm.all(_CALLS, caller="+8613919310001", since=since)
        ]
        rows = raw.all(_CALLS, caller="+8613919310001", since=since)
        assert [r[0] for r in rows] == ["c0", "c1"]
        assert isinstance(rows[0][1], datetime)  # converted as SQLAlchemy does, not the stored text
        assert raw.first(_FLAGS, rid=rid) == ("王秀英", True, False) == tuple(orm.first(_FLAGS, rid=rid))
        assert raw.first(_FLAGS, rid=rid + 1) is None
        assert raw.first(_COUNT) == (3,)
        # Autocommit: a row committed after the connection was opened is seen.
        with session_scope(settings) as s:
            s.add(CallRecord(linkedid="c9", caller="+8613919310001", started_at=now))
            s.commit()
        assert raw.first(_COUNT) == (4,)


def test_each_thread_reads_on_its_own_connection(settings):
    with hot_reads(settings) as here:
        mine = here.conn
    seen = []

    def other() -> None:
        with hot_reads(settings) as there:
            seen.append((there.conn, there.first(_COUNT)))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen[0][0] is not mine and seen[0][1] == (0,)
    with hot_reads(settings) as again:
        assert again.conn is mine  # kept for the thread's next read
