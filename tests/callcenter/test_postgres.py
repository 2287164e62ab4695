"""The PostgreSQL path: Alembic schema, demo data, the pop's lookups and call records."""

from __future__ import annotations

import time

from sqlmodel import func, select

from callcenter.bus import InProcessBus
from callcenter.calls.models import CallRecord, QueueEventRow
from callcenter.calls.service import build_profile
from callcenter.calls.state import LiveCall
from callcenter.calls.workers import CallService
from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from callcenter.residents.service import find_resident_id
from dispatch.profile import pop_extras
from hotline.demo import load_demo
from hotline.engine import Engine

WANG = "+8613919310001"


def answered_call(linkedid: str, now: float, **extra) -> LiveCall:
    """A call seat 1001 answered after 5 s in the hotline queue and talked on for 20 s."""
    return LiveCall(
        linkedid=linkedid,
        caller=WANG,
        queue="hotline",
        seat="1001",
        started=now - 30,
        queued_at=now - 25,
        answered_at=now - 20,
        ended_at=now,
        outcome="answered",
        **extra,
    )


async def test_postgres_end_to_end(postgres_url, tmp_path):
    settings = set_settings(Settings(data_dir=tmp_path / "var", database_url=postgres_url, _env_file=None))
    migrate(settings)
    migrate(settings)  # idempotent
    with session_scope(settings) as s:
        assert load_demo(s, residents=200, seat_contact_base_port=None, must_change_password=False)["created"]

    rid = find_resident_id(settings, WANG)
    engine = Engine(settings, InProcessBus())
    assert not engine.ivr.inline_reads  # a networked database: reads go to a worker thread
    assert (await engine.ivr.facts(WANG)).resident_id == rid is not None

    profile = build_profile(settings, rid, WANG, pop_extras)
    assert profile["resident"]["name"] == "王秀英" and profile["history"]["orders"] >= 1
    calls_before = profile["history"]["calls"]

    service = CallService(settings, InProcessBus(), profile_extras=pop_extras)
    now = time.time()
    call = answered_call("pg.1", now, resident_id=rid)
    call.events = [{"at": now - 25, "event": "QueueCallerJoin", "queue": "hotline", "interface": ""}]
    service._write([call])
    service._write([call])  # seen again after a re-sync: updated, not counted twice
    with session_scope(settings) as s:
        assert (
            s.exec(select(func.count()).select_from(CallRecord).where(CallRecord.linkedid == "pg.1")).one()
            == 1
        )
        rec = s.exec(select(CallRecord).where(CallRecord.linkedid == "pg.1")).one()
        assert rec.wait_s == 5.0 and rec.talk_s == 20.0 and rec.started_at.tzinfo is not None
        assert (
            s.exec(
                select(func.count()).select_from(QueueEventRow).where(QueueEventRow.linkedid == "pg.1")
            ).one()
            == 1
        )
    assert build_profile(settings, rid, WANG, pop_extras)["history"]["calls"] == calls_before + 1
    service._pool.shutdown()
    await engine.stop_agi()


async def test_call_records_wait_while_postgresql_is_down_and_are_written_once_it_is_back(tmp_path, caplog):
    """PostgreSQL stopped under the engine (connections lost) for longer than a refused record's
    retries last: the records wait in memory and are written once it answers again, once each."""
    import asyncio
    import logging

    from callcenter.calls import workers
    from callcenter.database import dispose_engine
    from tests.conftest import PostgresServer

    server = PostgresServer()
    settings = set_settings(Settings(data_dir=tmp_path / "var", database_url=server.url, _env_file=None))
    service = None
    task = None
    try:
        migrate(settings)
        service = CallService(settings, InProcessBus())
        task = asyncio.create_task(service._record_worker())
        server.stop()
        now = time.time()
        for i in range(3):
            service._records.put_nowait(answered_call(f"pgdown.{i}", now))
        with caplog.at_level(logging.ERROR, logger="callcenter.calls.workers"):
            for _ in range(100):
                if any("database unavailable" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.1)
            # Down for longer than RECORD_ATTEMPTS tries of a refused record would last
            await asyncio.sleep(workers.RECORD_ATTEMPTS + 3)
        assert not any("dropped" in r.getMessage() for r in caplog.records)
        server.start()
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline:
            with session_scope(settings) as s:
                count = s.exec(
                    select(func.count())
                    .select_from(CallRecord)
                    .where(CallRecord.linkedid.startswith("pgdown."))
                ).one()
            if count == 3:
                break
            await asyncio.sleep(0.2)
        assert count == 3
    finally:
        if task is not None:
            task.cancel()
        if service is not None:
            service._pool.shutdown()
        dispose_engine(settings)
        server.remove()
