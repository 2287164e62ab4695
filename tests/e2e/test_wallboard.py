"""Pausing from the console reaches Asterisk, and the wallboard shows it within a second."""

from __future__ import annotations

import re
import time

import pytest

from asterisk_conf.sipp import SippUAS, place_call
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import console_login, open_console_ws
from tests.e2e.conftest import SEAT_PORT, next_message, seat_console

pytestmark = pytest.mark.e2e


def seat_row(snapshot: dict, ext: str) -> dict | None:
    return next((s for s in snapshot["seats"] if s["ext"] == ext), None)


async def test_pause_with_reason_reaches_the_wallboard(app, ami):
    client, console = await seat_console(app, "seat1001")
    supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
    board = await open_console_ws(app.base_url, supervisor, path="/ws/wallboard")
    first, _ = await next_message(board, lambda m: m.get("type") == "snapshot")
    assert seat_row(first, "1001")["state"] == "available"
    assert "hotline" in first["queues"]

    page = (await client.get("/console")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    refused = await client.post(
        "/api/seat/pause", json={"paused": True, "reason": "打游戏"}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 422
    no_csrf = await client.post("/api/seat/pause", json={"paused": True, "reason": "用餐"})
    assert no_csrf.status_code == 403

    sent = time.time()
    r = await client.post(
        "/api/seat/pause", json={"paused": True, "reason": "用餐"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 202
    snap, seen_at = await next_message(
        board, lambda m: m.get("type") == "snapshot" and (seat_row(m, "1001") or {}).get("state") == "paused"
    )
    assert seen_at - sent < 1.0
    assert seat_row(snap, "1001")["paused_reason"] == "用餐"
    await ami.wait_for(
        "QueueMemberPause", Interface="Local/1001@cc-ring-seat/nm", Paused="1", PausedReason="用餐"
    )
    state, _ = await next_message(console, lambda m: m.get("type") == "state" and m["state"] == "paused")
    assert state["paused_reason"] == "用餐"

    r = await client.post("/api/seat/pause", json={"paused": False}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 202
    await next_message(
        board,
        lambda m: m.get("type") == "snapshot" and (seat_row(m, "1001") or {}).get("state") == "available",
    )
    await board.close()
    await console.close()


async def test_seats_may_not_open_the_wallboard(app):
    client, console = await seat_console(app, "seat1001")
    await console.close()
    assert (await client.get("/wallboard")).status_code == 403
    board = await open_console_ws(app.base_url, client, path="/ws/wallboard")
    with pytest.raises(Exception) as closed:
        await board.recv()
    assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 4403


async def test_wallboard_counts_match_the_calls_placed(app, ami):
    supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
    board = await open_console_ws(app.base_url, supervisor, path="/ws/wallboard")
    before, _ = await next_message(board, lambda m: m.get("type") == "snapshot")
    q0 = before["queues"]["hotline"]
    seat0 = seat_row(before, "1001")["calls_today"]
    with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=0):
        assert (await place_call(app.settings, did="96345", caller="13919310001", hold_ms=3000)).ok
        # Nobody free: the caller waits about 7 s in the queue and gives up.
        await ami.manager.send_action(
            {
                "Action": "QueuePause",
                "Interface": "Local/1001@cc-ring-seat/nm",
                "Paused": "true",
                "Reason": "会议",
            },
            as_list=False,
        )
        await place_call(app.settings, did="96345", caller="13800001111", hold_ms=8000)
        await ami.manager.send_action(
            {"Action": "QueuePause", "Interface": "Local/1001@cc-ring-seat/nm", "Paused": "false"},
            as_list=False,
        )
    after, _ = await next_message(
        board,
        lambda m: (
            m.get("type") == "snapshot"
            and m["queues"]["hotline"].get("offered", 0) >= q0.get("offered", 0) + 2
        ),
    )
    q1 = after["queues"]["hotline"]
    assert q1["offered"] - q0.get("offered", 0) == 2
    assert q1["answered"] - q0.get("answered", 0) == 1
    assert q1["abandoned"] - q0.get("abandoned", 0) == 1
    assert seat_row(after, "1001")["calls_today"] == seat0 + 1
    assert 0 < q1["answered_rate"] < 1 and after["alerts"] == {"wait_s": 15, "answered_rate": 0.95}
    await board.close()
