"""The console and wallboard WebSockets: one bus topic, chosen from the account record, forwarded
to an authorised socket. The protocol (envelope, message types, close codes) is ``protocol.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from callcenter import ids, topics
from callcenter.accounts.models import Account
from callcenter.messages import PageHello
from web_console.access import ROUTE_ROLES
from web_console.protocol import PING, CloseCode, Control, Kind, MessageType, control_topic, encode, envelope
from web_console.render import unavailable_part
from web_console.resident_access import popped_resident
from web_console.sessions import resolve_account, resolve_accounts

log = logging.getLogger(__name__)

router = APIRouter()

# A socket's subscription: (bus topic, kind, its hello to the engine) for an account.
TopicChoice = tuple[str, str, PageHello]


def origin_ok(websocket: WebSocket) -> bool:
    """Refuse cross-site WebSockets: a browser's Origin must name this host."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser; the session cookie is still required
    host = websocket.headers.get("host", "")
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.lower()


async def close_socket(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason)


def _console_topic(account: Account) -> TopicChoice | None:
    """A seat's console: its own extension's topic, from the account record only."""
    ext = account.extension
    if not ext or not ids.EXTENSION.fullmatch(ext):
        return None
    return topics.seat(ext), Kind.CONSOLE.value, PageHello(Kind.CONSOLE.value, ext)


def _wallboard_topic(account: Account) -> TopicChoice | None:
    return topics.WALLBOARD, Kind.WALLBOARD.value, PageHello(Kind.WALLBOARD.value)


class SessionRecheck:
    """Every open socket's session checked again each ``ws_recheck_interval``, in one query for
    all of them: one read per socket each time cost an idle console service (124 open consoles)
    more CPU than everything else it did while no call came."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[Account | None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def next(self, session: dict[str, Any]) -> Account | None:
        """The session's account at the next round (None: no longer valid). Raises what the
        round's read raised (the database or Redis unavailable)."""
        future: asyncio.Future[Account | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((session, future))
        if self._task is None:
            self._task = asyncio.create_task(self._rounds(), name="ws-session-recheck")
        return await future

    async def _rounds(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(self.state.ws_recheck_interval)
                batch, self._waiting = self._waiting, []
                live = [(session, f) for session, f in batch if not f.done()]  # closed sockets' are
                if not live:
                    continue
                try:
                    accounts = await run_in_threadpool(resolve_accounts, self.state, [s for s, _ in live])
                except Exception as exc:
                    for _, future in live:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), account in zip(live, accounts, strict=True):
                    if not future.done():
                        future.set_result(account)
        finally:
            self._task = None


@router.websocket("/ws/console")
async def console_ws(websocket: WebSocket) -> None:
    """Pops for the logged-in account's own extension, and nothing else (see ``serve_topic``)."""
    await serve_topic(websocket, "/ws/console", _console_topic)


@router.websocket("/ws/wallboard")
async def wallboard_ws(websocket: WebSocket) -> None:
    """The live wallboard: queue and seat snapshots, for supervisors and administrators."""
    await serve_topic(websocket, "/ws/wallboard", _wallboard_topic)


async def serve_topic(
    websocket: WebSocket, route: str, topic_for: Callable[[Account], TopicChoice | None]
) -> None:
    """Forward one bus topic, chosen from the account record, to an authorised socket.

    Accepts first so that a refusal can carry an application close code: 4401 without a valid
    session, 4403 for a role the table does not allow (or a foreign Origin), 4404 when the
    account has no topic (a console without an extension). An open socket is re-checked every
    ``ws_recheck_interval`` seconds: logout, a disabled account or a changed password close it
    4401, a lost role 4403, a changed topic 4409 (the page reloads). Whatever the client sends
    is ignored apart from the keepalive ``ping`` (answered ``{"topic": "<kind>.pong"}``). Once
    subscribed, the socket says ``{"topic": "<kind>.ready", ...}`` and the engine is asked
    (``<kind>.hello``) to send the current state; after that it carries only the topic's
    messages, as ``{"topic": ..., **payload}``.
    """
    await websocket.accept()
    state = websocket.app.state
    if not origin_ok(websocket):
        await close_socket(websocket, CloseCode.FORBIDDEN, "cross-origin request refused")
        return
    session = dict(websocket.scope.get("session") or {})
    try:
        account = await run_in_threadpool(resolve_account, state, session)
    except Exception as err:
        part = unavailable_part(err)
        if part is None:
            raise
        # The database or Redis (sessions) is restarting: the page tries again in a moment.
        log.warning("%s socket refused: %s unavailable (%s)", route, part, str(err).splitlines()[0][:200])
        await close_socket(websocket, CloseCode.SERVER_ERROR, f"{part} unavailable")
        return
    if account is None:
        await close_socket(websocket, CloseCode.UNAUTHENTICATED, "not logged in")
        return
    if account.role not in ROUTE_ROLES[route]:
        await close_socket(websocket, CloseCode.FORBIDDEN, f"role may not use the {route.rsplit('/', 1)[-1]}")
        return
    if account.must_change_password:
        await close_socket(websocket, CloseCode.FORBIDDEN, "password change required")
        return
    chosen = topic_for(account)
    if chosen is None:
        await close_socket(websocket, CloseCode.NO_EXTENSION, "account has no extension")
        return
    topic, kind, hello = chosen

    bus = state.bus
    send_lock = asyncio.Lock()

    async def send(message: dict[str, Any]) -> None:
        data = encode(message)
        async with send_lock:
            await websocket.send_text(data)

    async def forward() -> None:
        async for msg_topic, payload in sub:
            if kind == Kind.CONSOLE.value and payload.get("type") == MessageType.POP:
                await remember_pop(payload)
            await send(envelope(msg_topic, payload))

    remembered: list[tuple[str, int]] = []  # the call and resident last remembered

    async def remember_pop(payload: dict[str, Any]) -> None:
        """The resident of the seat's current call: its sensitive data is open to this seat (once
        per call and resident: a call pops several times as it rings, gets its profile, is answered)."""
        rid = popped_resident(payload)
        if rid is not None and hello.ext:
            seen = (str(payload.get("linkedid", "")), rid)
            if remembered and remembered[0] == seen:
                return
            ttl = state.settings.resident_link_hours * 3600
            if state.seat_calls.blocking:
                await run_in_threadpool(state.seat_calls.remember, hello.ext, rid, ttl)
            else:
                state.seat_calls.remember(hello.ext, rid, ttl)
            remembered[:] = [seen]

    async def listen() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == PING:
                await send({"topic": control_topic(kind, Control.PONG)})

    async def recheck() -> int | None:
        """Ends the socket when the session stops being valid (logout, disabled, role change)."""
        while True:
            try:
                current = await state.session_recheck.next(session)
            except Exception as exc:
                if unavailable_part(exc) is None:
                    raise
                # The database or Redis is restarting: the seat keeps its console and the
                # session is checked again at the next interval (it was valid until now).
                continue
            if current is None:
                return CloseCode.UNAUTHENTICATED
            if current.role not in ROUTE_ROLES[route]:
                return CloseCode.FORBIDDEN
            if (topic_for(current) or ("",))[0] != topic:
                return CloseCode.EXTENSION_CHANGED

    sub = bus.subscribe(topic)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await asyncio.wait_for(sub.ready.wait(), timeout=10)
        await bus.publish(hello.topic, hello.to_json())
        # Not a bus message: tells the page its subscription is live (the indicator turns green).
        await send({"topic": control_topic(kind, Control.READY), **hello.to_json()})
        log.info("%s socket of %s connected", kind, account.username)
        tasks = [
            asyncio.create_task(forward(), name=f"ws-forward-{topic}"),
            asyncio.create_task(listen(), name=f"ws-listen-{topic}"),
            asyncio.create_task(recheck(), name=f"ws-recheck-{topic}"),
        ]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finished = done.pop()
        if finished.cancelled():
            pass
        elif (exc := finished.exception()) is not None:
            if (part := unavailable_part(exc)) is not None:
                log.warning(
                    "%s socket closed: %s unavailable (%s)", topic, part, str(exc).splitlines()[0][:200]
                )
                await close_socket(websocket, CloseCode.SERVER_ERROR, f"{part} unavailable")
            elif not isinstance(exc, WebSocketDisconnect | OSError | RuntimeError):
                log.error("%s socket failed", topic, exc_info=exc)
                await close_socket(websocket, CloseCode.SERVER_ERROR, "server error")
        elif finished.get_name().startswith("ws-recheck") and finished.result():
            await close_socket(websocket, finished.result(), "session ended")
    except Exception as exc:  # the bus (e.g. Redis) failed before the socket was live
        log.warning("%s socket: bus unavailable (%r)", topic, exc)
        await close_socket(websocket, CloseCode.SERVER_ERROR, "event bus unavailable")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await sub.close()
        if websocket.application_state == WebSocketState.CONNECTED:
            await close_socket(websocket, CloseCode.NORMAL, "bye")
        log.info("%s socket of %s disconnected", kind, account.username)
