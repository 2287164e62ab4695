"""The engine's daily part of the knowledge base: published articles past their last valid day
leave search (checked at start and every hour, in China's date)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callcenter.clock import china_now
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.knowledge import service

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 3600.0


def sweep(settings: Settings) -> list[int]:
    """Expire what is due today; the ids expired. Blocking (database)."""
    with session_scope(settings) as s:
        expired = service.expire_due(s, china_now(settings).date())
        s.commit()
    if expired:
        log.info("knowledge base: %d articles expired", len(expired))
    return expired


class ExpirySweep:
    def __init__(self, settings: Settings, interval: float = SWEEP_INTERVAL_S) -> None:
        self.settings = settings
        self.interval = interval
        self._task: asyncio.Task | None = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(sweep, self.settings)
            except Exception:
                log.exception("knowledge-base expiry sweep failed")
            await asyncio.sleep(max(1.0, self.interval))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="kb-expiry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
