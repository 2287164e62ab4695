"""The engine's AMI connection comes back whatever the peer does: connections closed as soon as
they open (Asterisk starting or stopping, a proxy in between) are followed by a new attempt."""

from __future__ import annotations

import asyncio
import socket
import struct

from callcenter import aio
from callcenter.ami.client import close_manager, new_manager
from callcenter.config import Settings

REFUSED = 50


class FlappingAmi:
    """Closes the first ``refuse`` connections at once, then speaks enough AMI for a login."""

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections <= self.refuse:
            # Reset, not a polite close: what a peer that goes away without reading sends.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            return
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        while block := await reader.readuntil(b"\r\n\r\n"):
            fields = dict(
                line.split(": ", 1) for line in block.decode().strip().split("\r\n") if ": " in line
            )
            if fields.get("Action") == "Login":
                writer.write(
                    f"Response: Success\r\nActionID: {fields['ActionID']}\r\n"
                    "Message: Authentication accepted\r\n\r\n".encode()
                )
            await writer.drain()


def test_connections_closed_at_once_are_followed_by_a_login(tmp_path):
    """On the engine's own event loop (uvloop), where a close can arrive before panoramisk adopts
    the connection (seen under a real AMI cut: the engine then never logged in again)."""
    aio.run(_closed_at_once_then_login(tmp_path))


async def _closed_at_once_then_login(tmp_path):
    ami = FlappingAmi(refuse=REFUSED)
    port = await ami.start()
    settings = Settings(data_dir=tmp_path, ami_port=port, ami_secret="s", _env_file=None)
    logged_in = asyncio.Event()
    manager = new_manager(settings, None, on_login=lambda _m: logged_in.set())
    manager.reconnect_timeout = 0  # many closes in a short test: the race is a matter of luck
    manager.connect()
    try:
        await asyncio.wait_for(logged_in.wait(), 15)
    finally:
        close_manager(manager)
        assert ami.server is not None
        ami.server.close()
    assert ami.connections == REFUSED + 1


def test_a_connection_lost_before_panoramisk_adopts_it_leads_to_a_new_attempt(tmp_path):
    """The order seen under a real AMI cut: the transport reports the close before panoramisk's
    callback adopts the connection. Without care the protocol raises (no manager yet), the
    manager then sends Login on the dead transport and never connects again."""
    from callcenter.ami.client import _LineSafeProtocol

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        settings = Settings(data_dir=tmp_path, ami_port=9, ami_secret="s", _env_file=None)
        manager = new_manager(settings, None)
        manager.reconnect_timeout = 0
        attempts: list[str] = []
        manager.connect = lambda *a, **k: attempts.append("connect")  # type: ignore[method-assign]

        class DeadTransport(asyncio.Transport):
            def write(self, data) -> None:
                raise RuntimeError("the handler is closed")

            def close(self) -> None:
                pass

        protocol = _LineSafeProtocol()
        transport = DeadTransport()
        protocol.connection_made(transport)
        protocol.connection_lost(ConnectionResetError(104, "Connection reset by peer"))  # must not raise
        done: asyncio.Future = loop.create_future()
        done.set_result((transport, protocol))
        manager.connection_made(done)
        await asyncio.sleep(0.05)
        close_manager(manager)
        return attempts

    assert aio.run(scenario()) == ["connect"]


def ami(*lines: str) -> bytes:
    """One AMI message from header lines joined by "|"."""
    return ("\r\n".join("|".join(lines).split("|")) + "\r\n\r\n").encode()


class EventingAmi:
    """After the login, events cut at awkward places (inside a Chinese name's UTF-8 bytes, between
    a message's lines); a QueueStatus is answered with a list of events carrying its ActionID."""

    NAME = "王秀英"

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        while block := await reader.readuntil(b"\r\n\r\n"):
            fields = dict(
                line.split(": ", 1) for line in block.decode().strip().split("\r\n") if ": " in line
            )
            aid = fields.get("ActionID", "")
            if fields.get("Action") == "Login":
                writer.write(ami(f"Response: Success|ActionID: {aid}|Message: Authentication accepted"))
                stream = ami(
                    "Event: Newchannel|Timestamp: 1700000000.250000|Channel: PJSIP/trunk-1",
                    f"CallerIDNum: 13800000001|CallerIDName: {self.NAME}|Uniqueid: 1.1|Linkedid: 1.1",
                    "ChanVariable: CC_DID=96345|ChanVariable: CC_X=1",
                ) + ami("Event: Hangup|Channel: PJSIP/trunk-1|Uniqueid: 1.1|Linkedid: 1.1|Cause: 16")
                cut = stream.index(self.NAME.encode()) + 1  # inside the first character's bytes
                for part in (stream[:cut], stream[cut : cut + 40], stream[cut + 40 :]):
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0.05)
            elif fields.get("Action") == "QueueStatus":
                writer.write(
                    ami(f"Response: Success|ActionID: {aid}|EventList: start|Message: Queue status follows")
                    + ami(f"Event: QueueMember|ActionID: {aid}|Queue: hotline|Name: seat1001")
                    + ami(f"Event: QueueStatusComplete|ActionID: {aid}|EventList: Complete|ListItems: 1")
                )
            await writer.drain()


def test_the_engines_events_are_read_whole_and_an_actions_events_still_reach_the_action(tmp_path):
    from callcenter.ami import actions
    from callcenter.ami import events as ev

    async def scenario() -> tuple[list, list, list]:
        server = EventingAmi()
        port = await server.start()
        settings = Settings(data_dir=tmp_path, ami_port=port, ami_secret="s", _env_file=None)
        dispatched: list = []
        manager = new_manager(settings, lambda _m, msg: dispatched.append(msg.get("Event")))
        headers: list[ev.Headers] = []
        manager.on_headers = headers.append
        logged_in = asyncio.Event()
        manager.on_login = lambda _m: logged_in.set()
        manager.connect()
        await asyncio.wait_for(logged_in.wait(), 5)
        for _ in range(100):
            if len(headers) >= 2:
                break
            await asyncio.sleep(0.02)
        listed = await asyncio.wait_for(manager.send_action(dict(actions.queue_status()), as_list=True), 5)
        close_manager(manager)
        server.server.close()
        return headers, dispatched, listed

    headers, dispatched, listed = aio.run(scenario())
    events = [ev.parse_event(h) for h in headers]
    assert [type(e) for e in events] == [ev.Newchannel, ev.Hangup]
    new = events[0]
    assert isinstance(new, ev.Newchannel)
    assert (new.caller_name, new.linkedid, new.emitted) == (EventingAmi.NAME, "1.1", 1700000000.25)
    assert headers[0]["ChanVariable"] == ["CC_DID=96345", "CC_X=1"]
    assert dispatched == []  # not through panoramisk's dispatch as well
    assert [m.get("Event") for m in listed if m.get("Event")] == ["QueueMember", "QueueStatusComplete"]
