"""The console WebSocket against the app served by uvicorn: authentication, the seat's own
topic only, console.hello, and cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from sqlmodel import select
from websockets.exceptions import ConnectionClosed

from callcenter.accounts.models import Account
from callcenter.database import session_scope


async def _closed_with(ws) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), 5)
    rcvd = info.value.rcvd
    assert rcvd is not None
    return rcvd.code, rcvd.reason


async def _recv_json(ws, timeout: float = 3) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _ready(ws, ext: str) -> None:
    assert await _recv_json(ws) == {"topic": "console.ready", "ext": ext}


def _seat_patterns(bus) -> list[tuple[str, ...]]:
    return [s.patterns for s in bus._routes.subs if any(p.startswith("seat") for p in s.patterns)]


async def _wait_for(predicate, timeout: float = 3.0) -> bool:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def test_no_session_is_closed_4401(live):
    async with live.connect() as ws:
        code, reason = await _closed_with(ws)
    assert code == 4401
    assert reason == "not logged in"


async def test_forged_cookie_is_closed_4401(live):
    async with live.connect(cookie="cc_session=eyJ1aWQiOiAxfQ==.forged.sig") as ws:
        assert (await _closed_with(ws))[0] == 4401


async def test_outlet_role_is_closed_4403(live):
    http = await live.login("outlet")
    async with live.connect(live.cookie_header(http)) as ws:
        assert await _closed_with(ws) == (4403, "role may not use the console")
    await http.aclose()


async def test_account_without_extension_is_closed_4404(live):
    http = await live.login("super")
    async with live.connect(live.cookie_header(http)) as ws:
        assert (await _closed_with(ws))[0] == 4404
    await http.aclose()


async def test_cross_origin_socket_is_refused(live):
    http = await live.login("seat1001")
    async with live.connect(live.cookie_header(http), origin="http://evil.example") as ws:
        assert (await _closed_with(ws))[0] == 4403
    await http.aclose()


async def test_seat_gets_its_own_topic_only_and_hello_is_published(live):
    bus = live.bus
    hello = bus.subscribe("console.hello")
    h1, h2 = await live.login("seat1001"), await live.login("seat1002")
    async with live.connect(live.cookie_header(h1)) as ws1, live.connect(live.cookie_header(h2)) as ws2:
        got = {tuple(sorted((await hello.get(3))[1].items())) for _ in range(2)}
        assert got == {(("ext", "1001"),), (("ext", "1002"),)}
        await _ready(ws1, "1001")
        await _ready(ws2, "1002")

        await bus.publish("seat.1002", live_pop := {"type": "pop", "linkedid": "A", "state": "ringing"})
        await bus.publish("seat.1001", {"type": "pop", "linkedid": "B", "state": "ringing"})
        await bus.publish("seat.10011", {"type": "pop", "linkedid": "C", "state": "ringing"})
        await bus.publish("console.hello", {"ext": "9999"})
        await bus.publish("seat.1001", {"type": "clear", "linkedid": "B", "reason": "hangup"})

        # Bus order is kept: had seat.1002 (or anything else) been forwarded, it would come first.
        first = await _recv_json(ws1)
        assert first == {"topic": "seat.1001", "type": "pop", "linkedid": "B", "state": "ringing"}
        second = await _recv_json(ws1)
        assert second == {"topic": "seat.1001", "type": "clear", "linkedid": "B", "reason": "hangup"}
        assert await _recv_json(ws2) == {"topic": "seat.1002", **live_pop}
        with pytest.raises(TimeoutError):
            await _recv_json(ws1, timeout=0.3)
    await hello.close()
    await h1.aclose()
    await h2.aclose()


async def test_client_cannot_choose_another_topic(live):
    bus = live.bus
    hello = bus.subscribe("console.hello")
    http = await live.login("seat1001")
    async with live.connect(live.cookie_header(http), path="?topic=seat.1002&ext=1002") as ws:
        await hello.get(3)
        await _ready(ws, "1001")
        for attempt in (
            json.dumps({"subscribe": "seat.1002"}),
            json.dumps({"topic": "seat.*", "ext": "1002"}),
            "subscribe seat.*",
        ):
            await ws.send(attempt)
        await ws.send("ping")
        assert await _recv_json(ws) == {"topic": "console.pong"}
        assert _seat_patterns(bus) == [("seat.1001",)]
        await bus.publish("seat.1002", {"type": "pop", "linkedid": "X"})
        await bus.publish("seat.1001", {"type": "pop", "linkedid": "Y"})
        assert (await _recv_json(ws))["linkedid"] == "Y"
    await hello.close()
    await http.aclose()


async def test_payload_cannot_fake_the_topic(live):
    http = await live.login("seat1001")
    async with live.connect(live.cookie_header(http)) as ws:
        await _ready(ws, "1001")
        await live.bus.publish("seat.1001", {"type": "pop", "topic": "seat.1002", "caller_name": "é 中"})
        msg = await _recv_json(ws)
        assert msg["topic"] == "seat.1001" and msg["caller_name"] == "é 中"
    await http.aclose()


async def test_disconnect_closes_the_subscription(live):
    hello = live.bus.subscribe("console.hello")
    http = await live.login("seat1001")
    async with live.connect(live.cookie_header(http)):
        await hello.get(3)
        assert _seat_patterns(live.bus) == [("seat.1001",)]
    assert await _wait_for(lambda: _seat_patterns(live.bus) == [])
    await hello.close()
    await http.aclose()


async def test_logout_or_disabling_ends_an_open_socket(live):
    live.app.state.ws_recheck_interval = 0.1
    hello = live.bus.subscribe("console.hello")

    # Logout (in another tab) ends the socket of that session.
    http = await live.login("seat1001")
    async with live.connect(live.cookie_header(http)) as ws:
        await hello.get(3)
        await _ready(ws, "1001")
        page = await http.get("/console")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = await http.post("/logout", data={"csrf": token})
        assert r.status_code == 303
        assert (await _closed_with(ws))[0] == 4401
    await http.aclose()

    # Disabling the account does too.
    http = await live.login("seat1002")
    async with live.connect(live.cookie_header(http)) as ws:
        await hello.get(3)
        await _ready(ws, "1002")
        with session_scope(live.settings) as s:
            acc = s.exec(select(Account).where(Account.username == "seat1002")).one()
            acc.active = False
            s.add(acc)
            s.commit()
        assert (await _closed_with(ws))[0] == 4401
    assert await _wait_for(lambda: _seat_patterns(live.bus) == [])
    await hello.close()
    await http.aclose()


async def test_extension_change_closes_4409(live):
    live.app.state.ws_recheck_interval = 0.1
    http = await live.login("seat1001")
    async with live.connect(live.cookie_header(http)) as ws:
        await _ready(ws, "1001")
        with session_scope(live.settings) as s:
            acc = s.exec(select(Account).where(Account.username == "seat1001")).one()
            acc.extension = "1005"
            s.add(acc)
            s.commit()
        assert (await _closed_with(ws))[0] == 4409
    await http.aclose()


async def test_an_open_socket_outlives_a_redis_outage_and_logout_still_ends_it(live, monkeypatch):
    """While Redis (the shared logouts) cannot be read, the periodic session check waits for the
    next interval instead of closing every seat's console; once it answers, a logout ends the
    socket as before. (The outage is played here; tests/e2e/test_scale_out.py stops a real Redis.)"""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from web_console import sockets

    live.app.state.ws_recheck_interval = 0.05
    real = sockets.resolve_accounts
    outage = {"left": 0, "refused": 0}

    def resolve(state, sessions):
        if outage["left"] > 0:
            outage["left"] -= 1
            outage["refused"] += 1
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return real(state, sessions)

    monkeypatch.setattr(sockets, "resolve_accounts", resolve)
    http = await live.login("seat1001")
    async with live.connect(live.cookie_header(http)) as ws:
        await _ready(ws, "1001")
        outage["left"] = 10  # ten checks in a row fail
        assert await _wait_for(lambda: outage["left"] == 0)
        await live.bus.publish("seat.1001", {"type": "clear", "linkedid": "1.1"})
        assert (await _recv_json(ws))["linkedid"] == "1.1"  # still open and serving
        page = await http.get("/console")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        assert (await http.post("/logout", data={"csrf": token})).status_code == 303
        assert (await _closed_with(ws))[0] == 4401
    assert outage["refused"] == 10
    await http.aclose()


async def test_every_open_socket_is_rechecked_in_one_read(live, monkeypatch):
    """Three consoles open (seat 1001 in two browsers, seat 1002): each round reads their sessions
    together, and a logout still ends only its own socket."""
    from web_console import sockets

    live.app.state.ws_recheck_interval = 0.1
    real = sockets.resolve_accounts
    rounds: list[int] = []

    def resolve(state, sessions):
        rounds.append(len(sessions))
        return real(state, sessions)

    monkeypatch.setattr(sockets, "resolve_accounts", resolve)
    users = ("seat1001", "seat1002", "seat1001")
    https = [await live.login(u) for u in users]
    async with contextlib.AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(live.connect(live.cookie_header(h))) for h in https]
        for user, ws in zip(users, opened, strict=True):
            await _ready(ws, user.removeprefix("seat"))
        assert await _wait_for(lambda: rounds.count(3) >= 2)
        page = await https[1].get("/console")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        assert (await https[1].post("/logout", data={"csrf": token})).status_code == 303
        assert (await _closed_with(opened[1]))[0] == 4401
        await live.bus.publish("seat.1001", {"type": "clear", "linkedid": "1.3"})
        for ws in (opened[0], opened[2]):  # the others stay open
            assert (await _recv_json(ws))["linkedid"] == "1.3"
        mark = len(rounds)
        assert await _wait_for(lambda: len(rounds) > mark + 1)
        assert set(rounds[mark + 1 :]) == {2}
    for h in https:
        await h.aclose()
