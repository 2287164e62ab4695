"""The event bus: the same behaviour in-process and over a real redis-server."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.bus import InProcessBus, RedisBus, make_bus


async def exercise(publisher, subscriber) -> None:
    seat = subscriber.subscribe("seat.1001")
    everyone = subscriber.subscribe("seat.*")
    await seat.ready.wait()
    await everyone.ready.wait()
    hostile = '<script>"张三"</script>'
    await publisher.publish("seat.1001", {"type": "pop", "caller_name": hostile, "n": 1})
    await publisher.publish("seat.1002", {"type": "pop", "n": 2})
    assert await seat.get(5) == ("seat.1001", {"type": "pop", "caller_name": hostile, "n": 1})
    assert (await everyone.get(5))[1]["n"] == 1
    assert (await everyone.get(5))[1]["n"] == 2
    with pytest.raises(asyncio.TimeoutError):
        await seat.get(0.3)  # seat 1001 never sees seat 1002's pop
    # Several patterns matching one topic: the message arrives once.
    both = subscriber.subscribe("seat.*", "seat.1001", "wallboard")
    await both.ready.wait()
    await publisher.publish("seat.1001", {"n": 4})
    assert await both.get(5) == ("seat.1001", {"n": 4})
    with pytest.raises(asyncio.TimeoutError):
        await both.get(0.3)
    await both.close()
    await seat.close()
    await publisher.publish("seat.1001", {"n": 3})
    assert (await everyone.get(5))[1]["n"] == 4
    assert (await everyone.get(5))[1]["n"] == 3


async def test_in_process_bus():
    bus = InProcessBus()
    await exercise(bus, bus)


async def test_redis_bus_across_two_workers(redis_url):
    engine, web = make_bus(redis_url), make_bus(redis_url)
    assert isinstance(engine, RedisBus)
    await engine.start()
    await web.start()
    try:
        await exercise(engine, web)
    finally:
        await engine.close()
        await web.close()


async def test_slow_subscriber_loses_old_events_not_memory():
    bus = InProcessBus()
    sub = bus.subscribe("calls")
    for i in range(1500):
        await bus.publish("calls", {"i": i})
    assert sub.queue.qsize() == 1000
    assert (await sub.get(1))[1]["i"] == 500


async def test_redis_without_the_password_is_refused(redis_url):
    """The bus's Redis wants a password (requirepass): without it nothing can be published."""
    import redis.asyncio as aioredis
    from redis.exceptions import AuthenticationError, ResponseError

    assert "@" in redis_url  # the URL carries the credentials
    anonymous = aioredis.from_url("redis://" + redis_url.split("@", 1)[1])
    with pytest.raises((AuthenticationError, ResponseError), match="(?i)auth"):
        await anonymous.publish("engine.callcontrol", "{}")
    await anonymous.aclose()
    authenticated = aioredis.from_url(redis_url)
    assert await authenticated.ping()
    await authenticated.aclose()
