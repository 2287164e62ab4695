"""The messaging workers the engine runs: the SMS outbox and the grid/approval webhook outbox."""

from __future__ import annotations

import logging

from callcenter.config import Settings

log = logging.getLogger(__name__)


class MessagingWorkers:
    def __init__(self, settings: Settings, sms: bool = True, webhooks: bool = True) -> None:
        from callcenter.records.service import WebhookWorker
        from sms.service import OutboxWorker

        self.sms = OutboxWorker(settings) if sms else None
        self.webhooks = WebhookWorker(settings) if webhooks else None

    async def start(self) -> None:
        if self.sms is not None:
            await self.sms.start()
        if self.webhooks is not None:
            await self.webhooks.start()

    async def stop(self) -> None:
        if self.sms is not None:
            await self.sms.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
