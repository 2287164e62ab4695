"""The telephony engine: AMI client, FastAGI server, call service and the workers around them,
on one event loop, started in order and stopped in reverse.

Web workers may run in other processes; they only need the event bus (Redis when several).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from agi_scripts.routes import register_routes
from agi_scripts.server import FastAgiServer
from asterisk_conf.apply import ConfigApplier
from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus
from callcenter.callcontrol.callbacks import missed_callback_report
from callcenter.callcontrol.workers import CallControlServices
from callcenter.calls.workers import CallService
from callcenter.config import Settings
from callcenter.ivr.routing import IvrRuntime
from callcenter.ivr.service import read_menu
from callcenter.ivr.voicemail import VoicemailPurge
from callcenter.knowledge.workers import ExpirySweep
from callcenter.seats.workers import SeatCommands
from callcenter.statistics.daily import DailyMailer
from callcenter.statistics.follower import StatsFollower, settled_call_records
from callcenter.statistics.orders import OrderRollupTask
from callcenter.statistics.presence import QueueLogWriter, StaticPresence
from callcenter.statistics.today import DayStats
from dispatch.categories import seed_if_empty
from dispatch.followups import FollowUpResults
from dispatch.profile import pop_extras
from dispatch.scheduler import DeadlineScheduler
from dispatch.workers import ConfigFollower
from hotline.messaging import MessagingWorkers

log = logging.getLogger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Engine:
    def __init__(self, settings: Settings, bus: EventBus, agi: bool = True) -> None:
        self.settings = settings
        self.bus = bus
        self.ami = AmiClient(settings)
        self.calls = CallService(
            settings,
            bus,
            events=self.ami.events,
            profile_extras=pop_extras,
            read_menu=read_menu,
            read_today=DayStats.load,
            presence=StaticPresence(settings.stats_source),
            settled=settled_call_records,
        )
        self.seats = SeatCommands(settings, bus, self.ami)
        self.config = ConfigApplier(settings, bus, self.ami)
        # The SMS, e-mail and grid/approval webhook outboxes.
        self.messaging = MessagingWorkers(settings)
        # Asterisk's queue_log, followed into the statistics; each batch refreshes the wallboard.
        self.stats = StatsFollower(
            settings,
            on_batch=self.calls.refresh_today,
            on_settled=self.calls.announce_records,
            seen=self.ami.saw_end,
        )
        self.daily_mail = DailyMailer(settings, missed_callback_report)
        # Static queue members' login / logout lines, written into queue_log through AMI.
        self.queue_log = QueueLogWriter(settings, bus, self.ami)
        self.order_stats = OrderRollupTask(settings)
        self.callcontrol = CallControlServices(settings, bus, self.ami, self.calls)
        self.ivr = IvrRuntime(settings, bus)  # hours, caller facts, out-of-hours items
        self.voicemail_purge = VoicemailPurge(settings)  # voicemail retention
        # Order deadlines (催办 / 督办) and follow-up ratings: once per deployment, here.
        self.deadlines = DeadlineScheduler(settings, bus)
        self.followups = FollowUpResults(settings, bus)
        # Administrators' changes: cached tables dropped at once, operational settings applied.
        self.config_follower = ConfigFollower(bus, settings)
        self.kb_expiry = ExpirySweep(settings)  # knowledge-base articles past their last day
        self.agi: FastAgiServer | None = None
        self._agi_enabled = agi
        # Started in this order, stopped in reverse; the AMI login comes last, when every
        # consumer of its events is listening.
        self._components: list[Component] = [
            self.calls,
            self.seats,
            self.config,
            self.messaging,
            self.stats,
            self.queue_log,
            self.daily_mail,
            self.order_stats,
            self.callcontrol,
            self.ivr,
            self.voicemail_purge,
            self.deadlines,
            self.followups,
            self.config_follower,
            self.kb_expiry,
        ]
        self._started: list[Component] = []

    async def start(self) -> None:
        await asyncio.to_thread(seed_if_empty, self.settings)  # a new installation's category tree
        for component in self._components:
            await component.start()
            self._started.append(component)
        if self._agi_enabled:
            await self.start_agi()
        await self.ami.start()

    async def start_agi(self) -> None:
        self.agi = FastAgiServer(read_timeout=self.settings.agi_read_timeout, secret=self.settings.agi_secret)
        register_routes(self.agi, self)
        await self.agi.start(self.settings.agi_host, self.settings.agi_port)
        log.info("FastAGI listening on %s:%d", self.settings.agi_host, self.settings.agi_port)

    async def stop_agi(self) -> None:
        if self.agi is not None:
            await self.agi.stop()
            self.agi = None

    async def stop(self) -> None:
        await self.ami.stop()
        await self.stop_agi()
        while self._started:
            await self._started.pop().stop()
