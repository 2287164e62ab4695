"""The order domain's bus consumer for administrators' changes: on ``ConfigChanged`` every process
(the engine and each web worker) drops what it cached of that part at once. The configuration
stamps (``dispatch.stamps``) already make the next lookup reload; this spares the stale table
its memory and makes the reload happen before the next order rather than during it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callcenter import topics
from callcenter.bus import EventBus, Subscription
from callcenter.messages import ConfigChanged
from dispatch import holidays, message_templates, policies, routing

log = logging.getLogger(__name__)


class ConfigFollower:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.seen = 0  # messages applied (for tests and the doctor)
        self._sub: Subscription | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._sub = self.bus.subscribe(topics.CONFIG_CHANGED)
        await self._sub.ready.wait()
        self._task = asyncio.create_task(self._run(self._sub), name="config-follower")

    async def _run(self, sub: Subscription) -> None:
        async for _topic, payload in sub:
            msg = ConfigChanged.from_json(payload)
            if msg is None:
                continue
            if msg.part in ("routing", "categories"):
                routing.forget()
            elif msg.part == "calendar":
                holidays.forget()
            elif msg.part == "deadlines":
                policies.forget()
            elif msg.part == "templates":
                message_templates.forget()
            self.seen += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            await self._sub.close()
