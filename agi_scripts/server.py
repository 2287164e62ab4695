"""FastAGI server: a route table and a safe connection handler, on an event loop of its own.

panoramisk 1.4's handler loops forever on a connection that closes before sending its
headers (``read`` returns b"" and ``b"\\n\\n"`` never arrives), freezing the event loop. This
handler reads the headers with ``readuntil`` under a timeout and a size limit instead.

The server runs on its own thread and event loop: a call waits for its route, and the engine's
loop may be busy for a while (a burst of AMI events, pops, statistics). Routes that only read
(``incoming``) run there; the others run on the engine's loop, their AGI commands sent back
through the server's loop (``_EngineLoopRequest``).

Commands are built only from fixed verbs; values are quoted (``quote``), variable names
checked, so caller-controlled text is never spliced into an AGI command.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
import re
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from callcenter.aio import new_event_loop
from callcenter.bus import OutageLog
from callcenter.database import database_unavailable

log = logging.getLogger(__name__)

MAX_HEADERS = 16 * 1024
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_,.\-]*\))?")
# Values MSet can carry unquoted: no separator, quote, escape, paren or bracket.
_MSET_VALUE = re.compile(r"[A-Za-z0-9+._:@/ -]{0,200}")
_RESULT = re.compile(r"^200 result=(-?\d+)(?: \((.*)\))?", re.DOTALL)


class AgiError(Exception):
    """Asterisk answered an AGI command with an error, or the channel hung up."""


def quote(value: str) -> str:
    """Quote one AGI argument: Asterisk's parser honours \\\\ and \\" inside double quotes."""
    value = value.replace("\r", " ").replace("\n", " ").replace("\0", "")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class AgiRequest:
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    timeout: float = 5.0

    def arg(self, n: int) -> str:
        return self.headers.get(f"agi_arg_{n}", "")

    async def commands(self, lines: list[str]) -> list[tuple[int, str | None]]:
        """Send command lines one at a time, each after the previous reply.

        Not pipelined: Asterisk reads AGI commands through a stdio buffer but waits for more by
        polling the socket, so a second command sent in the same packet sits unread until the
        connection closes (seen with Asterisk 22: a 5 s stall per call).
        """
        replies = []
        # asyncio.timeout, not wait_for: no extra task per line read.
        async with asyncio.timeout(self.timeout):
            for line in lines:
                self.writer.write(line.encode() + b"\n")
                await self.writer.drain()
                replies.append(await self._reply())
        return replies

    async def command(self, line: str) -> tuple[int, str | None]:
        """Send one command line; return (result, data in parentheses)."""
        return (await self.commands([line]))[0]

    async def _reply(self) -> tuple[int, str | None]:
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise AgiError("connection closed")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if text.startswith("100"):
                continue
            if text.startswith("HANGUP"):
                continue  # a hangup notice; the reply to our command follows
            m = _RESULT.match(text)
            if not m:
                if text.startswith("520-"):  # multi-line usage error
                    while raw and not raw.startswith(b"520 "):
                        raw = await self.reader.readline()
                raise AgiError(text)
            return int(m.group(1)), m.group(2)

    async def get_variables(self, *names: str) -> list[str | None]:
        for name in names:
            if not _NAME.fullmatch(name):
                raise ValueError(f"bad variable name {name!r}")
        replies = await self.commands([f"GET VARIABLE {name}" for name in names])
        return [data if result == 1 else None for result, data in replies]

    async def get_variable(self, name: str) -> str | None:
        return (await self.get_variables(name))[0]

    async def set_variables(self, values: dict[str, str]) -> None:
        for name in values:
            if not _NAME.fullmatch(name):
                raise ValueError(f"bad variable name {name!r}")
        plain = {k: v for k, v in values.items() if "(" not in k}
        if len(plain) > 1 and all(_MSET_VALUE.fullmatch(str(v)) for v in plain.values()):
            # One round trip instead of one per variable: Asterisk's MSet(a=1,b=2). Only values
            # that cannot end an argument (no comma, quote, backslash, bracket) go this way.
            result, _ = await self.command(
                "EXEC MSet " + quote(",".join(f"{k}={v}" for k, v in plain.items()))
            )
            if result != 0:
                raise AgiError(f"MSet failed ({result})")
            values = {k: v for k, v in values.items() if k not in plain}
            if not values:
                return
        replies = await self.commands([f"SET VARIABLE {k} {quote(str(v))}" for k, v in values.items()])
        for name, (result, _) in zip(values, replies, strict=True):
            if result != 1:
                raise AgiError(f"SET VARIABLE {name} failed")

    async def set_variable(self, name: str, value: str) -> None:
        await self.set_variables({name: value})


Route = Callable[[AgiRequest], Coroutine[Any, Any, Any]]  # an async def: it may run on another loop


@dataclass
class _EngineLoopRequest(AgiRequest):
    """A request whose route runs on the engine's loop: its commands go through the server's
    loop, which owns the connection."""

    io_loop: asyncio.AbstractEventLoop = field(default=None)  # type: ignore[assignment]

    async def commands(self, lines: list[str]) -> list[tuple[int, str | None]]:
        io = AgiRequest.commands(self, lines)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(io, self.io_loop))


def _key_matches(query: str, secret: str) -> bool:
    given = parse_qs(query, max_num_fields=4).get("k", [""])[0]
    return hmac.compare_digest(given.encode(), secret.encode())


class FastAgiServer:
    """Routes by ``agi_network_script``; each connection handled under a read timeout.

    Serves on a thread with its own event loop; routes added with ``thread_safe=True`` run
    there, the others on the loop that created the server (the engine's)."""

    def __init__(self, read_timeout: float = 5.0, secret: str = "") -> None:
        self.read_timeout = read_timeout
        # Asterisk's dialplan calls agi://host:port/<route>?k=<secret>; anything else that
        # reaches the port (another local process) is turned away before any route runs.
        self.secret = secret
        self._engine_loop = asyncio.get_running_loop()
        self._io_loop: asyncio.AbstractEventLoop | None = None
        self._routes: dict[str, tuple[Route, bool]] = {}
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        # Routes failing because the database is away (restarting) are said once, not one
        # traceback a call: the dialplan sends those callers on to their queue meanwhile.
        self._db_outage = OutageLog("database (FastAGI routes; callers go on to the queue)", log)

    def add_route(self, path: str, route: Route, thread_safe: bool = False) -> None:
        """``thread_safe``: the route touches nothing of the engine's loop (reads and
        thread-safe calls only), so it runs on the server's loop without a hop."""
        if path in self._routes:
            raise ValueError(f"a FastAGI route {path!r} exists already")
        self._routes[path] = (route, thread_safe)

    async def start(self, host: str, port: int) -> None:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(host, port, ready), name="fastagi", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(ready)  # listening, or the bind's error

    def _serve(self, host: str, port: int, ready: concurrent.futures.Future) -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self.handler, host, port, limit=MAX_HEADERS)
            )
        except BaseException as exc:
            loop.close()
            ready.set_exception(exc)
            return
        self._io_loop = loop
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            self._server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def stop(self) -> None:
        if self._thread is not None and self._io_loop is not None:
            self._io_loop.call_soon_threadsafe(self._io_loop.stop)
            await asyncio.to_thread(self._thread.join, 10)
        self._thread = None
        self._server = None
        self._io_loop = None

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.read_timeout):
                raw = await reader.readuntil(b"\n\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        headers: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\n"):
            key, sep, value = line.partition(": ")
            if sep:
                headers.setdefault(key, value)  # the first wins: a repeated header adds nothing
        script = headers.get("agi_network_script", "")
        path, _, query = script.partition("?")
        if self.secret and not _key_matches(query, self.secret):
            log.warning("FastAGI request for %r without the right key refused", path[:80])
            writer.close()
            return
        route, thread_safe = self._routes.get(path, (None, False))
        if route is None:
            log.error("no FastAGI route for %r", path[:80])
            writer.close()
            return
        try:
            if thread_safe:
                await route(
                    AgiRequest(headers=headers, reader=reader, writer=writer, timeout=self.read_timeout)
                )
            else:
                request = _EngineLoopRequest(
                    headers=headers,
                    reader=reader,
                    writer=writer,
                    timeout=self.read_timeout,
                    io_loop=asyncio.get_running_loop(),
                )
                done = asyncio.run_coroutine_threadsafe(route(request), self._engine_loop)
                await asyncio.wrap_future(done)
            self._db_outage.up()
        except (AgiError, TimeoutError, ConnectionError) as exc:
            log.warning("FastAGI %s ended early: %s", script, exc)
        except Exception as exc:
            if database_unavailable(exc):
                self._db_outage.down(exc)
            else:
                log.exception("FastAGI route %s failed", script)
        finally:
            writer.close()
