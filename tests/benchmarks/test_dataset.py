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
