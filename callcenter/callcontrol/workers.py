"""The engine's call-control workers, started and stopped together: console commands,
callbacks and follow-up calls."""

from __future__ import annotations

from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus
from callcenter.callcontrol.callbacks import CallbackWorker, DailyCalls, FollowUpWorker
from callcenter.callcontrol.service import CallControl, Directory
from callcenter.calls.workers import CallService
from callcenter.config import Settings


class CallControlServices:
    def __init__(self, settings: Settings, bus: EventBus, ami: AmiClient, calls: CallService) -> None:
        self.directory = Directory(settings)
        self.commands = CallControl(settings, bus, ami, calls.model, self.directory)
        # Callbacks and follow-ups share one count of today's automatic calls per number.
        self.daily = DailyCalls(settings)
        self.callbacks = CallbackWorker(settings, bus, ami, calls.model, self.directory, self.daily)
        self.followups = FollowUpWorker(settings, bus, ami, self.directory, self.daily)
        self._workers: list[CallControl | CallbackWorker | FollowUpWorker] = [
            self.commands,
            self.callbacks,
            self.followups,
        ]

    async def start(self) -> None:
        for w in self._workers:
            await w.start()

    async def stop(self) -> None:
        for w in reversed(self._workers):
            await w.stop()
