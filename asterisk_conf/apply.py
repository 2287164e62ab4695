"""Applying configuration changes without dropping calls.

A web worker that changed seats, queues or service numbers publishes on ``engine.config``; the
engine re-renders the configuration (on a thread) and asks Asterisk, over its control socket,
to reload only the modules that read it. Calls in progress continue.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any

from asterisk_conf.ivr_sounds import generate_ivr_prompts
from asterisk_conf.render import render_config
from callcenter import topics
from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus, Subscription, TopicWorker
from callcenter.config import Settings
from callcenter.messages import ConfigApplied, ConfigRequest

log = logging.getLogger(__name__)

CONFIG_TOPIC = topics.CONFIG
APPLIED_TOPIC = topics.CONFIG_APPLIED
# The dialplan before the queues: a queue member's state interface is a hint of the dialplan
# (hint:<ext>@cc-ring-seat), and a member made before its hint exists never follows its state.
RELOAD_MODULES = ("res_pjsip.so", "pbx_config.so", "app_queue.so")
SETTLE_S = 0.3  # a burst of edits makes one reload
_MODULE = re.compile(r"[a-z0-9_]{1,40}\.so")


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
        took = await apply_config(self.settings, modules=modules)
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


async def apply_config(settings: Settings, modules: tuple[str, ...] = RELOAD_MODULES) -> float:
    """Render, then reload the modules that read the rendered files; return ms."""
    started = time.perf_counter()
    await asyncio.to_thread(_render_and_speak, settings)
    await reload_modules(settings, modules=modules)
    return round((time.perf_counter() - started) * 1000, 1)


def control_socket(settings: Settings) -> Path:
    """Asterisk's control socket (astctl in asterisk.conf), the same file inside the chroot."""
    return settings.asterisk_instance_dir() / "run" / "asterisk.ctl"


async def console_command(settings: Settings, command: str, timeout: float = 30.0) -> str:
    """Run one CLI command over Asterisk's control socket, as ``asterisk -rx`` does, and return
    its output. Reloads go this way rather than through AMI, so no AMI user needs the ``config``
    or ``system`` class (UpdateConfig, then Reload, is a shell for whoever holds the secret)."""
    if "\0" in command or "\n" in command:
        raise ValueError("one command, no NUL or newline")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_unix_connection(str(control_socket(settings)))
        try:
            await reader.readline()  # "host/pid/version"
            writer.write(f"cli quit after {command}\0".encode())
            await writer.drain()
            return (await reader.read()).decode(errors="replace")
        finally:
            writer.close()


async def reload_modules(
    settings: Settings, attempts: int = 6, modules: tuple[str, ...] = RELOAD_MODULES
) -> None:
    """Reload each module over the control socket.

    Asterisk refuses a reload while another is running, so a refused one is tried again.
    """
    for module in modules:
        if not _MODULE.fullmatch(module):
            raise ValueError(f"not a module: {module!r}")
        for attempt in range(1, attempts + 1):
            out = await console_command(settings, f"module reload {module}")
            if "reloaded successfully" in out or "request queued" in out.lower():
                break
            if attempt == attempts:
                raise RuntimeError(f"reload of {module} failed: {out.strip()[:300]!r}")
            await asyncio.sleep(0.5)


def _modules(payload: dict[str, Any]) -> tuple[str, ...]:
    """The modules a change needs reloaded (``"modules"`` in the request; all when absent):
    a menu or hours change needs only the dialplan."""
    wanted = ConfigRequest.from_json(payload).modules
    if wanted is None:
        return RELOAD_MODULES
    return tuple(m for m in RELOAD_MODULES if m in wanted) or RELOAD_MODULES


async def reload_running(settings: Settings) -> None:
    """Reload every module that reads the rendered files (the command line, tests)."""
    await reload_modules(settings)
