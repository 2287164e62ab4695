"""Applying configuration changes without dropping calls.

A web worker that changed seats, queues or service numbers publishes on ``engine.config``; the
engine re-renders the configuration (on a thread) and asks Asterisk, through AMI, to reload
only the modules that read it. Calls in progress continue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from asterisk_conf.render import render_config
from callcenter.ami.client import AmiClient, close_manager, open_manager
from callcenter.bus import EventBus
from callcenter.config import Settings

log = logging.getLogger(__name__)

CONFIG_TOPIC = "engine.config"
APPLIED_TOPIC = "engine.config.applied"
RELOAD_MODULES = ("res_pjsip.so", "app_queue.so", "pbx_config.so")
SETTLE_S = 0.3  # a burst of edits makes one reload


class ConfigApplier:
    def __init__(self, settings: Settings, bus: EventBus, ami: AmiClient) -> None:
        self.settings = settings
        self.bus = bus
        self.ami = ami
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        sub = self.bus.subscribe(CONFIG_TOPIC)
        await sub.ready.wait()
        self._task = asyncio.create_task(self._run(sub), name="config-applier")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, sub) -> None:
        async for _topic, request in sub:
            await asyncio.sleep(SETTLE_S)
            while not sub.queue.empty():
                sub.queue.get_nowait()
            try:
                await self.apply(reason=str(request.get("reason", ""))[:64])
            except Exception:
                log.exception("applying the configuration failed")

    async def apply(self, reason: str = "") -> None:
        took = await apply_config(self.settings, self.ami.action)
        log.info("configuration applied (%s) in %s ms", reason, took)
        await self.bus.publish(APPLIED_TOPIC, {"reason": reason, "ms": took, "at": time.time()})


async def apply_config(settings: Settings, send) -> float:
    """Render, then reload the modules that read the rendered files; return ms."""
    started = time.perf_counter()
    await asyncio.to_thread(render_config, settings)
    await reload_modules(send)
    return round((time.perf_counter() - started) * 1000, 1)


async def reload_modules(send, attempts: int = 6) -> None:
    """Reload each module through AMI with ``send(action) -> reply``.

    Asterisk refuses a reload while another is running, so a refused one is tried again.
    """
    for module in RELOAD_MODULES:
        for attempt in range(1, attempts + 1):
            reply = await send({"Action": "Reload", "Module": module})
            if getattr(reply, "success", False):
                break
            if attempt == attempts:
                raise RuntimeError(f"reload of {module} failed: {reply!r}")
            await asyncio.sleep(0.5)


async def reload_running(settings: Settings) -> None:
    """``reload_modules`` over a connection of its own (the command line, tests)."""
    manager = await open_manager(settings)
    try:
        await reload_modules(manager.send_action)
    finally:
        close_manager(manager)
