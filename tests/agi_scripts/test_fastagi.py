"""The FastAGI server and the incoming route over real TCP, with a scripted Asterisk side."""

from __future__ import annotations

import asyncio
import time

import pytest

from agi_scripts.server import quote
from agi_scripts.testing import run_agi_call
from callcenter.bus import InProcessBus
from callcenter.calls.state import Identified
from callcenter.database import session_scope
from callcenter.residents.models import Resident
from hotline.engine import Engine
from tests.conftest import free_port


class Seen:
    """What the route handed to the call service: its facts, from the service's hand-over (the
    engine's event queue gets only the wake-ups, taken here as the consumer would)."""

    def __init__(self, engine: Engine) -> None:
        self.queue = engine.ami.events
        self.handover = engine.calls._handover
        self.items: list[Identified] = []

    def __getitem__(self, index: int) -> Identified:
        while not self.queue.empty():
            self.queue.get_nowait()
        while self.handover:
            self.items.append(self.handover.popleft())
        return self.items[index]


@pytest.fixture
async def agi(settings):
    """The engine's FastAGI server (AMI not started) on a free port."""
    settings.agi_port = free_port()
    settings.agi_read_timeout = 0.5
    engine = Engine(settings, InProcessBus())
    await engine.start_agi()
    yield engine.agi, Seen(engine), settings.agi_port
    await engine.stop_agi()


def test_quote_keeps_values_inside_one_argument():
    assert quote('a"b\\c\nEXEC Dial') == '"a\\"b\\\\c EXEC Dial"'


async def test_empty_connection_does_not_freeze_the_loop(agi):
    server, seen, port = agi
    for _ in range(3):
        _r, w = await asyncio.open_connection("127.0.0.1", port)
        w.close()
    # A half-sent header block that then stalls is cut off by the read timeout.
    _r, stalled = await asyncio.open_connection("127.0.0.1", port)
    stalled.write(b"agi_network: yes\n")
    await stalled.drain()
    ticks = 0

    async def ticker():
        nonlocal ticks
        for _ in range(10):
            await asyncio.sleep(0.01)
            ticks += 1

    await asyncio.wait_for(ticker(), 1)
    assert ticks == 10
    set_vars, _ = await asyncio.wait_for(
        run_agi_call("127.0.0.1", port, "incoming", args=["carrier", "96345", "hotline", "1700000000.1"]), 2
    )
    assert set_vars["CC_ROUTE_OK"] == "1"
    stalled.close()


async def test_incoming_route_answers_while_the_engine_loop_is_busy(agi):
    """The server has its own thread and loop: a call is routed while the engine's loop is
    blocked (a burst of AMI events, say), and the engine learns of it once free again."""
    server, seen, port = agi
    done_at: list[float] = []

    def call_from_another_thread() -> dict[str, str]:
        set_vars, _ = asyncio.run(
            run_agi_call("127.0.0.1", port, "incoming", args=["carrier", "96345", "hotline", "1700000000.7"])
        )
        done_at.append(time.monotonic())
        return set_vars

    call = asyncio.get_running_loop().run_in_executor(None, call_from_another_thread)
    time.sleep(2.0)  # the engine's loop does nothing else meanwhile
    blocked_until = time.monotonic()
    set_vars = await call
    assert set_vars["CC_ROUTE_OK"] == "1"
    assert done_at[0] < blocked_until
    assert seen[-1].linkedid == "1700000000.7"


async def test_incoming_route_identifies_a_resident(agi, settings):
    server, seen, port = agi
    with session_scope(settings) as s:
        r = Resident(name="王秀英", phone="+8613919310001", elderly=True, lives_alone=True)
        s.add(r)
        s.commit()
        rid = r.id
    set_vars, sent = await run_agi_call(
        "127.0.0.1",
        port,
        "incoming",
        args=["carrier", "96345", "hotline", "1700000000.5"],
        env={"agi_callerid": "0086 139 1931 0001", "agi_calleridname": '"><script>alert(1)</script>'},
    )
    assert float(set_vars.pop("CC_ROUTE_AT")) > 0
    # An elderly resident living alone waits ahead of others (CC_PRIORITY).
    assert set_vars == {
        "CC_CALLER": "+8613919310001",
        "CC_RESIDENT_ID": str(rid),
        "CC_PRIORITY": "3",
        "CC_ROUTE_OK": "1",
    }
    # The caller's name never travels into an AGI command.
    assert not any("script" in line for line in sent)
    info = seen[-1]
    assert (info.linkedid, info.resident_id, info.did, info.source, info.queue) == (
        "1700000000.5",
        rid,
        "96345",
        "carrier",
        "hotline",
    )


async def test_a_slow_caller_lookup_does_not_hold_the_caller(agi, settings, monkeypatch):
    """The resident's lookup takes 2 s (a slow database): the route answers within its budget,
    so the dialplan goes on to the queue, and tells the engine the resident is still to be found."""
    from callcenter.ivr.routing import CallerFacts, IvrRuntime

    async def slow_facts(self, caller):
        await asyncio.sleep(2.0)
        return CallerFacts(resident_id=1)

    monkeypatch.setattr(IvrRuntime, "facts", slow_facts)
    settings.route_budget_s = 0.3
    server, seen, port = agi
    started = time.monotonic()
    set_vars, _ = await run_agi_call(
        "127.0.0.1",
        port,
        "incoming",
        args=["carrier", "96345", "hotline", "1700000000.9"],
        env={"agi_callerid": "13919310001"},
    )
    took = time.monotonic() - started
    assert took < 1.5, took
    assert set_vars["CC_ROUTE_OK"] == "1" and set_vars["CC_CALLER"] == "+8613919310001"
    assert "CC_RESIDENT_ID" not in set_vars
    info = seen[-1]
    assert info.linkedid == "1700000000.9" and info.resident_id is None and info.looked_up is False


async def test_12345_headers_are_validated(agi, settings):
    server, seen, port = agi
    hostile = 'GS001" EXEC System rm'
    set_vars, sent = await run_agi_call(
        "127.0.0.1",
        port,
        "incoming",
        args=["12345", "12345", "hotline", "1700000000.6"],
        variables={
            "PJSIP_HEADER(read,X-12345-OrderNo)": hostile,
            "PJSIP_HEADER(read,X-12345-Summary)": "楼道灯坏了 <b>急</b>\x07",
        },
    )
    assert "CC_ORDER12345" not in set_vars and set_vars["CC_ROUTE_OK"] == "1"
    assert seen[-1].order_12345 == "" and seen[-1].summary_12345 == "楼道灯坏了 <b>急</b>"
    set_vars, _ = await run_agi_call(
        "127.0.0.1",
        port,
        "incoming",
        args=["12345", "12345", "hotline", "1700000000.7"],
        variables={"PJSIP_HEADER(read,X-12345-OrderNo)": "GS2026112800123"},
    )
    assert set_vars["CC_ORDER12345"] == "GS2026112800123" and seen[-1].source == "12345"


async def test_unknown_route_and_bad_arguments(agi):
    server, seen, port = agi
    set_vars, _ = await run_agi_call("127.0.0.1", port, "nope")
    assert set_vars == {}
    # A queue name or DID that is not ours is not passed on.
    set_vars, _ = await run_agi_call(
        "127.0.0.1",
        port,
        "incoming",
        args=["evil", "96;345", "Hot Line", "1700000000.8"],
        env={"agi_callerid": "anonymous"},
    )
    assert set(set_vars) == {"CC_ROUTE_OK", "CC_ROUTE_AT"}
    info = seen[-1]
    assert (info.source, info.did, info.queue, info.caller) == ("carrier", "", "", None)


async def test_requests_without_the_key_are_refused(agi, settings):
    """Only Asterisk's dialplan knows the key (?k= in the AGI URL): another local process that
    reaches the port runs no route, with no key, a wrong one or a repeated script header."""
    server, seen, port = agi
    args = ["carrier", "96345", "hotline", "1700000000.9"]
    for key in ("", "not-the-key-" + "x" * 16):
        set_vars, sent = await run_agi_call("127.0.0.1", port, "incoming", args=args, key=key)
        assert set_vars == {} and sent == []
    # The first of a repeated header counts: a second agi_network_script cannot carry the key.
    env = {"agi_network_script": "incoming"}
    set_vars, sent = await run_agi_call("127.0.0.1", port, "incoming", args=args, key="", env=env)
    assert set_vars == {}
    set_vars, _ = await run_agi_call("127.0.0.1", port, "incoming", args=args)  # the settings' key
    assert set_vars["CC_ROUTE_OK"] == "1"


async def test_routes_failing_while_the_database_is_away_are_said_once(agi, caplog):
    """A route that fails because the database cannot be reached (restarting) is one log line for
    the outage and one when it answers again, not a traceback a call."""
    import logging

    from sqlalchemy.exc import OperationalError

    server, _seen, port = agi
    database_up = False

    async def lookup(request) -> None:
        if not database_up:
            raise OperationalError("SELECT", {}, Exception("connection refused"))

    server.add_route("lookup", lookup, thread_safe=True)
    with caplog.at_level(logging.INFO, logger="agi_scripts.server"):
        for _ in range(3):
            await run_agi_call("127.0.0.1", port, "lookup")
        database_up = True
        await run_agi_call("127.0.0.1", port, "lookup")
    said = [r.getMessage() for r in caplog.records if r.name == "agi_scripts.server"]
    assert len(said) == 2, said
    assert "unavailable" in said[0] and "answers again" in said[1]
    assert not any(r.exc_info for r in caplog.records if r.name == "agi_scripts.server")
