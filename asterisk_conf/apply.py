"""Applying configuration changes without dropping calls.

A web worker that changed seats, queues or service numbers publishes on ``engine.config``; the
engine re-renders the configuration (on a thread) and asks Asterisk, through AMI, to reload
only the modules that read it. Calls in progress continue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asterisk_conf.ivr_sounds import generate_ivr_prompts
from asterisk_conf.render import render_config
from callcenter import topics
from callcenter.ami import actions
from callcenter.ami.actions import Action, Reply
from callcenter.ami.client import AmiClient, close_manager, open_manager, sender
from callcenter.bus import EventBus, Subscription, TopicWorker
from callcenter.config import Settings
from callcenter.messages import ConfigApplied, ConfigRequest

log = logging.getLogger(__name__)

CONFIG_TOPIC = topics.CONFIG
APPLIED_TOPIC = topics.CONFIG_APPLIED
RELOAD_MODULES = ("res_pjsip.so", "app_queue.so", "pbx_config.so")
SETTLE_S = 0.3  # a burst of edits makes one reload


class ConfigApplier(TopicWorker):
    topic = CONFIG_TOPIC

    def __init__(self, settings: Settings, bus: EventBus, ami: AmiClient) -> None:
        super().__init__(bus)
        self.settings = settings
        self.ami = ami

    async def handle(self, payload: dict[str, Any], sub: Subscription) -> None:
        await asyncio.sleep(SETTLE_S)
        modules = set(_modules(payload))
        while not sub.queue.empty():  # the burst's other requests are served by this one
            _topic, other = sub.queue.get_nowait()
            modules |= set(_modules(other))
        await self.apply(
            reason=ConfigRequest.from_json(payload).reason[:64],
            modules=tuple(m for m in RELOAD_MODULES if m in modules),
        )

    async def apply(self, reason: str = "", modules: tuple[str, ...] = RELOAD_MODULES) -> None:
        took = await apply_config(self.settings, self.ami.action, modules=modules)
        log.info("configuration applied (%s) in %s ms", reason, took)
        if "app_queue.so" in modules:
            try:
                await self.ami.refresh_members()  # new seats show on the wallboard at once
            except Exception:
                log.exception("queue members not refreshed after the reload")
        applied = ConfigApplied(reason=reason, ms=took, at=time.time())
        await self.bus.publish(applied.topic, applied.to_json())


def _render_and_speak(settings: Settings) -> None:
    render_config(settings)
    generate_ivr_prompts(settings)  # menu and hours prompts whose text changed are spoken again


Send = Callable[[Action], Awaitable[Reply]]


async def apply_config(settings: Settings, send: Send, modules: tuple[str, ...] = RELOAD_MODULES) -> float:
    """Render, then reload the modules that read the rendered files; return ms."""
    started = time.perf_counter()
    await asyncio.to_thread(_render_and_speak, settings)
    await reload_modules(send, modules=modules)
    return round((time.perf_counter() - started) * 1000, 1)


async def reload_modules(send: Send, attempts: int = 6, modules: tuple[str, ...] = RELOAD_MODULES) -> None:
    """Reload each module through AMI with ``send(action) -> reply``.

    Asterisk refuses a reload while another is running, so a refused one is tried again.
    """
    for module in modules:
        for attempt in range(1, attempts + 1):
            action = actions.reload(module)
            if action is None:
                raise ValueError(f"not a module: {module!r}")
            reply = await send(action)
            if reply.ok:
                break
            if attempt == attempts:
                raise RuntimeError(f"reload of {module} failed: {reply.raw!r}")
            await asyncio.sleep(0.5)


def _modules(payload: dict[str, Any]) -> tuple[str, ...]:
    """The modules a change needs reloaded (``"modules"`` in the request; all when absent):
    a menu or hours change needs only the dialplan."""
    wanted = ConfigRequest.from_json(payload).modules
    if wanted is None:
        return RELOAD_MODULES
    return tuple(m for m in RELOAD_MODULES if m in wanted) or RELOAD_MODULES


async def reload_running(settings: Settings) -> None:
    """``reload_modules`` over a connection of its own (the command line, tests)."""
    manager = await open_manager(settings)
    try:
        await reload_modules(sender(manager))
    finally:
        close_manager(manager)
