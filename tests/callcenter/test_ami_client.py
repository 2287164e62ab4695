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
