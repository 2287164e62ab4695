"""The stdin AGI script sets the same channel variables as the FastAGI route."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agi_scripts.testing import agi_env, answer_commands
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from callcenter.ivr.models import ServiceHours
from callcenter.residents.models import Resident

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "agi_scripts" / "stdin_incoming.py"


async def _run(settings, tmp_path, args: list[str], env: dict[str, str], variables=None) -> dict[str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=dict(
            os.environ,
            CALLCENTER_DATA_DIR=str(settings.data_dir),
            CALLCENTER_CLOCK=settings.clock,
            PYTHONPATH=str(ROOT),
        ),
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(agi_env("stdin_incoming.py", args=args, env={"agi_network": "no", **env}))
    set_vars, _ = await answer_commands(proc.stdout, proc.stdin, variables, timeout=30)
    assert await proc.wait() == 0
    return set_vars


async def test_caller_hours_priority_and_last_seat(settings, tmp_path):
    settings.clock = "2026-12-02T12:00:00+08:00"  # a Wednesday, outside the hours below
    with session_scope(settings) as s:
        r = Resident(name="王秀英", phone="+8613919310001", elderly=True, lives_alone=True)
        s.add(r)
        s.add(ServiceHours(number="96345", schedule="daily", open_time="08:00", close_time="09:00"))
        s.add(
            CallRecord(
                linkedid="1700000000.1",
                caller="+8613919310001",
                seat="1001",
                started_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        s.commit()
        rid = r.id
    set_vars = await _run(
        settings,
        tmp_path,
        ["carrier", "96345", "hotline", "1700000000.5"],
        {"agi_callerid": "0086 139 1931 0001"},
    )
    assert float(set_vars.pop("CC_ROUTE_AT")) > 0
    assert set_vars == {
        "CC_CALLER": "+8613919310001",
        "CC_RESIDENT_ID": str(rid),
        "CC_OPEN": "0",
        "CC_PRIORITY": "3",
        "CC_PREFERRED_SEAT": "1001",
        "CC_ROUTE_OK": "1",
    }


async def test_12345_order_number_and_priority(settings, tmp_path):
    set_vars = await _run(
        settings,
        tmp_path,
        ["12345", "12345", "hotline", "1700000000.7"],
        {"agi_callerid": "anonymous"},
        variables={"PJSIP_HEADER(read,X-12345-OrderNo)": "GS2026112800123"},
    )
    set_vars.pop("CC_ROUTE_AT")
    assert set_vars == {"CC_ORDER12345": "GS2026112800123", "CC_PRIORITY": "5", "CC_ROUTE_OK": "1"}
