"""make test's parts (scripts/run-tests.sh, ``pytest --part``): every test in exactly one, and the
PostgreSQL pass naming files that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import PARTS, part_of

ROOT = Path(__file__).resolve().parent.parent


def item(nodeid: str):
    return SimpleNamespace(nodeid=nodeid)


def test_each_test_belongs_to_its_part():
    assert part_of(item("tests/e2e/test_call_path.py::test_x")) == "calls"
    assert part_of(item("tests/e2e/test_demo_run.py::test_y[a::b]")) == "calls"
    assert part_of(item("tests/benchmarks/test_smoke.py::test_z[bench_pop.py]")) == "benchmarks"
    assert part_of(item("tests/web_console/test_pages.py::test_w")) == "other"
    assert part_of(item("tests/test_architecture.py::test_v")) == "other"
    assert set(PARTS) == {"calls", "other", "benchmarks"}


def test_the_runner_runs_every_part_and_the_postgresql_pass_names_real_files():
    script = (ROOT / "scripts" / "run-tests.sh").read_text()
    assert {f"--part={p}" for p in PARTS} <= set(re.findall(r"--part=\w+", script))
    pg = re.search(r"^PG_TESTS=\((.*)\)$", script, re.M)
    assert pg is not None
    paths = shlex.split(pg.group(1))
    assert paths and all((ROOT / p).exists() for p in paths), paths
