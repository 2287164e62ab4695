"""The event bus: one interface, two back ends.

In-process (the default) for one process; Redis pub/sub when ``redis_url`` is set, so several
web workers can serve consoles from one engine. Topics are dotted strings (``seat.1001``,
``calls``, ``queues``); payloads are JSON-able dicts. Subscribers match a topic exactly or by a
trailing ``*`` (``seat.*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson

log = logging.getLogger(__name__)

Message = tuple[str, dict[str, Any]]


class EventBus(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...
    def subscribe(self, *patterns: str) -> Subscription: ...


def bus_unavailable(exc: BaseException) -> bool:
    """Redis (the bus, the web workers' shared sessions) cannot be reached: down or restarting,
    as opposed to a bug. The caller says so once and answers 503, or keeps what it must send."""
    if not type(exc).__module__.startswith("redis"):
        return False
    # redis is loaded only with a Redis bus (an exception from it means it is)
    from redis.exceptions import ConnectionError as RedisConnectionError  # only with a Redis bus
    from redis.exceptions import TimeoutError as RedisTimeoutError  # only with a Redis bus

    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


class OutageLog:
    """Says once that a part stopped answering and once that it is back, instead of a traceback
    per attempt (a Redis restart would otherwise log one every half second per process)."""

    def __init__(self, what: str, logger: logging.Logger = log) -> None:
        self.what = what
        self.log = logger
        self.down_since: float | None = None

    def down(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.log.error(
                "%s unavailable: %s", self.what, str(exc).splitlines()[0][:200] if str(exc) else repr(exc)
            )

    def up(self) -> None:
        if self.down_since is not None:
            self.log.warning("%s answers again after %.1f s", self.what, time.monotonic() - self.down_since)
            self.down_since = None


def _matches(pattern: str, topic: str) -> bool:
    if pattern.endswith("*"):
        return topic.startswith(pattern[:-1])
    return pattern == topic


class _Routes:
    """The local subscribers by pattern: a message finds its subscribers by its topic and the few
    wildcard patterns, not by testing every subscription (a web worker holds one per open page,
    and the engine publishes many messages a call)."""

    def __init__(self) -> None:
        self.subs: list[Subscription] = []
        self._exact: dict[str, list[Subscription]] = {}
        self._prefixes: dict[str, list[Subscription]] = {}  # "console.*" -> under "console."
        self._multi = 0  # subscriptions of several patterns (a message must reach them once)

    def add(self, sub: Subscription) -> None:
        self.subs.append(sub)
        for p in dict.fromkeys(sub.patterns):
            table, key = (self._prefixes, p[:-1]) if p.endswith("*") else (self._exact, p)
            table.setdefault(key, []).append(sub)
        self._multi += len(sub.patterns) > 1

    def remove(self, sub: Subscription) -> bool:
        if sub not in self.subs:
            return False
        self.subs.remove(sub)
        for p in dict.fromkeys(sub.patterns):
            table, key = (self._prefixes, p[:-1]) if p.endswith("*") else (self._exact, p)
            subs = table.get(key, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                table.pop(key, None)
        self._multi -= len(sub.patterns) > 1
        return True

    def clear(self) -> None:
        self.subs.clear()
        self._exact.clear()
        self._prefixes.clear()
        self._multi = 0

    def matching(self, topic: str) -> list[Subscription]:
        found = list(self._exact.get(topic, ()))
        for prefix, subs in self._prefixes.items():
            if topic.startswith(prefix):
                found.extend(subs)
        return list(dict.fromkeys(found)) if self._multi else found

    def via(self, pattern: str) -> list[Subscription]:
        """Those subscribed with ``pattern`` itself."""
        if pattern.endswith("*"):
            return list(self._prefixes.get(pattern[:-1], ()))
        return list(self._exact.get(pattern, ()))


class Subscription:
    """An async iterator of (topic, payload); close it (or use ``async with``) when done."""

    def __init__(self, patterns: tuple[str, ...], on_close) -> None:
        self.patterns = patterns
        # Bounded: a stuck console must not grow the engine's memory; it loses old events instead.
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1000)
        self._on_close = on_close
        self.ready = asyncio.Event()

    def deliver(self, topic: str, payload: dict[str, Any]) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait((topic, payload))

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        return await self.queue.get()

    async def get(self, timeout: float | None = None) -> Message:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def close(self) -> None:
        await self._on_close(self)

    async def __aenter__(self) -> Subscription:
        await self.ready.wait()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class InProcessBus:
    def __init__(self) -> None:
        self._routes = _Routes()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._routes.clear()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        for sub in self._routes.matching(topic):
            sub.deliver(topic, payload)

    def subscribe(self, *patterns: str) -> Subscription:
        sub = Subscription(patterns, self._unsubscribe)
        self._routes.add(sub)
        sub.ready.set()
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        self._routes.remove(sub)


# Payloads are JSON by nature (messages' ``to_json()``): a datetime or dataclass in one is a bug,
# refused here (the WebSocket's encoder writes it as text). orjson: a pop with its profile is
# encoded and decoded on every hop.
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class RedisBus:
    """Redis pub/sub. One connection reads for all local subscribers of this process."""

    def __init__(self, url: str, prefix: str = "callcenter:") -> None:
        import redis.asyncio as aioredis  # loaded only when the bus is Redis (several processes)

        self._redis = aioredis.from_url(url)
        self._prefix = prefix
        self._pubsub = self._redis.pubsub()
        self._routes = _Routes()
        self._reader: asyncio.Task | None = None
        self._channels: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._redis.ping()
        # Keep the pubsub connection subscribed to something so the reader has a socket.
        await self._pubsub.subscribe(self._prefix + "_control")
        self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self._redis.aclose()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self._redis.publish(self._prefix + topic, orjson.dumps(payload, option=JSON_OPTIONS))

    def subscribe(self, *patterns: str) -> Subscription:
        sub = Subscription(patterns, self._unsubscribe)
        self._routes.add(sub)
        asyncio.get_running_loop().create_task(self._add(sub))
        return sub

    def _redis_name(self, pattern: str) -> str:
        return self._prefix + pattern

    async def _add(self, sub: Subscription) -> None:
        async with self._lock:
            for p in sub.patterns:
                self._channels[p] = self._channels.get(p, 0) + 1
                if self._channels[p] == 1:
                    if p.endswith("*"):
                        await self._pubsub.psubscribe(self._redis_name(p))
                    else:
                        await self._pubsub.subscribe(self._redis_name(p))
        sub.ready.set()

    async def _unsubscribe(self, sub: Subscription) -> None:
        if not self._routes.remove(sub):
            return
        async with self._lock:
            for p in sub.patterns:
                self._channels[p] -= 1
                if self._channels[p] == 0:
                    del self._channels[p]
                    try:
                        if p.endswith("*"):
                            await self._pubsub.punsubscribe(self._redis_name(p))
                        else:
                            await self._pubsub.unsubscribe(self._redis_name(p))
                    except Exception as exc:
                        # Redis is down: nobody here reads the channel any more; whatever it
                        # still sends once back is dropped (no local subscriber matches).
                        if not bus_unavailable(exc):
                            raise

    async def _read(self) -> None:
        outage = OutageLog("redis bus (reading)")
        while True:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if bus_unavailable(exc):
                    outage.down(exc)  # redis-py subscribes again by itself once it is back
                else:
                    log.exception("redis bus read failed; retrying")
                await asyncio.sleep(0.5)
                continue
            outage.up()
            if not msg or msg.get("type") not in ("message", "pmessage"):
                continue
            channel = msg["channel"].decode() if isinstance(msg["channel"], bytes) else msg["channel"]
            topic = channel.removeprefix(self._prefix)
            try:
                payload = orjson.loads(msg["data"])
            except (TypeError, ValueError):
                log.warning("dropping a malformed bus message on %s", topic)
                continue
            # Redis sends a message once per matching subscription (exact and pattern): hand it
            # to each local subscriber once, through the first of its patterns that matches.
            pattern = msg.get("pattern")
            via = (pattern.decode() if isinstance(pattern, bytes) else pattern) if pattern else channel
            via = via.removeprefix(self._prefix)
            for sub in self._routes.via(via):
                first = next((p for p in sub.patterns if _matches(p, topic)), None)
                if first == via:
                    sub.deliver(topic, payload)


class TopicWorker:
    """Handles each message of one topic, in a task of its own (the engine's command handlers)."""

    topic = ""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        sub = self.bus.subscribe(self.topic)
        await sub.ready.wait()
        self._task = asyncio.create_task(self._run(sub), name=f"worker-{self.topic}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, sub: Subscription) -> None:
        async for _topic, payload in sub:
            try:
                await self.handle(payload, sub)
            except Exception:
                log.exception("%s: handling %r failed", self.topic, payload)

    async def handle(self, payload: dict[str, Any], sub: Subscription) -> None:
        raise NotImplementedError


def make_bus(redis_url: str = "") -> EventBus:
    return RedisBus(redis_url) if redis_url else InProcessBus()
