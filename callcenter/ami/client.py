"""AMI client on panoramisk, with the 1.4 caveats handled.

- Events are parsed into typed events (``events.parse_event``) in the reader callback and put
  on one queue; a single consumer applies them in order, so no handler runs in the callback.
- After every login (first connection or a reconnection after an Asterisk restart) the client
  re-syncs with ``QueueStatus`` and ``CoreShowChannels``: events lost in the gap are made good.
- UTF-8 caller names split across TCP reads are not mangled (panoramisk decodes each read
  with errors='ignore'; the protocol here only hands it whole lines).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from callcenter.ami import actions
from callcenter.ami import events as ev
from callcenter.ami.actions import Action, Reply
from callcenter.config import Settings

log = logging.getLogger(__name__)


class _LineSafeProtocol(AMIProtocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        self._pending = b""
        self.lost_unadopted = False

    def connection_lost(self, exc):
        if self.factory is None:
            # Closed before the manager adopted this connection (its callback runs a loop turn
            # after the connect): panoramisk would raise here and never connect again.
            self.closed = True
            self.lost_unadopted = True
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        data = self._pending + data
        cut = data.rfind(b"\r\n\r\n")  # whole messages only
        if cut < 0:
            self._pending = data
            return
        self._pending = data[cut + 4 :]
        whole = data[: cut + 4]
        on_headers = getattr(self.factory, "on_headers", None)
        if on_headers is None:
            super().data_received(whole)
            return
        # The engine's events skip panoramisk's Message (a case-insensitive dict built key by
        # key, then matched against every registered pattern): most of the engine's AMI cost.
        # Replies, and events that belong to an action (ActionID), go through panoramisk.
        encoding = getattr(self, "encoding", "utf8")
        for packet in whole.decode(encoding, "ignore").split("\r\n\r\n")[:-1]:
            packet = packet.strip()
            if (
                packet.startswith("Event: ")
                and "\r\nActionID: " not in packet
                and not packet.startswith("Event: Shutdown")
            ):
                on_headers(ev.parse_packet(packet))
            elif packet:
                super().data_received((packet + "\r\n\r\n").encode(encoding))


class _Manager(Manager):
    closed_for_good = False
    # Events (without ActionID) as parsed headers, instead of through panoramisk's dispatch
    on_headers: Callable[[ev.Headers], None] | None = None

    def connection_made(self, f):
        if self.closed_for_good:  # a connect that was under way when the manager was closed
            if not f.cancelled() and f.exception() is None:
                f.result()[0].close()
            return
        # A connection the peer closed at once (Asterisk starting or stopping, a proxy between)
        # is not adopted: panoramisk would send Login on it and wait forever. Connect again.
        if not f.cancelled() and f.exception() is None and getattr(f.result()[1], "lost_unadopted", False):
            log.warning("AMI connection closed as soon as it opened; connecting again")
            self.loop.call_later(self.reconnect_timeout, self.connect)
            return
        super().connection_made(f)


def new_manager(settings: Settings, on_event, username: str = "", **options) -> _Manager:
    """A panoramisk Manager for our AMI user (or ``username``), every event to ``on_event``; call
    ``connect()``."""
    username = username or settings.ami_user
    # The engine's user and the tools' user have secrets of their own.
    secret = settings.ami_engine_secret if username == settings.ami_engine_user else settings.ami_secret
    manager = _Manager(
        host=settings.ami_host,
        port=settings.ami_port,
        username=username,
        secret=secret,
        loop=asyncio.get_running_loop(),
        protocol_factory=_LineSafeProtocol,
        reconnect_timeout=1,
        **options,
    )
    if on_event is not None:
        manager.register_event("*", on_event)
    return manager


async def open_manager(
    settings: Settings, on_event=None, timeout: float = 15.0, events: str = "on", username: str = ""
) -> Manager:
    """A logged-in panoramisk connection for tools (the doctor, tests, benchmarks) and for
    actions that hold their session (a synchronous Originate); every event goes to
    ``on_event(manager, message)`` (``events="off"``: none are sent; ``username`` the engine's
    user: only the engine's events). Raises TimeoutError when the login does not come."""
    logged_in = asyncio.Event()
    manager = new_manager(
        settings, on_event, username=username, on_login=lambda _m: logged_in.set(), events=events
    )
    manager.connect()
    try:
        await asyncio.wait_for(logged_in.wait(), timeout)
    except TimeoutError:
        close_manager(manager)
        raise
    return manager


def sender(manager: Manager) -> Callable[[Action], Awaitable[Reply]]:
    """``send(action) -> Reply`` over a connection opened with ``open_manager`` (the command
    line, the doctor), as ``AmiClient.action`` is over the engine's."""

    async def send(action: Action) -> Reply:
        return Reply.of(await manager.send_action(dict(action), as_list=action.as_list))

    return send


def close_manager(manager: Manager) -> None:
    """Close for good: panoramisk reconnects on any lost connection unless told not to."""
    manager.connection_lost = lambda exc: None
    manager.closed_for_good = True
    manager.close()


def asterisk_started(status: Reply) -> str:
    """Asterisk's start as CoreStatus tells it (its own local time, compared only with itself)."""
    raw = status.raw if status.ok and hasattr(status.raw, "get") else {}
    date, at = str(raw.get("CoreStartupDate", "")), str(raw.get("CoreStartupTime", ""))
    return f"{date} {at}" if date and at else ""


class AmiClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events: asyncio.Queue[ev.AmiEvent] = asyncio.Queue()
        self.logged_in = asyncio.Event()
        self.logins = 0
        self._manager: Manager | None = None
        self._resync_task: asyncio.Task | None = None
        self._asterisk_started = ""  # CoreStatus's start date and time at the last re-sync
        self.watching_since = 0.0  # the current session's login: calls ending later are seen

    async def start(self) -> None:
        manager = new_manager(
            self.settings,
            self._on_event,
            username=self.settings.ami_engine_user,  # Asterisk sends it only ENGINE_EVENTS
            ping_delay=10,
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
        )
        manager.on_headers = self._on_headers
        self._manager = manager
        manager.connect()

    async def stop(self) -> None:
        if self._resync_task:
            self._resync_task.cancel()
        if self._manager:
            close_manager(self._manager)
            self._manager = None

    # -- callbacks (run in panoramisk's reader: keep them tiny) ----------------------------
    def _on_event(self, _manager: Manager, message) -> None:
        event = ev.parse_event(message)
        if event is not None:
            self.events.put_nowait(event)

    def _on_headers(self, headers: ev.Headers) -> None:
        event = ev.parse_event(headers)
        if event is not None:
            self.events.put_nowait(event)

    def saw_end(self, at: float) -> bool:
        """Whether a call that ended at ``at`` (epoch seconds) ended while this client was logged
        in: if not, the engine never saw it end, and may never have seen it at all."""
        return self.logged_in.is_set() and at >= self.watching_since

    def _on_login(self, _manager: Manager) -> None:
        self.watching_since = time.time()
        self.logins += 1
        log.info("AMI logged in (%d); re-syncing", self.logins)
        if self._resync_task is not None:
            self._resync_task.cancel()  # one from a connection that is gone
        self._resync_task = asyncio.ensure_future(self._resync())

    def _on_disconnect(self, _manager: Manager, exc) -> None:
        self.logged_in.clear()
        log.warning("AMI connection lost: %s", exc)

    # -- actions ---------------------------------------------------------------------------
    async def action(self, action: Action, timeout: float = 10.0) -> Reply:
        """Send one action (how its reply is read is the action's own: ``Action.as_list``)."""
        if self._manager is None:
            raise RuntimeError("AMI client not started")
        raw = await asyncio.wait_for(self._manager.send_action(dict(action), as_list=action.as_list), timeout)
        return Reply.of(raw)

    async def held_action(self, action: Action, timeout: float = 45.0) -> Reply:
        """An action that holds its session until it ends (a synchronous Originate replies when
        the phone is answered or gives up): sent on a session of its own, so this client's
        other actions (pauses, transfers, reloads) never wait behind a ringing phone."""
        manager = await open_manager(self.settings, events="off", timeout=10)
        try:
            # as_list=False: panoramisk 1.4 takes "... successfully queued" for a list's start.
            return Reply.of(await asyncio.wait_for(manager.send_action(dict(action), as_list=False), timeout))
        finally:
            close_manager(manager)

    async def list_action(self, action: Action, timeout: float = 10.0) -> list:
        """The events of a list action (QueueStatus, CoreShowChannels), as panoramisk gives them."""
        if self._manager is None:
            raise RuntimeError("AMI client not started")
        result = await asyncio.wait_for(self._manager.send_action(dict(action), as_list=True), timeout)
        return result if isinstance(result, list) else [result]

    async def refresh_members(self) -> None:
        """Queue members as Asterisk has them now, applied in order with the live events: a
        reload that adds a static member (a new seat) sends no event for it."""
        lines = await self.list_action(actions.queue_status(), timeout=5)
        for event in (ev.parse_event(m) for m in lines):
            if isinstance(event, ev.QueueMemberStatus):
                self.events.put_nowait(event)

    async def _resync(self) -> None:
        # Until it succeeds: without it the console would show a state Asterisk no longer has.
        attempt = 0
        while True:
            attempt += 1
            try:
                status = await self.action(actions.core_status(), timeout=5)
                queue_lines = await self.list_action(actions.queue_status(), timeout=5)
                chan_lines = await self.list_action(actions.core_show_channels(), timeout=5)
                break
            except Exception as exc:
                log.warning("AMI re-sync attempt %d failed (%r); trying again", attempt, exc)
                await asyncio.sleep(min(5, attempt))
        started = asterisk_started(status)
        # Unknown (no answer, or the first login) counts as a restart: calls that vanished were cut.
        restarted = not started or started != self._asterisk_started
        if self._asterisk_started and not restarted:
            log.warning(
                "AMI back with Asterisk still up since %s: calls that ended meanwhile are "
                "settled from queue_log",
                started,
            )
        self._asterisk_started = started
        parsed = [ev.parse_event(m) for m in queue_lines + chan_lines]
        channels = [e for e in parsed if isinstance(e, ev.CoreShowChannel)]
        members = [e for e in parsed if isinstance(e, ev.QueueMemberStatus)]
        entries = [e for e in parsed if isinstance(e, ev.QueueEntry)]
        # Through the event queue, so the re-sync is applied in order with the live events.
        self.events.put_nowait(
            ev.Resync(channels=channels, members=members, entries=entries, asterisk_restarted=restarted)
        )
        self.logged_in.set()
