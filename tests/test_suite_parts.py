"""make test's parts (scripts/run-tests.sh, ``pytest --part``): every test in exactly one, the
PostgreSQL pass naming files that exist, and every part run when one fails."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
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


def test_every_part_runs_when_one_fails_and_the_first_failure_is_the_exit_status(tmp_path):
    """The script with a stand-in pytest that fails the SQLite pass of the other tests: the
    PostgreSQL pass and the benchmarks still run, and make test fails."""
    log = tmp_path / "ran.log"
    fake = tmp_path / "pytest"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {shlex.quote(str(log))}\n'
        'case "$*" in *--part=other*) exit 3;; esac\n'
        "exit 0\n"
    )
    fake.chmod(0o700)
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "run-tests.sh")],
        env={**os.environ, "CC_TEST_BIN": str(tmp_path), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    ran = log.read_text().splitlines()
    assert done.returncode == 3, done.stdout + done.stderr
    assert [any(f"--part={p}" in r for r in ran) for p in PARTS] == [True, True, True]
    assert any("--database=postgres" in r for r in ran)
    assert "make test failed" in done.stdout
