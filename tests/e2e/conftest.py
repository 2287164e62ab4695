"""The whole stack for end-to-end tests: a real Asterisk, the app as its own process, sipp phones.

Ports are not the defaults, so a running `make demo` does not disturb the tests. Only seat
1001 has a phone (a sipp answering machine started per test); seat 1002 is logged in to the
console too, to prove pops never reach the wrong seat. Seat 1003 has the console's browser
phone; it alone takes the calls to BROWSER_DID (its queue BROWSER_QUEUE). Seat 1004 has a
browser phone too (a transfer target).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from tests.conftest import AmiWatch, fresh_postgres_database, on_postgres, require

# CC_TEST_PORT_OFFSET lets two checkouts run their end-to-end tests on one machine at once.
_OFF = int(os.environ.get("CC_TEST_PORT_OFFSET", "0"))
SEAT_PORT = 25081 + _OFF
PORTS = {
    "ami_port": 25038 + _OFF,
    "sip_port": 25060 + _OFF,
    "sip_tls_port": 25061 + _OFF,  # TLS listens once a test made a certificate (test_desk_phones.py)
    "agi_port": 24573 + _OFF,
    "web_port": 28080 + _OFF,
    "rtp_start": 12000 + _OFF,
    "rtp_end": 12199 + _OFF,
    "doctor_sip_port": 25099 + _OFF,
    "asterisk_http_port": 28088 + _OFF,
}
# The browser phone's seat, its own service number and queue (tests/e2e/test_webrtc_browser.py)
BROWSER_EXT = "1003"
BROWSER_DID = "96350"
BROWSER_QUEUE = "browser"
BROWSER_EXT2 = "1004"  # a second browser seat: a transfer target, in no test queue of its own
# The outside line (residents' phones for click-to-call, callbacks, follow-ups),
# the 12345 platform's line back, a transfer-target seat and a supervisor's phone
OUTSIDE_PORT = 25070 + _OFF
TRUNK12345_PORT = 25071 + _OFF  # on 127.0.0.2, the 12345 platform's address
SEAT2_PORT = 25086 + _OFF
SUPERVISOR_PORT = 25090 + _OFF
CALLCONTROL = {
    "outbound_contact": f"sip:127.0.0.1:{OUTSIDE_PORT}",
    "trunk12345_contact": f"sip:127.0.0.2:{TRUNK12345_PORT}",
    "callback_offer_after_s": 5,
    "callback_retry_s": 2,
    "followup_retry_s": 2,
    "followup_digit_wait_s": 4,
    # Calls the tests abandon are not called back unless a test asks (test_missed_callbacks.py).
    "missed_callbacks_auto": False,
}


def env_for(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for key in (
        "data_dir",
        "ami_port",
        "sip_port",
        "sip_tls_port",
        "agi_port",
        "web_port",
        "rtp_start",
        "rtp_end",
        "doctor_sip_port",
        "asterisk_http_port",
        "ami_secret",
        "session_secret",
        "redis_url",
        "database_url",
    ):
        env[f"CALLCENTER_{key.upper()}"] = str(getattr(settings, key))
    for key in CALLCONTROL:
        env[f"CALLCENTER_{key.upper()}"] = str(getattr(settings, key))
    return env


@pytest.fixture(scope="session")
def stack_settings(request, tmp_path_factory) -> Settings:
    require("sipp")
    require("espeak-ng")
    data_dir = tmp_path_factory.mktemp("stack") / "var"
    # The call path on PostgreSQL (``--database postgres``): a database of its own, migrated
    url = ""
    if on_postgres(request.config):
        url = fresh_postgres_database(
            request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_template")
        )
    settings = set_settings(
        Settings(data_dir=data_dir, database_url=url, _env_file=None, **PORTS, **CALLCONTROL)
    )
    migrate(settings)
    # A short welcome keeps the calls short; the prompt is data an administrator edits.
    (data_dir / "prompts.json").write_text(json.dumps({"welcome": "您好。"}, ensure_ascii=False))
    from callcenter.accounts.models import Account, Phone, QueueMembership
    from callcenter.database import saved_id
    from callcenter.directory.models import CallQueue, ServiceNumber
    from hotline.demo import load_demo

    with session_scope(settings) as s:
        load_demo(s, residents=300, seat_contact_base_port=None, must_change_password=False)
        seat = s.exec(select(Account).where(Account.extension == "1001")).one()
        seat.sip_contact = f"sip:seat1001@127.0.0.1:{SEAT_PORT}"
        s.add(seat)
        for ext in (BROWSER_EXT2, BROWSER_EXT):
            browser_seat = s.exec(select(Account).where(Account.extension == ext)).one()
            browser_seat.phone = Phone.BROWSER
            s.add(browser_seat)
        s.add(CallQueue(name=BROWSER_QUEUE, title="网页话机", strategy="ringall", agent_timeout=20))
        s.add(ServiceNumber(number=BROWSER_DID, title="网页话机测试", queue_name=BROWSER_QUEUE))
        s.flush()
        s.add(QueueMembership(account_id=saved_id(browser_seat), queue_name=BROWSER_QUEUE, penalty=0))
        # No wrap-up pause, so back-to-back test calls find the seat free (in every queue: with
        # shared_lastcall a 12345 call's wrap-up would keep the seat from the next hotline call).
        for queue in s.exec(select(CallQueue)).all():
            queue.wrapup = 0
            s.add(queue)
        s.commit()
    return settings


@pytest.fixture(scope="session")
def asterisk(stack_settings):
    from asterisk_conf import process

    process.start(stack_settings)
    yield stack_settings
    process.stop(stack_settings)


class App:
    """`callcenter serve` in its own process, as an operator runs it."""

    def __init__(
        self, settings: Settings, *options: str, name: str = "app", env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.options = list(options)  # --no-web / --no-engine
        self.env = env or {}  # more of the process's environment (settings, a shifted clock)
        self.proc: subprocess.Popen | None = None
        self.log = settings.data_dir / f"{name}.log"
        self.base_url = f"http://127.0.0.1:{settings.web_port}"

    def start(self) -> None:
        """Start, and wait until the web console answers and (in-process) the engine is logged in
        to AMI. An engine without web is not waited for: its readiness shows on the bus."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", "serve", *self.options],
            env={**env_for(self.settings), **self.env},
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        if "--no-web" in self.options:
            return
        deadline = time.time() + 45
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the app exited:\n" + self.log.read_text()[-3000:])
            try:
                health = httpx.get(self.base_url + "/healthz", timeout=1).json()
                if "--no-engine" in self.options or health.get("engine", {}).get("ami") is True:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("the app did not become ready:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def app(asterisk):
    a = App(asterisk)
    a.start()
    yield a
    a.stop()


@pytest.fixture
async def ami(asterisk):
    watch = await AmiWatch().open(asterisk)
    yield watch
    watch.close()


async def seat_console(app: App, username: str):
    """A logged-in seat's console WebSocket (the same login a browser does)."""
    from hotline.demo import DEMO_PASSWORD
    from hotline.doctor import console_login, open_console_ws

    client = await console_login(app.base_url, username, DEMO_PASSWORD)
    ws = await open_console_ws(app.base_url, client)
    return client, ws


async def next_message(ws, pred=lambda m: True, timeout: float = 30.0) -> tuple[dict, float]:
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError("no matching console message")
        msg = json.loads(await asyncio.wait_for(ws.recv(), left))
        if pred(msg):
            return msg, time.time()


async def no_calls_up(settings: Settings, timeout: float = 30.0) -> None:
    """Wait until Asterisk has no channel up (an earlier test's call has ended everywhere)."""
    from asterisk_conf.process import cli_command

    deadline = time.monotonic() + timeout
    while True:
        out = await asyncio.to_thread(cli_command, settings, "core show channels count")
        if re.search(r"^0 active channels", out, re.M):
            return
        assert time.monotonic() < deadline, out
        await asyncio.sleep(0.2)


async def settled_snapshot(ws, figures, same_for: float = 3.0, timeout: float = 60.0) -> dict:
    """The wallboard's snapshot once ``figures(snapshot)`` has not moved for ``same_for`` seconds:
    an earlier test's last call records and statistics are written by then."""
    deadline = time.monotonic() + timeout
    snap, _ = await next_message(ws, lambda m: m.get("type") == "snapshot", timeout=timeout)
    since = time.monotonic()
    while True:
        assert time.monotonic() < deadline, "the wallboard never settled"
        left = same_for - (time.monotonic() - since)
        if left <= 0:
            return snap
        try:
            newer, _ = await next_message(ws, lambda m: m.get("type") == "snapshot", timeout=left)
        except (AssertionError, TimeoutError):
            return snap  # nothing new within the window
        if figures(newer) != figures(snap):
            since = time.monotonic()
        snap = newer


async def a_new_call_pops(settings: Settings, ws, not_linkedid: str) -> None:
    """After a fault: a new call to the hotline pops on ``ws`` (another call than the one cut)
    and is answered."""
    from asterisk_conf.sipp import SippUAS, place_call

    with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=0):
        call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=3000))
        pop, _ = await next_message(ws, lambda m: m.get("type") == "pop", timeout=30)
        assert pop["linkedid"] != not_linkedid
        assert (await call).ok


class CuttableRelay:
    """A TCP relay in front of a port (Asterisk's AMI, the FastAGI route) that a test or a
    benchmark cuts (every connection closed, new ones refused: the part behind is unreachable
    while it runs on) and restores."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port = port
        self.target_port = target_port
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.connections = 0
        # > 0: the first answer of each connection held this long (a slow route behind the relay)
        self.first_answer_delay_s = 0.0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:  # the part behind is down (Asterisk restarting): as if refused
            writer.close()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, hold: float = 0.0) -> None:
            try:
                while data := await src.read(65536):
                    if hold:
                        await asyncio.sleep(hold)
                        hold = 0.0
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer, self.first_answer_delay_s))

    def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in self._writers:
            w.close()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    def close(self) -> None:
        self.cut()
