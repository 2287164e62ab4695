"""Static queue members' login and logout, written into queue_log by the engine.

Asterisk writes ADDMEMBER / REMOVEMEMBER only for dynamic members (QueueAdd / QueueRemove). A
seat an administrator puts in a queue is a static member (queues.conf ``member =>``): it counts
as logged in while its phone can take calls. The engine follows the members' device state
(QueueMemberStatus with ``Membership: static``, and the QueueMember lines of every re-sync) and,
when a static member's phone becomes available (from Unavailable or Invalid to anything else) or
unavailable, asks Asterisk to write the missing line (AMI action ``QueueLog``, write class
``agent``; callid ``STATIC``, as Asterisk marks realtime members' lines ``REALTIME``). So
queue_log stays the one source of the statistics.

At every (re)connection the engine writes every static member's current state again: the
reconciler takes a login for a seat already logged in, or a logout for one that is not, as
nothing. While the engine is stopped nothing is written; a change meanwhile is seen at its next
re-sync. After an Asterisk restart QUEUESTART ends every login and the re-sync starts them again.

The event path only publishes (``engine.queuelog``); ``QueueLogWriter`` sends the actions.
"""

from __future__ import annotations

import logging
from typing import Any

from callcenter.ami import actions
from callcenter.ami import events as ev
from callcenter.ami.client import AmiClient
from callcenter.bus import EventBus, Subscription, TopicWorker
from callcenter.config import Settings
from callcenter.ids import PERSONAL_QUEUE_PREFIX
from callcenter.messages import QueueLogLine

log = logging.getLogger(__name__)

QUEUELOG_TOPIC = QueueLogLine.topic
UNAVAILABLE = frozenset({4, 5})  # AST_DEVICE_INVALID, AST_DEVICE_UNAVAILABLE
STATIC_CALLID = "STATIC"


class StaticPresence:
    """Pure: AMI events in, the queue_log lines to write out (as bus payloads)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.known: dict[tuple[str, str], bool] = {}  # (queue, interface) → available

    def _line(self, queue: str, interface: str, available: bool) -> dict[str, Any]:
        event = "ADDMEMBER" if available else "REMOVEMEMBER"
        return QueueLogLine(self.source, queue, event, STATIC_CALLID, interface).to_json()

    @staticmethod
    def _static(m: ev.QueueMemberStatus) -> bool:
        return m.membership == "static" and not m.queue.startswith(PERSONAL_QUEUE_PREFIX)

    def observe(self, event: Any) -> list[dict[str, Any]]:
        if isinstance(event, ev.Resync):
            # Every static member's state again (the reconciler ignores what it already knows),
            # and a logout for any that left while we were away.
            before, self.known = self.known, {}
            out = []
            for m in event.members:
                if self._static(m):
                    up = m.status not in UNAVAILABLE
                    self.known[(m.queue, m.interface)] = up
                    out.append(self._line(m.queue, m.interface, up))
            gone = [key for key, up in before.items() if up and key not in self.known]
            out += [self._line(q, i, False) for q, i in gone]
            return out
        if isinstance(event, ev.QueueMemberStatus):
            if not self._static(event):
                return []
            key = (event.queue, event.interface)
            up = event.status not in UNAVAILABLE
            if self.known.get(key) == up:
                return []
            self.known[key] = up
            return [self._line(event.queue, event.interface, up)]
        if isinstance(event, ev.QueueMemberRemoved):
            if self.known.pop((event.queue, event.interface), False):
                return [self._line(event.queue, event.interface, False)]
        return []


class QueueLogWriter(TopicWorker):
    """Sends the QueueLog actions, in the order they were published."""

    topic = QUEUELOG_TOPIC

    def __init__(self, settings: Settings, bus: EventBus, ami: AmiClient) -> None:
        super().__init__(bus)
        self.settings = settings
        self.ami = ami

    async def handle(self, payload: dict[str, Any], sub: Subscription) -> None:
        line = QueueLogLine.from_json(payload)
        if line.source != self.settings.stats_source:
            return  # another engine's (several Asterisk servers on one bus)
        action = actions.queue_log(line.queue, line.event, line.uniqueid, line.interface, line.message)
        if action is None:
            log.warning("queue_log line refused: %r", payload)
            return
        try:
            reply = await self.ami.action(action)
            if not reply.ok:
                log.warning("QueueLog %s failed: %r", action["Event"], reply.raw)
        except Exception:
            log.exception("QueueLog %s for %s failed", action["Event"], action["Interface"])
