"""The telephony engine: AMI client, FastAGI server and call service on one event loop.

Web workers may run in other processes; they only need the event bus (Redis when several).
"""

from __future__ import annotations

import logging

from agi_scripts.routes import register_routes
from agi_scripts.server import FastAgiServer
from asterisk_conf.apply import ConfigApplier
from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus
from callcenter.callcontrol.flows import CallControlServices  # telephony B
from callcenter.calls.service import CallService
from callcenter.config import Settings
from callcenter.ivr.routing import IvrRuntime
from callcenter.seats.service import SeatCommands
from callcenter.statistics.daily import DailyMailer
from callcenter.statistics.follower import StatsFollower
from callcenter.statistics.orders import OrderRollupTask
from callcenter.statistics.presence import QueueLogWriter

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings, bus: EventBus, agi: bool = True) -> None:
        self.settings = settings
        self.bus = bus
        self.ami = AmiClient(settings)
        self.calls = CallService(settings, bus, events=self.ami.events)
        self.seats = SeatCommands(settings, bus, self.ami)
        self.config = ConfigApplier(settings, bus, self.ami)
        # --- messaging: the SMS and grid/approval webhook outboxes ---
        from callcenter.messaging import MessagingWorkers

        self.messaging = MessagingWorkers(settings)
        # Asterisk's queue_log, followed into the statistics; each batch refreshes the wallboard.
        self.stats = StatsFollower(settings, on_batch=self.calls.refresh_today)
        self.daily_mail = DailyMailer(settings)
        # Static queue members' login / logout lines, written into queue_log through AMI.
        self.queue_log = QueueLogWriter(settings, bus, self.ami)
        self.order_stats = OrderRollupTask(settings)
        self.callcontrol = CallControlServices(settings, bus, self.ami, self.calls)  # telephony B
        self.ivr = IvrRuntime(settings, bus)  # --- telephony A: hours, caller facts, out-of-hours items
        self.agi: FastAgiServer | None = None
        self._agi_enabled = agi

    async def start(self) -> None:
        await self.calls.start()
        await self.seats.start()
        await self.config.start()
        await self.messaging.start()
        await self.stats.start()
        await self.queue_log.start()
        await self.daily_mail.start()
        await self.order_stats.start()
        await self.callcontrol.start()  # telephony B
        await self.ivr.start()
        if self._agi_enabled:
            await self.start_agi()
        await self.ami.start()

    async def start_agi(self) -> None:
        self.agi = FastAgiServer(read_timeout=self.settings.agi_read_timeout)
        register_routes(self.agi, self)
        await self.agi.start(self.settings.agi_host, self.settings.agi_port)
        log.info("FastAGI listening on %s:%d", self.settings.agi_host, self.settings.agi_port)

    async def stop_agi(self) -> None:
        if self.agi is not None:
            await self.agi.stop()
            self.agi = None

    async def stop(self) -> None:
        await self.messaging.stop()
        await self.seats.stop()
        await self.config.stop()
        await self.callcontrol.stop()  # telephony B
        await self.ami.stop()
        await self.stop_agi()
        await self.stats.stop()
        await self.queue_log.stop()
        await self.daily_mail.stop()
        await self.order_stats.stop()
        await self.ivr.stop()
        await self.calls.stop()
