"""The benchmark data set (benchmarks/dataset.py) at a tiny size: what a known caller's pop reads
is there, the callers are the residents and the stated share of unknown numbers, and the template
is made once and copied."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
RESIDENTS = 500


@pytest.fixture()
def dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(ROOT))
    for name in ("benchmarks.dataset", "benchmarks.common"):
        sys.modules.pop(name, None)
    module = importlib.import_module("benchmarks.dataset")
    yield module
    for name in ("benchmarks.dataset", "benchmarks.common"):
        sys.modules.pop(name, None)


def test_a_known_caller_has_a_full_profile(dataset, tmp_path) -> None:
    from callcenter.calls.service import build_profile
    from callcenter.config import Settings
    from callcenter.database import get_engine
    from dispatch.profile import pop_extras

    db = dataset.template(RESIDENTS)
    assert db.parent.parent == tmp_path / "cache"
    assert dataset.template(RESIDENTS) == db  # cached, not made again
    settings = Settings(data_dir=tmp_path / "var", _env_file=None)
    settings.data_dir.mkdir()
    dataset.install(settings, RESIDENTS)
    with get_engine(settings).connect() as conn:

        def count(sql: str) -> int:
            return conn.execute(text(sql)).scalar_one()

        bulk = "FROM resident WHERE phone LIKE '+86199%'"
        assert count(f"SELECT count(*) {bulk}") == RESIDENTS
        elderly = count(f"SELECT count(*) {bulk} AND elderly")
        assert 0.13 * RESIDENTS < elderly < 0.27 * RESIDENTS  # a fifth
        assert count("SELECT count(*) FROM elderly_profile") >= elderly
        for table in ("household_member", "service_archive", "workorder", "callrecord"):
            assert count(f"SELECT count(*) FROM {table}") > RESIDENTS // 10, table
        rid = count(
            "SELECT r.id FROM resident r JOIN elderly_profile e ON e.resident_id = r.id"
            " JOIN workorder w ON w.resident_id = r.id WHERE r.phone LIKE '+86199%' LIMIT 1"
        )
    profile = build_profile(settings, rid, None, pop_extras)
    assert profile["resident"]["elderly"]
    assert profile["history"]["calls"] >= 1 and profile["history"]["orders"] >= 1
    assert profile["dispatch"]["elderly"] and profile["dispatch"]["archive"] and profile["dispatch"]["orders"]


def test_callers_are_residents_and_a_share_of_unknown_numbers(dataset) -> None:
    from hotline.demo import bulk_phone

    callers = dataset.callers(200, residents=RESIDENTS, unknown_share=0.1, seed=3)
    assert len(callers) == len(set(callers)) == 200
    unknown = [c for c in callers if not dataset.is_known(c)]
    assert len(unknown) == 20
    residents = {bulk_phone(i)[3:] for i in range(RESIDENTS)}
    assert {c for c in callers if dataset.is_known(c)} <= residents
    assert not set(unknown) & residents
    assert dataset.callers(200, residents=RESIDENTS, seed=3) == callers  # seeded


def test_the_data_set_loads_into_postgresql(dataset, tmp_path, postgres_url) -> None:
    from sqlmodel import Session

    from callcenter.calls.service import build_profile
    from callcenter.config import Settings
    from callcenter.database import dispose_engine, get_engine
    from callcenter.residents.models import Resident
    from dispatch.profile import pop_extras
    from tests.conftest import fresh_postgres_database

    sqlite_settings = Settings(data_dir=tmp_path / "var", _env_file=None)
    sqlite_settings.data_dir.mkdir()
    dataset.install(sqlite_settings, RESIDENTS)
    url = fresh_postgres_database(postgres_url, "template1")
    settings = Settings(data_dir=tmp_path / "pg", database_url=url, _env_file=None)
    dataset.install(settings, RESIDENTS)
    try:
        tables = ("resident", "household_member", "elderly_profile", "workorder", "service_archive")
        tables += ("callrecord",)
        for table in tables:
            counts = []
            for s in (sqlite_settings, settings):
                with get_engine(s).connect() as conn:
                    counts.append(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            assert counts[0] == counts[1] > 0, table
        with get_engine(settings).connect() as conn:
            rid = conn.execute(
                text("SELECT resident_id FROM service_archive WHERE order_id IS NOT NULL LIMIT 1")
            ).scalar_one()
        profile = build_profile(settings, rid, None, pop_extras)
        assert profile["resident"]["elderly"] and profile["dispatch"]["archive"]
        with Session(get_engine(settings)) as s:  # the id sequences were moved past the copied ids
            s.add(Resident(name="新居民", phone="+8617000000001"))
            s.commit()
    finally:
        dispose_engine(settings)
