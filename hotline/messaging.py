"""The messaging workers the engine runs: the SMS, e-mail and grid/approval webhook outboxes."""

from __future__ import annotations

import logging

from callcenter.config import Settings
from callcenter.mail import MailWorker
from callcenter.records.service import WebhookWorker
from dispatch.summaries import enqueue_daily_summaries
from sms.service import OutboxWorker

log = logging.getLogger(__name__)


class MessagingWorkers:
    def __init__(
        self, settings: Settings, sms: bool = True, webhooks: bool = True, mail: bool = True
    ) -> None:
        self.sms = OutboxWorker(settings) if sms else None
        self.webhooks = WebhookWorker(settings) if webhooks else None
        self.mail = MailWorker(settings, summaries=enqueue_daily_summaries) if mail else None

    def _workers(self) -> list:
        return [w for w in (self.sms, self.webhooks, self.mail) if w is not None]

    async def start(self) -> None:
        for worker in self._workers():
            await worker.start()

    async def stop(self) -> None:
        for worker in self._workers():
            await worker.stop()
