"""An administrator's seat changes reach Asterisk by a reload that leaves live calls alone."""

from __future__ import annotations

import asyncio
import re

import pytest

from asterisk_conf import process
from asterisk_conf.sipp import SippUAS, place_call
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import console_login
from tests.e2e.conftest import SEAT_PORT

pytestmark = pytest.mark.e2e


async def wait_endpoint(settings, name: str, present: bool, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        out = await asyncio.to_thread(process.cli_command, settings, f"pjsip show endpoint {name}")
        if ("Unable to find object" not in out) == present:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"endpoint {name} {'missing' if present else 'still there'}: {out}")


async def test_new_and_disabled_seats_reach_asterisk_without_dropping_a_call(app, ami):
    settings = app.settings
    admin = await console_login(app.base_url, "admin", DEMO_PASSWORD)
    token = re.search(r'name="csrf" value="([^"]+)"', (await admin.get("/admin/accounts")).text).group(1)
    with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=0):
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=9000))
        await ami.wait_for("AgentConnect", Interface="Local/1001@cc-ring-seat/nm")
        r = await admin.post(
            "/admin/accounts",
            data={
                "csrf": token,
                "username": "seat1005",
                "display_name": "座席新人",
                "role": "seat",
                "extension": "1005",
                "queues": "hotline",
            },
        )
        assert r.status_code == 201
        await wait_endpoint(settings, "seat1005", present=True)
        # The queues are reloaded after the dialplan (the new member's hint exists first).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        members = ""
        while "Local/1005@cc-ring-seat/nm" not in members and loop.time() < deadline:
            members = await asyncio.to_thread(process.cli_command, settings, "queue show hotline")
            await asyncio.sleep(0.2)
        assert "Local/1005@cc-ring-seat/nm" in members and "hint:1005@cc-ring-seat" in members, members
        # The call that was up during the reload ends normally, answered, with its full talk time.
        done = await ami.wait_for("AgentComplete", Interface="Local/1001@cc-ring-seat/nm", timeout=20)
        assert int(done["TalkTime"]) >= 6 and done["Reason"] == "caller"
        assert (await call).ok
    seat_id = re.search(
        r'action="/admin/accounts/(\d+)/active"[^>]*>\s*<input type="hidden" name="csrf" '
        r'value="[^"]+">\s*<input type="hidden" name="active" value="false">',
        r.text.split('data-username="seat1005"')[1],
    ).group(1)
    r = await admin.post(f"/admin/accounts/{seat_id}/active", data={"csrf": token, "active": "false"})
    assert r.status_code == 200
    await wait_endpoint(settings, "seat1005", present=False)
    await admin.aclose()
