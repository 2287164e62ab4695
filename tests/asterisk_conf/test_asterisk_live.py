"""A real Asterisk from the rendered configuration, real sipp phones, a real AMI client.

Non-default ports (AMI 15038, SIP 15060, FastAGI 14573 with nothing listening, RTP 11000-11099)
and a temporary data_dir, so a running demo is not disturbed. The welcome prompt is shortened for
speed through <data_dir>/prompts.json (the product's is about 20 s long); everything else is as in production.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from asterisk_conf import process, sounds
from asterisk_conf.installer import AsteriskInstallError, ensure_asterisk
from asterisk_conf.sipp import SippUAS, place_call, run_calls
from tests.asterisk_conf.conftest import add_rows, make_settings
from tests.conftest import AmiWatch, missing_part
from tests.conftest import require as need

pytestmark = pytest.mark.e2e

PORTS = {
    "ami_port": 15038,
    "sip_port": 15060,
    "agi_port": 14573,
    "rtp_start": 11000,
    "rtp_end": 11099,
    "asterisk_http_port": 15088,
}
SEAT_PORT = 15081
XSS = '<script>alert("x")</script>'
TIMING: dict[str, float] = {}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    need("sipp")
    need("espeak-ng")
    need("sox")
    settings = make_settings(tmp_path_factory.mktemp("asterisk-live") / "var", **PORTS)
    try:
        ensure_asterisk(settings)
    except AsteriskInstallError as exc:
        missing_part(f"no Asterisk here: {exc}")
    add_rows(
        settings,
        seats=[
            {
                "username": "seat1001",
                "display_name": "张三",
                "extension": "1001",
                "sip_password": "s3cret",
                "sip_contact": f"sip:seat1001@127.0.0.1:{SEAT_PORT}",
            }
        ],
    )
    sounds.prompts_file(settings).write_text(
        json.dumps({"welcome": "您好。", "not_in_service": "暂不提供服务。"}), encoding="utf-8"
    )
    started = time.monotonic()
    try:
        st = process.start(settings, timeout=60)
        TIMING["start"] = time.monotonic() - started
        assert st["running"], st
        yield settings
    finally:
        process.stop(settings)


@pytest.fixture
async def ami(live):
    watch = await AmiWatch().open(live)
    yield watch
    watch.close()


def test_starts_fast_and_cleanly(live):
    assert TIMING["start"] < 30
    messages = (live.asterisk_instance_dir() / "log" / "messages").read_text()
    bad = [line for line in messages.splitlines() if "ERROR[" in line or "WARNING[" in line]
    assert not bad, "\n".join(bad)
    st = process.status(live)
    assert st["running"] and st["version"].startswith("Asterisk ")
    # start again is a no-op on the running instance
    assert process.start(live)["pid"] == st["pid"]


async def test_calls_reach_the_seat_through_the_queue_without_fastagi(live, ami):
    # Nothing listens on the FastAGI port: AGISTATUS=FAILURE and the DID's queue is used.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", live.agi_port)) != 0
    queue_status = await ami.manager.send_action({"Action": "QueueStatus"})
    assert any(
        m.get("Event") == "QueueMember" and m.get("Location") == "Local/1001@cc-ring-seat/nm"
        for m in queue_status
    )

    async with SippUAS(SEAT_PORT, ring_ms=300):
        carrier = asyncio.create_task(
            place_call(live, did="96345", caller="13800138000", caller_name=XSS, hold_ms=6000)
        )
        trunk = asyncio.create_task(
            place_call(
                live,
                did="12345",
                caller="13900139000",
                source_ip="127.0.0.2",
                hold_ms=6000,
                headers={live.header_12345_order: "GS001", live.header_12345_summary: "楼道灯不亮"},
            )
        )
        await ami.wait_for("QueueCallerJoin", Channel="PJSIP/carrier-", Queue="hotline")
        await ami.wait_for("QueueCallerJoin", Channel="PJSIP/trunk12345-", Queue="hotline")
        called = await ami.wait_for("AgentCalled", Interface="Local/1001@cc-ring-seat/nm")
        assert called["Queue"] == "hotline"
        await ami.wait_for("AgentConnect", Interface="Local/1001@cc-ring-seat/nm")
        channels = await ami.manager.send_action({"Action": "CoreShowChannels"})
        listed = [m.get("Channel", "") for m in channels if m.get("Event") == "CoreShowChannel"]
        assert any(c.startswith("PJSIP/seat1001-") for c in listed), listed
        results = await asyncio.gather(carrier, trunk)
        assert all(r.ok for r in results), [(r.returncode, r.errors) for r in results]
        await ami.wait_for("AgentComplete", Interface="Local/1001@cc-ring-seat/nm")
    await ami.wait_for("Hangup", Channel="PJSIP/trunk12345-")
    joined = {e["Channel"].split("-")[0]: e for e in ami.seen("QueueCallerJoin")}
    assert joined["PJSIP/carrier"]["CallerIDNum"] == "13800138000"
    assert joined["PJSIP/trunk12345"]["CallerIDNum"] == "13900139000"


async def test_unknown_number_is_answered_and_hung_up(live, ami):
    started = time.monotonic()
    result = await place_call(live, did="99999", caller="13800000001", hold_ms=15000)
    assert result.ok, result.errors
    assert time.monotonic() - started < 12  # Asterisk hung up after the prompt, before our 15 s
    assert not ami.seen("QueueCallerJoin", CallerIDNum="13800000001")


async def test_many_calls_at_a_rate(live):
    callers = [f"1380000{i:04d}" for i in range(4)]
    result = await run_calls(live, did="99999", callers=callers, rate=10, hold_ms=15000, timeout=40)
    assert result.ok and result.successful == 4 and result.failed == 0, (result.stats, result.errors)


def test_ami_refuses_a_wrong_secret(live):
    with socket.create_connection(("127.0.0.1", live.ami_port), timeout=5) as s:
        s.recv(1024)
        s.sendall(f"Action: Login\r\nUsername: {live.ami_user}\r\nSecret: wrong\r\n\r\n".encode())
        reply = s.recv(1024).decode()
    assert "Response: Error" in reply


def test_reload_applies_new_queues_numbers_and_seats(live):
    add_rows(
        live,
        queues=[{"name": "elderly", "title": "老年人服务"}],
        dids=[{"number": "96346", "queue_name": "elderly"}],
        seats=[{"username": "seat1002", "display_name": "李四", "extension": "1002", "queues": ["elderly"]}],
    )
    process.reload(live)
    assert "李四 (Local/1002@cc-ring-seat/nm" in process.cli_command(live, "queue show elderly")
    assert "Gosub(cc-incoming,s,1(96346,elderly,carrier))" in process.cli_command(
        live, "dialplan show 96346@from-carrier"
    )
    assert "seat1002" in process.cli_command(live, "pjsip show endpoint seat1002")


def test_stop_is_quick_idempotent_and_leaves_no_mounts(live):
    instance = str(live.asterisk_instance_dir())
    started = time.monotonic()
    assert process.stop(live) is True
    assert time.monotonic() - started < 10
    assert process.stop(live) is False
    assert process.status(live)["running"] is False
    with open("/proc/self/mountinfo") as fh:
        assert instance not in fh.read()
