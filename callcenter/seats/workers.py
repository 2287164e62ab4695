"""Seat commands from the consoles, carried out on Asterisk by the engine.

A web worker publishes ``{"action": "pause"|"unpause", "ext": ..., "reason": ...}`` on the bus
topic ``engine.seat``; the engine (which holds the AMI connection) checks it and sends the AMI
action. The result shows through Asterisk's own QueueMemberStatus event, so every console and
wallboard sees the same state Asterisk has.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from callcenter import ids, topics
from callcenter.ami import actions
from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus, Subscription, TopicWorker
from callcenter.config import Settings
from callcenter.messages import SeatCommand

log = logging.getLogger(__name__)

COMMAND_TOPIC = topics.SEAT_COMMAND


def check_command(settings: Settings, command: SeatCommand) -> str | None:
    """Why a command may not be carried out, or None. Only listed reasons reach AMI headers."""
    if command.action not in ("pause", "unpause"):
        return "unknown action"
    if not ids.EXTENSION.fullmatch(command.ext):
        return "bad extension"
    if command.action == "pause" and command.reason not in settings.pause_reasons:
        return "unknown pause reason"
    return None


class SeatCommands(TopicWorker):
    topic = COMMAND_TOPIC

    def __init__(self, settings: Settings, bus: EventBus, ami: AmiClient) -> None:
        super().__init__(bus)
        self.settings = settings
        self.ami = ami

    async def handle(self, payload: dict[str, Any], sub: Subscription) -> None:
        command = SeatCommand.from_json(payload)
        problem = check_command(self.settings, command)
        if problem:
            log.warning("seat command refused (%s): %r", problem, payload)
            return
        # Off the subscription loop: an AMI round trip must not hold up the next command.
        asyncio.create_task(self._pause(command))

    async def _pause(self, command: SeatCommand) -> None:
        paused = command.action == "pause"
        action = actions.queue_pause(command.ext, paused, command.reason if paused else "")
        if action is None:
            log.warning("seat command refused (bad value): %r", command)
            return
        try:
            reply = await self.ami.action(action)
            if not reply.ok:
                log.warning("QueuePause for %s failed: %r", command.ext, reply.raw)
        except Exception:
            log.exception("QueuePause for %s failed", command.ext)
