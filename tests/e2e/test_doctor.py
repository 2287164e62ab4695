"""`callcenter doctor` against the running stack: every hop checked, figures as JSON last; its
test calls never reach the service figures, and it leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest
from sqlmodel import col, func, select

from callcenter.accounts.models import Account
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ids import DIAGNOSTICS_QUEUE
from callcenter.statistics.models import StatCall
from callcenter.statistics.service import today
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import DOCTOR_USER, console_login, open_console_ws
from tests.e2e.conftest import env_for, no_calls_up, settled_snapshot

pytestmark = pytest.mark.e2e

# What the wallboard shows of a queue that is not live (callers waiting now, the clock)
_LIVE = {"waiting", "longest_wait_s"}


def _doctor(app) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", "doctor"],
        env=env_for(app.settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


STARTED = date.fromisoformat(today())


async def _figures(client) -> dict:
    # The days around the test (not only today: a run across midnight compares the same days)
    start, end = STARTED - timedelta(days=1), STARTED + timedelta(days=1)
    out = {}
    for by in ("queue", "seat", "did", "total"):
        r = await client.get(f"/api/stats/report?start={start}&end={end}&by={by}")
        assert r.status_code == 200, r.text
        body = r.json()
        out[by] = {"rows": body["rows"], "total": body["total"]}
        if by == "seat":  # login time runs on while seats stay logged in
            out[by] = {"rows": [(x["key"], x["handled"], x["talk_s"]) for x in body["rows"]]}
    export = await client.get(f"/reports/export?format=csv&start={start}&end={end}&by=queue")
    assert export.status_code == 200
    out["export"] = export.text
    return out


def _board_figures(snap: dict) -> dict:
    return {
        "queues": {q: {k: v for k, v in f.items() if k not in _LIVE} for q, f in snap["queues"].items()},
        "seats": sorted((s["ext"], s.get("calls_today")) for s in snap["seats"]),
    }


def _diagnostic_calls(settings) -> int:
    with session_scope(settings) as s:
        return s.exec(
            select(func.count()).select_from(StatCall).where(col(StatCall.queue) == DIAGNOSTICS_QUEUE)
        ).one()


async def test_doctor_passes_and_leaves_the_service_figures_alone(app):
    settings = app.settings
    supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
    board = await open_console_ws(app.base_url, supervisor, path="/ws/wallboard")
    # An earlier test's last call may still be ending, or its record still on its way.
    await no_calls_up(settings)
    first = await settled_snapshot(board, _board_figures)
    before_board = _board_figures(first)
    before = await _figures(supervisor)
    calls_before = _diagnostic_calls(settings)

    # Every snapshot the wallboard gets while the doctor runs: never its queue or its seat.
    snapshots: list[dict] = []

    async def watch() -> None:
        while True:
            msg = json.loads(await board.recv())
            if msg.get("type") == "snapshot":
                snapshots.append(msg)

    watcher = asyncio.create_task(watch())
    out = await asyncio.to_thread(_doctor, app)  # adds the diagnostics number, calls it, removes it
    assert out.returncode == 0, out.stdout + out.stderr
    again = await asyncio.to_thread(_doctor, app)  # and again: the same, from nothing
    assert again.returncode == 0, again.stdout + again.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["doctor"] == "ok"
    for figure in (
        "db_ms",
        "ami_login_ms",
        "invite_to_route_ms",
        "route_to_agent_called_ms",
        "agent_called_to_pop_ms",
    ):
        assert report[figure] >= 0, report
    assert report["agent_called_to_pop_ms"] < 1000

    # The follower has written both test calls (as the diagnostics queue's calls) ...
    deadline = time.time() + 40
    while _diagnostic_calls(settings) < calls_before + 2:
        assert time.time() < deadline, "the follower never wrote the doctor's calls"
        await asyncio.sleep(0.3)
    # ... and its next batch (the wallboard's day figures follow each batch) has passed.
    await asyncio.sleep(1.0)
    watcher.cancel()
    assert snapshots, "the wallboard got no snapshot while the doctor ran"
    for snap in snapshots:
        assert DIAGNOSTICS_QUEUE not in snap["queues"], snap["queues"].keys()
        assert settings.doctor_extension not in {x["ext"] for x in snap["seats"]}
    assert _board_figures(snapshots[-1]) == before_board
    assert await _figures(supervisor) == before
    await board.close()

    # It cleaned up: no diagnostics number, queue, seat or call record is left.
    with session_scope(settings) as s:
        assert s.exec(select(CallQueue).where(CallQueue.name == DIAGNOSTICS_QUEUE)).first() is None
        number = s.exec(select(ServiceNumber).where(ServiceNumber.number == settings.doctor_did)).first()
        assert number is None
        assert s.exec(select(Account).where(Account.username == DOCTOR_USER)).first() is None
        assert s.exec(select(CallRecord).where(CallRecord.did == settings.doctor_did)).first() is None

    # The runs are kept apart, with their timings, on the administrators' diagnostics page.
    admin = await console_login(app.base_url, "admin", DEMO_PASSWORD)
    page = (await admin.get("/admin/diagnostics")).text
    runs = re.findall(r'<tr data-ok="(true|false)">', page)
    assert runs[:2] == ["true", "true"], page
    newest = json.loads(again.stdout.strip().splitlines()[-1])
    ms = re.search(r'data-key="agent_called_to_pop_ms">([0-9.]+)<', page)  # the newest run first
    assert ms is not None and float(ms.group(1)) == newest["agent_called_to_pop_ms"], page
    assert len(re.findall(r"<tr data-linkedid=", page)) >= 2
    assert (await supervisor.get("/admin/diagnostics")).status_code == 403


def test_doctor_fails_when_the_engine_is_down(app):
    app.stop()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "hotline.cli", "doctor"],
            env=env_for(app.settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        app.start()
    assert out.returncode != 0
    assert json.loads(out.stdout.strip().splitlines()[-1])["doctor"] == "fail"
