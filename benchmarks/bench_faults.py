"""Faults under a steady load: parts of the stack fail one after another while residents
keep calling and seats keep dispatching orders, and this measures what is lost, duplicated or
wrong afterwards.

The stack is the scale-out configuration, as a district runs it: Asterisk (asterisk_conf.process),
one engine (``callcenter serve --no-web``) and two web workers (``--no-engine``) joined by Redis,
all on PostgreSQL (the throwaway servers of tests/conftest.py); the SMS provider's stand-in
(sms.testing.FakeAliyun, Aliyun's documented API, through the real SDK) and the outlets' mail
server (aiosmtpd behind a front this benchmark can turn to errors or silence). One sipp answering
machine is every seat's phone (answers after RING_MS, plays speech back, holds until the caller
hangs up); residents' calls come from three sipp streams at RATE/3 each, holding 30, 45 and 60 s
after Asterisk answers, speaking (a looped 1 kHz mu-law tone) the whole call; every call a seat
answers is recorded (MixMonitor in the product's dialplan). CONSOLES seats' console pages are open
in Chromium the whole run (their own sockets, reconnects and back-off), alternating between the
two web workers; two more seats open an order every ORDER_EVERY_S through the web workers' API,
each dispatched at once to an outlet with a mobile and an e-mail address. The engine reaches AMI
through a TCP relay of this benchmark and Asterisk reaches the FastAGI route through another, so
both connections can be cut, or the route slowed, while the parts stay up.

The faults, one after another, each followed by SETTLE_S of load (the settle period):
  asterisk_restart  Asterisk stopped (SIGTERM) and started (asterisk_conf.process.restart);
  asterisk_kill     Asterisk killed with -9, then started again;
  engine_kill       the engine killed with -9 and started again (its SMS and mail workers too);
  ami_cut           the engine's AMI connection cut (relay closed, new connections refused) for
                    CUT_S while Asterisk runs on, then restored;
  agi_cut           the FastAGI route unreachable (relay closed) for CUT_S while the app runs on;
  agi_slow          every route's answer held AGI_DELAY_S (2 s) for 2 x CUT_S;
  redis_restart     Redis stopped and started (the bus, the workers' shared sessions);
  postgres_restart  PostgreSQL stopped in immediate mode (every connection lost) and started;
  sms_outage        the provider answering 503 for OUTAGE_S/2, then keeping each message and
                    answering after the sender's timeout for OUTAGE_S/2 (60 s in all);
  smtp_outage       the mail server answering 451 for OUTAGE_S/2, then silent for OUTAGE_S/2.
"back" is when the part is back: process.start returned, the engine re-synced with Asterisk (its
calls.resync on the bus), the relay listens again, the server started, the outage ended.

Truth is Asterisk's, read on an AMI connection of this benchmark (straight to Asterisk, reconnected
after an Asterisk restart): a resident call is a Newchannel in context ``from-carrier`` with
Uniqueid == Linkedid; it ended at its Hangup, or, for a call still up when Asterisk was stopped or
killed, at the fault.

Figures:
  fault_calls               resident calls this benchmark's AMI saw (Newchannel); sipp's created
                            calls are reported beside it (load.sipp_calls_created).
  fault_records_lost        of those calls, the ones with no ``callrecord`` row after the drain.
                            Calls that reached Asterisk while this AMI connection was away (just
                            after an Asterisk restart) cannot be known by linkedid: records with
                            no Newchannel seen are counted apart (records_without_ami_newchannel).
  fault_records_duplicated  linkedids with more than one ``callrecord`` or more than one
                            ``stat_call`` row of seq 0 (both unique-constrained: 0 unless the
                            constraint is gone).
  fault_console_recover_*   per fault and console (n = faults x consoles): from "back" until the
                            page shows Asterisk's truth again, i.e. the later of
                            (a) the page no longer shows a call that had ended by "back",
                            (c) the page shows the call its seat is talking on at "back" (or that
                                call ended);
                            and the first call offered to the seat after "back" within the phase
                            must pop (its lag from AgentCalled: fault_first_offer_pop_lag_*). A
                            console not right before the next fault counts in
                            fault_console_not_recovered and not in the figure. p99 only from at
                            least 1,000 samples; below that _p99_s is null and _max_s is given.
  fault_unrouted_*          during agi_cut: calls that entered while the route was unreachable
                            and popped on any seat (the engine's pops on the bus, as the web
                            workers receive them; the pages' own are reported beside), and of
                            those the ones whose pop came with ``profile_ready`` and a resident.
  fault_messages_due        the outbox rows (SMS and e-mail) of the orders the seats opened (an
                            order with no SMS or no e-mail row counts as one lost besides).
  fault_messages_lost       of those, the ones the stand-in never received (by Aliyun's OutId,
                            by the mail's Message-ID) after the drain; messages given up after
                            their attempts (dead letters, on /admin/messages) are counted in
                            messages.dead_letters.
  fault_messages_duplicated receptions beyond the first of one message.
  fault_http_5xx_not_503    the seats' order requests answered 5xx other than a 503 (a 503 must
                            carry Retry-After and a message: messages.orders_503_without_...).
Per fault (``faults``): the calls up at the fault and their recorded outcomes, calls cut by an
Asterisk fault before reaching a seat that are recorded ``abandoned`` (they should be ``failed``),
records left ``unsettled``, records lost in the fault's phase, each console's times; agi_slow:
the calls that entered and how long they took to reach the queue.

Prints progress to stderr and one JSON line last on stdout.

Sizes: BENCH_FAULTS_RATE (5 calls/s), BENCH_FAULTS_HOLDS_MS (30000,45000,60000), BENCH_FAULTS_SEATS
(240), BENCH_FAULTS_CONSOLES (4), BENCH_FAULTS_WARMUP_S (30), BENCH_FAULTS_SETTLE_S (40),
BENCH_FAULTS_CUT_S (5), BENCH_FAULTS_OUTAGE_S (60), BENCH_FAULTS_AGI_DELAY_S (2),
BENCH_FAULTS_DRAIN_S (90), BENCH_FAULTS_MESSAGES_DRAIN_S (400: retries back off up to
sms_retry_max_s), BENCH_FAULTS_ORDER_EVERY_S (2), BENCH_FAULTS_BUDGET_S (15: the time a fault
itself is expected to take; sipp's call count is planned from it), BENCH_FAULTS_AUDIO (1),
BENCH_FAULTS_BROWSER (1: Chromium pages; 0: WebSocket clients of this benchmark),
BENCH_FAULTS_LIST (all ten, comma-separated, in this order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from asterisk_conf import process  # noqa: E402
from asterisk_conf.sipp import SippUAS, run_calls  # noqa: E402
from benchmarks.common import (  # noqa: E402
    CACHE_ROOT,
    PORT_OFFSET,
    add_seats,
    fresh_data_dir,
    log,
    missing_part,
    order_body,
    percentile,
    ports,
    ring_every_seat_at,
)
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, new_manager  # noqa: E402
from callcenter.calls.models import UNSETTLED, CallRecord  # noqa: E402
from callcenter.calls.state import seat_of  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import get_engine, session_scope  # noqa: E402
from tests.conftest import SmtpFront  # noqa: E402
from tests.e2e.conftest import App, CuttableRelay  # noqa: E402

RATE = float(os.environ.get("BENCH_FAULTS_RATE", "5"))
# Residents stay this long after Asterisk answers: three sipp streams, one per hold, share the rate
HOLDS_MS = [int(h) for h in os.environ.get("BENCH_FAULTS_HOLDS_MS", "30000,45000,60000").split(",") if h]
SEATS = int(os.environ.get("BENCH_FAULTS_SEATS", "240"))
CONSOLES = int(os.environ.get("BENCH_FAULTS_CONSOLES", "4"))
WARMUP_S = float(os.environ.get("BENCH_FAULTS_WARMUP_S", "30"))
SETTLE_S = float(os.environ.get("BENCH_FAULTS_SETTLE_S", "40"))
CUT_S = float(os.environ.get("BENCH_FAULTS_CUT_S", "5"))
OUTAGE_S = float(os.environ.get("BENCH_FAULTS_OUTAGE_S", "60"))  # SMS provider / SMTP: errors, then silence
AGI_DELAY_S = float(os.environ.get("BENCH_FAULTS_AGI_DELAY_S", "2"))
DRAIN_S = float(os.environ.get("BENCH_FAULTS_DRAIN_S", "90"))
MESSAGES_DRAIN_S = float(os.environ.get("BENCH_FAULTS_MESSAGES_DRAIN_S", "400"))
ORDER_EVERY_S = float(os.environ.get("BENCH_FAULTS_ORDER_EVERY_S", "2"))
AUDIO = os.environ.get("BENCH_FAULTS_AUDIO", "1") != "0"
# The consoles: pages in Chromium (1), or this benchmark's own WebSocket clients (0)
BROWSER = os.environ.get("BENCH_FAULTS_BROWSER", "1") != "0"
ALL_FAULTS = (
    "asterisk_restart",
    "asterisk_kill",
    "engine_kill",
    "ami_cut",
    "agi_cut",
    "agi_slow",
    "redis_restart",
    "postgres_restart",
    "sms_outage",
    "smtp_outage",
)
FAULTS = [f.strip() for f in os.environ.get("BENCH_FAULTS_LIST", ",".join(ALL_FAULTS)).split(",")]
FAULTS = [f for f in FAULTS if f]
ASTERISK_FAULTS = ("asterisk_restart", "asterisk_kill")
# What a fault itself is expected to take (restart, the app's start, a cut): sipp's call count is
# planned from it so that the load lasts through the last settle period.
FAULT_BUDGET_S = float(os.environ.get("BENCH_FAULTS_BUDGET_S", "15"))
RING_MS = 300
DID = "96345"
CACHE = CACHE_ROOT / "faults"
UAS_PORT = 10881 + PORT_OFFSET
AMI_RELAY_PORT = 10839 + PORT_OFFSET  # the engine's way to AMI
AGI_RELAY_PORT = 10874 + PORT_OFFSET  # Asterisk's way to the FastAGI route
REDIS_PORT = 10879 + PORT_OFFSET
SMS_PORT = 10877 + PORT_OFFSET  # the SMS provider's stand-in (Aliyun's API)
SMTP_PORT = 10825 + PORT_OFFSET  # the outlets' mail server as the engine reaches it
PORTS = ports(
    ami_port=10838,
    sip_port=10860,
    agi_port=10873,
    web_port=10880,
    rtp_start=20000,
    rtp_end=21999,
    doctor_sip_port=10899,
    asterisk_http_port=10888,
)


def make_settings(database_url: str, redis_url: str) -> Settings:
    return set_settings(
        Settings(
            data_dir=CACHE / "var",
            database_url=database_url,
            redis_url=redis_url,
            _env_file=None,
            **PORTS,
        )
    )


def prepare(database_url: str, redis_url: str) -> tuple[Settings, list[str], list[str], int]:
    """A fresh data dir and database: demo data, seats up to SEATS, every seat's phone on one sipp
    port.

    Returns the settings, the seat extensions, the callers (national mobile numbers, one per
    planned call) and the highest call record id before the run (the demo's history)."""
    settings = make_settings(database_url, redis_url)
    fresh_data_dir(settings, CACHE)

    from callcenter.accounts.models import Account
    from callcenter.directory.models import CallQueue
    from callcenter.residents.models import Resident
    from hotline.demo import HOTLINE_QUEUE, load_demo

    with session_scope(settings) as s:
        load_demo(s, residents=300, seat_contact_base_port=None, must_change_password=False)
        have = [a for a in s.exec(select(Account).where(Account.role == "seat")).all() if a.extension]
        add_seats(s, max(0, SEATS - len(have)), 2000, "压测坐席", HOTLINE_QUEUE)
        exts = ring_every_seat_at(s, UAS_PORT)
        hotline = s.exec(select(CallQueue).where(CallQueue.name == HOTLINE_QUEUE)).one()
        hotline.wrapup = 0  # seats take the next call at once: the load stays steady
        s.add(hotline)
        s.commit()
        phones = [p for p in s.exec(select(Resident.phone)).all() if p.startswith("+861") and len(p) == 14]
        last_id = max((r or 0 for r in s.exec(select(CallRecord.id)).all()), default=0)
    phones = sorted(set(phones))
    outages = sum(1 for f in FAULTS if f in ("sms_outage", "smtp_outage"))
    calls = int(RATE * (WARMUP_S + len(FAULTS) * (SETTLE_S + FAULT_BUDGET_S) + outages * OUTAGE_S))
    callers = [phones[i % len(phones)][3:] for i in range(max(1, calls))]
    return settings, sorted(exts), callers, last_id


@dataclass
class Truth:
    """Asterisk's view of the calls, from this benchmark's own AMI connection (monotonic times)."""

    started: dict[str, float] = field(default_factory=dict)  # linkedid -> Newchannel
    hangup: dict[str, float] = field(default_factory=dict)  # linkedid -> caller channel Hangup
    connected: dict[str, tuple[float, str]] = field(default_factory=dict)  # -> AgentConnect, seat
    called: dict[tuple[str, str], float] = field(default_factory=dict)  # (linkedid, ext) -> AgentCalled
    joined: dict[str, float] = field(default_factory=dict)  # linkedid -> QueueCallerJoin
    logins: list[float] = field(default_factory=list)
    disconnects: list[float] = field(default_factory=list)

    def on_ami(self, _manager: Any, msg: Any) -> None:
        t = time.monotonic()
        name = msg.get("Event")
        uid, lid = msg.get("Uniqueid", ""), msg.get("Linkedid", "")
        if name == "Newchannel":
            if msg.get("Context") == "from-carrier" and uid and uid == lid:
                self.started.setdefault(lid, t)
        elif name == "Hangup":
            # Every caller's hangup, also of calls that began while this connection was away
            # (just after an Asterisk restart): a seat's call must be known to end.
            if uid and uid == lid:
                self.hangup.setdefault(lid, t)
        elif name == "QueueCallerJoin":
            if lid in self.started:
                self.joined.setdefault(lid, t)
        elif name in ("AgentCalled", "AgentConnect"):
            event = ev.parse_event(msg)
            if isinstance(event, ev.AgentCalled):
                self.called.setdefault((event.linkedid, seat_of(event.interface) or event.interface), t)
            elif isinstance(event, ev.AgentConnect):
                self.connected.setdefault(event.linkedid, (t, seat_of(event.interface) or event.interface))


class OwnAmi:
    """This benchmark's AMI connection straight to Asterisk; panoramisk reconnects it after an
    Asterisk restart (``ensure`` opens a new one if it did not)."""

    def __init__(self, settings: Settings, truth: Truth) -> None:
        self.settings = settings
        self.truth = truth
        self.manager: Any = None
        self.logged_in = asyncio.Event()

    def _login(self, _manager: Any) -> None:
        self.truth.logins.append(time.monotonic())
        self.logged_in.set()

    def _lost(self, _manager: Any, _exc: Any) -> None:
        self.truth.disconnects.append(time.monotonic())
        self.logged_in.clear()

    async def open(self) -> None:
        self.logged_in.clear()
        self.manager = new_manager(
            self.settings, self.truth.on_ami, on_login=self._login, on_disconnect=self._lost
        )
        self.manager.connect()
        await asyncio.wait_for(self.logged_in.wait(), 15)

    async def ensure(self, within: float = 10) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.logged_in.wait(), within)
            return
        log("own AMI connection did not come back by itself: opening a new one")
        self.close()
        await self.open()

    def close(self) -> None:
        if self.manager is not None:
            close_manager(self.manager)
            self.manager = None


@dataclass
class Console:
    """One seat's console socket(s) as the page keeps them: every pop and clear with its time."""

    ext: str
    client: Any = None
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, pop | clear, linkedid)
    pops: list[tuple[float, str, bool, bool]] = field(default_factory=list)  # t, lid, profile, resident
    opened: list[float] = field(default_factory=list)
    closed: list[float] = field(default_factory=list)

    def shown_at(self, t: float) -> str | None:
        """The call the page shows at ``t``: the latest pop, unless cleared."""
        shown = None
        for at, kind, lid in self.events:
            if at > t:
                break
            if kind == "pop":
                shown = lid
            elif kind == "clear" and shown == lid:
                shown = None
        return shown

    def changed_after(self, t: float, lid: str) -> float | None:
        """When the page stopped showing ``lid`` after ``t`` (a clear of it, or another pop)."""
        for at, kind, other in self.events:
            if at <= t:
                continue
            if (kind == "pop" and other != lid) or (kind == "clear" and other == lid):
                return at
        return None


def console_frame(con: Console, raw: str | bytes) -> None:
    """One message the console's socket received (the page's own, or this benchmark's)."""
    t = time.monotonic()
    try:
        msg = json.loads(raw)
    except (TypeError, ValueError):
        return
    kind = msg.get("type")
    lid = str(msg.get("linkedid", ""))
    if kind == "pop":
        con.events.append((t, "pop", lid))
        con.pops.append((t, lid, bool(msg.get("profile_ready")), bool(msg.get("resident"))))
    elif kind == "clear":
        con.events.append((t, "clear", lid))


async def follow_pops(sub: Any, pops: dict[str, bool]) -> None:
    """Every seat's pops as the engine publishes them: whether one carried the resident."""
    async for _topic, payload in sub:
        if payload.get("type") == "pop":
            lid = str(payload.get("linkedid", ""))
            ready = bool(payload.get("profile_ready")) and bool(payload.get("resident"))
            pops[lid] = pops.get(lid, False) or ready


async def keep_browser_console(browser: Any, base_url: str, con: Console) -> None:
    """The seat's console page open in Chromium for the whole run: the page keeps its socket
    itself (its own reconnect and back-off); every frame its socket receives is recorded. A page
    sent to the login form (its session refused) logs in again, as the seat would."""
    from hotline.demo import DEMO_PASSWORD

    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = await context.new_page()

    def on_socket(ws: Any) -> None:
        if "/ws/console" not in ws.url:
            return
        con.opened.append(time.monotonic())
        ws.on("framereceived", lambda payload: console_frame(con, payload))
        ws.on("close", lambda _ws: con.closed.append(time.monotonic()))

    page.on("websocket", on_socket)
    try:
        while True:
            if "/console" not in page.url:
                try:
                    await page.goto(base_url + "/login")
                    await page.fill("#username", f"seat{con.ext}")
                    await page.fill("#password", DEMO_PASSWORD)
                    await page.click("#login-submit")
                    await page.wait_for_url(base_url + "/console", timeout=15000)
                except Exception as exc:  # the web worker restarting: try again shortly
                    log(f"console {con.ext}: login failed ({type(exc).__name__}); again in 1 s")
            await asyncio.sleep(1)
    finally:
        with contextlib.suppress(Exception):
            await context.close()


async def keep_console(base_url: str, con: Console) -> None:
    """Keep the seat's console socket open for the whole run, as the page does: a closed socket
    is opened again every 0.5 s (logging in again when the session is refused)."""
    from hotline.demo import DEMO_PASSWORD
    from hotline.doctor import console_login, open_console_ws

    failures = 0
    while True:
        try:
            if con.client is None or failures >= 20:
                if con.client is not None:
                    await con.client.aclose()
                con.client = await console_login(base_url, f"seat{con.ext}", DEMO_PASSWORD)
                failures = 0
            ws = await open_console_ws(base_url, con.client)
        except Exception:
            failures += 1
            await asyncio.sleep(0.5)
            continue
        failures = 0
        con.opened.append(time.monotonic())
        with contextlib.suppress(Exception):
            async for raw in ws:
                console_frame(con, raw)
        con.closed.append(time.monotonic())
        with contextlib.suppress(Exception):
            await ws.close()
        await asyncio.sleep(0.5)


@dataclass
class FaultRun:
    name: str
    injected: float
    back: float
    until: float = 0.0  # the end of its phase: the next fault's injection, or the run's end


async def wait_port_closed(port: int, timeout: float = 15) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            break
        w.close()
        await asyncio.sleep(0.05)
    return time.monotonic() - started


class MailServer:
    """The outlets' mail server: aiosmtpd, keeping each mail's Message-ID as received."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from tests.conftest import free_port

        self.received: list[str] = []
        inbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                import email
                import email.policy

                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                inbox.received.append(str(msg.get("Message-ID", "")).strip("<>").split("@")[0])
                return "250 OK"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class Stack:
    """The scale-out configuration under test: Asterisk, one engine and two web workers joined
    by Redis, all on PostgreSQL; the SMS provider's and the mail server's stand-ins; the relays
    that cut the engine's AMI connection and Asterisk's FastAGI connection."""

    settings: Settings
    ast_settings: Settings
    engine: App
    webs: list[App]
    pg: Any
    redis: Any
    sms: Any
    smtp: SmtpFront  # the engine's way to the mail server, which the outage turns off
    ami_relay: CuttableRelay
    agi_relay: CuttableRelay
    bus: Any = None


async def engine_ready(stack: Stack, timeout: float = 60) -> None:
    """The engine is logged in to AMI and in step with Asterisk: its calls.resync on the bus."""
    sub = stack.bus.subscribe("calls.resync")
    try:
        await asyncio.wait_for(sub.ready.wait(), 10)
        if stack.engine.proc is None:
            await asyncio.to_thread(stack.engine.start)
        await sub.get(timeout)
    finally:
        await sub.close()


async def inject(name: str, stack: Stack) -> float:
    """Make the fault; return when the part is back (monotonic)."""
    ast_settings = stack.ast_settings
    if name == "asterisk_restart":
        await asyncio.to_thread(process.restart, ast_settings)
    elif name == "asterisk_kill":
        pid = process.status(ast_settings)["pid"]
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(process.stop, ast_settings)  # the pid file of a dead Asterisk
        # A killed Asterisk's threads hold its AMI port a moment after its main thread ended;
        # process.stop waits for them: the wait here shows whether it did (it should be ~0).
        waited = await wait_port_closed(ast_settings.ami_port)
        log(f"  the killed Asterisk's AMI port closed {waited:.2f} s after process.stop returned")
        await asyncio.to_thread(process.start, ast_settings)
    elif name == "engine_kill":
        assert stack.engine.proc is not None
        stack.engine.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(stack.engine.proc.wait, 10)
        stack.engine.proc = None
        await engine_ready(stack)  # back: logged in to AMI and re-synced
    elif name == "ami_cut":
        stack.ami_relay.cut()
        await asyncio.sleep(CUT_S)
        await stack.ami_relay.restore()
    elif name == "agi_cut":
        stack.agi_relay.cut()
        await asyncio.sleep(CUT_S)
        await stack.agi_relay.restore()
    elif name == "agi_slow":
        # Every route answers AGI_DELAY_S late for CUT_S x 2 (Asterisk waits; the app runs on)
        stack.agi_relay.first_answer_delay_s = AGI_DELAY_S
        await asyncio.sleep(CUT_S * 2)
        stack.agi_relay.first_answer_delay_s = 0.0
    elif name == "redis_restart":
        await asyncio.to_thread(stack.redis.stop)
        await asyncio.sleep(1)
        await asyncio.to_thread(stack.redis.start)
    elif name == "postgres_restart":
        await asyncio.to_thread(stack.pg.stop, "immediate")  # every connection lost, no goodbye
        await asyncio.sleep(1)
        await asyncio.to_thread(stack.pg.start)
    elif name == "sms_outage":
        # Errors (503) for half the outage, then requests kept and answered after the sender's
        # timeout (the provider may have the message: the sender must ask before sending again).
        stack.sms.errors = 10**9
        await asyncio.sleep(OUTAGE_S / 2)
        stack.sms.errors = 0
        stack.sms.response_delay = stack.settings.sms_timeout_s + 5
        await asyncio.sleep(OUTAGE_S / 2)
        stack.sms.response_delay = 0.0
    elif name == "smtp_outage":
        stack.smtp.mode = "errors"
        await asyncio.sleep(OUTAGE_S / 2)
        stack.smtp.mode = "silent"
        await asyncio.sleep(OUTAGE_S / 2)
        stack.smtp.mode = "ok"
    else:
        raise SystemExit(f"unknown fault {name!r} (known: {', '.join(ALL_FAULTS)})")
    return time.monotonic()


@dataclass
class Orders:
    """Seats opening and dispatching orders through both web workers all through the run (one
    every ORDER_EVERY_S, each to an outlet with a mobile and an e-mail address: one SMS and one
    e-mail due per order), and every answer's status."""

    created: dict[str, float] = field(default_factory=dict)  # order number -> when
    statuses: list[tuple[float, int | str, str]] = field(default_factory=list)  # t, status|error, worker
    bad_503: int = 0  # 503 without Retry-After or without a message


async def csrf_client(base_url: str, username: str) -> Any:
    import re

    from hotline.demo import DEMO_PASSWORD
    from hotline.doctor import console_login

    client = await console_login(base_url, username, DEMO_PASSWORD)
    page = await client.get("/console")
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    if m is None:
        raise RuntimeError(f"no CSRF token on {username}'s console")
    client.headers["X-CSRF-Token"] = m.group(1)
    return client


async def open_orders(stack: Stack, seats: list[str], plan: dict[str, Any], orders: Orders) -> None:
    import random

    rng = random.Random(13)
    clients: list[Any] = []
    for i, ext in enumerate(seats):
        web = stack.webs[i % len(stack.webs)]
        clients.append((web.base_url, ext, None))
    i = 0
    try:
        while True:
            base_url, ext, client = clients[i % len(clients)]
            if client is None:  # signed in when first needed, and again after a refusal
                try:
                    client = await csrf_client(base_url, f"seat{ext}")
                except Exception as exc:
                    log(f"seat{ext} could not sign in to open orders ({exc!r}); trying again")
                    await asyncio.sleep(1)
                    continue
                clients[i % len(clients)] = (base_url, ext, client)
            i += 1
            t = time.monotonic()
            body = order_body(plan, rng, i, rng.choice(plan["residents"]), f"故障压测工单 {i}")
            try:
                r = await client.post("/api/orders", json=body, timeout=30)
                orders.statuses.append((t, r.status_code, base_url))
                if r.status_code == 201:
                    orders.created[r.json()["number"]] = t
                elif r.status_code == 503 and (not r.headers.get("retry-after") or not r.text):
                    orders.bad_503 += 1
                elif r.status_code in (401, 403):  # the session was lost: sign in again
                    await client.aclose()
                    clients[(i - 1) % len(clients)] = (base_url, ext, None)
            except Exception as exc:  # a worker restarting: the seat tries the next order
                orders.statuses.append((t, type(exc).__name__, base_url))
            await asyncio.sleep(max(0.0, ORDER_EVERY_S - (time.monotonic() - t)))
    finally:
        for _b, _e, client in clients:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()


def order_plan(settings: Settings) -> dict[str, Any]:
    """What the seats' orders draw from: leaf categories, communities, outlets with a mobile and
    an e-mail address, residents with a mobile."""
    from callcenter.directory.models import Community, Outlet
    from callcenter.residents.models import Resident
    from dispatch.models import Category

    with session_scope(settings) as s:
        outlets = {o.id: o.phone for o in s.exec(select(Outlet)).all() if o.active and o.phone and o.email}
        cats = s.exec(select(Category)).all()
        parents = {c.parent_id for c in cats}
        leaves = [c.id for c in cats if c.id not in parents and c.active]
        communities = list(s.exec(select(Community.id)).all())
        residents = [(r.id, r.phone) for r in s.exec(select(Resident)).all() if r.phone.startswith("+861")]
    if not outlets or not leaves or not residents:
        raise SystemExit("the demo data has no outlet with a mobile and an e-mail address")
    return {
        "outlets": list(outlets),
        "outlet_phones": set(outlets.values()),
        "categories": leaves,
        "communities": communities,
        "residents": residents[:200],
    }


def read_messages(settings: Settings, numbers: list[str]) -> dict[str, Any]:
    """The outbox rows (SMS and e-mail) of the run's orders, and which orders have none."""
    from callcenter.records.models import MailMessage
    from dispatch.models import WorkOrder
    from sms.models import SmsMessage

    with session_scope(settings) as s:
        ids = {
            o.id: o.number for o in s.exec(select(WorkOrder).where(col(WorkOrder.number).in_(numbers))).all()
        }
        sms = s.exec(select(SmsMessage).where(col(SmsMessage.order_id).in_(list(ids)))).all()
        mail = s.exec(select(MailMessage).where(col(MailMessage.order_id).in_(list(ids)))).all()
        return {
            "orders_found": len(ids),
            "sms": [(m.id, m.order_id, m.to, m.status, m.attempts, m.last_error) for m in sms],
            "mail": [(m.id, m.order_id, m.idempotency_key, m.status, m.attempts, m.last_error) for m in mail],
            "orders_without_sms": sorted(set(ids) - {m.order_id for m in sms}),
            "orders_without_mail": sorted(set(ids) - {m.order_id for m in mail}),
        }


def read_records(settings: Settings, after_id: int) -> dict[str, CallRecord]:
    with session_scope(settings) as s:
        rows = s.exec(select(CallRecord).where(CallRecord.id > after_id)).all()  # type: ignore[operator]
        for r in rows:
            s.expunge(r)
    return {r.linkedid: r for r in rows}


def count_duplicates(settings: Settings) -> tuple[int, int]:
    """(linkedids with more than one call record, with more than one stat_call row of seq 0)."""
    with get_engine(settings).connect() as conn:
        records = conn.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT linkedid FROM callrecord GROUP BY linkedid "
                "HAVING COUNT(*) > 1) d"
            )
        ).scalar_one()
        stats = conn.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT linkedid FROM stat_call WHERE seq = 0 AND linkedid != '' "
                "GROUP BY linkedid HAVING COUNT(*) > 1) d"
            )
        ).scalar_one()
    return int(records), int(stats)


def stat_call_rows(settings: Settings, linkedids: list[str]) -> set[str]:
    """Which of ``linkedids`` the statistics (queue_log) have a stat_call row for."""
    if not linkedids:
        return set()
    with get_engine(settings).connect() as conn:
        rows = conn.execute(text("SELECT DISTINCT linkedid FROM stat_call WHERE seq = 0")).scalars().all()
    return set(linkedids) & set(rows)


def as_monotonic(at: datetime, wall0: float, mono0: float) -> float:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp() - wall0 + mono0


async def measure(
    settings: Settings, exts: list[str], callers: list[str], last_record_id: int, pg: Any, redis: Any
) -> dict[str, Any]:
    from callcenter.bus import make_bus
    from sms.testing import FakeAliyun

    wall0, mono0 = time.time(), time.monotonic()
    sms = FakeAliyun(port=SMS_PORT)
    mail = MailServer()
    smtp = SmtpFront(SMTP_PORT, mail.port)
    ami_relay = CuttableRelay(AMI_RELAY_PORT, settings.ami_port)
    agi_relay = CuttableRelay(AGI_RELAY_PORT, settings.agi_port)
    # The engine's messages go to the stand-ins; its settings come from its environment.
    env = {
        **sms.settings_env(),
        "CALLCENTER_SMTP_HOST": "127.0.0.1",
        "CALLCENTER_SMTP_PORT": str(SMTP_PORT),
        "CALLCENTER_MAIL_FROM": "hotline@anning.example",
    }
    # Asterisk reaches the route through the AGI relay; the engine reaches AMI through the AMI relay.
    ast_settings = settings.model_copy(update={"agi_port": AGI_RELAY_PORT})
    engine = App(
        settings.model_copy(update={"ami_port": AMI_RELAY_PORT}), "--no-web", name="engine-faults", env=env
    )
    webs = [
        App(
            settings.model_copy(update={"web_port": settings.web_port + 1 + i}),
            "--no-engine",
            name=f"web-{i}",
        )
        for i in range(2)
    ]
    stack = Stack(settings, ast_settings, engine, webs, pg, redis, sms, smtp, ami_relay, agi_relay)
    truth = Truth()
    own = OwnAmi(settings, truth)
    consoles = [Console(ext) for ext in exts[:CONSOLES]]
    orders = Orders()
    tasks: list[asyncio.Task[Any]] = []
    runs: list[FaultRun] = []
    sipp_results: list[Any] = []
    playwright: Any = None
    browser: Any = None
    bus_pops: dict[str, bool] = {}  # linkedid -> a pop of it carried the resident's profile
    plan = await asyncio.to_thread(order_plan, settings)
    try:
        sms.start()
        mail.start()
        await smtp.start()
        await ami_relay.start()
        await agi_relay.start()
        stack.bus = make_bus(settings.redis_url)
        await stack.bus.start()
        pops_sub = stack.bus.subscribe("seat.*")
        await pops_sub.ready.wait()
        tasks.append(asyncio.create_task(follow_pops(pops_sub, bus_pops)))
        await asyncio.to_thread(process.start, ast_settings)
        log("Asterisk up")
        await engine_ready(stack)
        log("engine up (AMI through the relay)")
        for web in webs:
            await asyncio.to_thread(web.start)
        log(f"web workers up: {', '.join(w.base_url for w in webs)}")
        await own.open()
        # The consoles alternate between the two web workers, as a load balancer spreads seats.
        if BROWSER:
            from playwright.async_api import async_playwright

            from tests.conftest import CHROMIUM, CHROMIUM_ARGS

            playwright = await async_playwright().start()
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            tasks += [
                asyncio.create_task(keep_browser_console(browser, webs[i % len(webs)].base_url, c))
                for i, c in enumerate(consoles)
            ]
        else:
            tasks += [
                asyncio.create_task(keep_console(webs[i % len(webs)].base_url, c))
                for i, c in enumerate(consoles)
            ]
        deadline = time.monotonic() + 30
        while any(not c.opened for c in consoles) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        log(f"{sum(bool(c.opened) for c in consoles)}/{len(consoles)} consoles connected: {exts[:CONSOLES]}")
        order_seats = exts[CONSOLES : CONSOLES + 2]
        tasks.append(asyncio.create_task(open_orders(stack, order_seats, plan, orders)))
        audio = None
        if AUDIO:
            from asterisk_conf.tones import tone_samples, ulaw_bytes

            audio = CACHE / "resident.ul"  # the resident speaks: a 1 kHz tone, 8 kHz mu-law, looped
            audio.write_bytes(ulaw_bytes(tone_samples(1000, 10)))
        uas_class: Any = SippUAS
        uas_options: dict[str, Any] = {}
        if AUDIO:
            from asterisk_conf.sipp_media import MediaUAS

            uas_class, uas_options = MediaUAS, {"audio": True}
        with uas_class(port=UAS_PORT, ring_ms=RING_MS, talk_ms=0, **uas_options) as uas:
            planned_s = len(callers) / RATE
            streams = [callers[k :: len(HOLDS_MS)] for k in range(len(HOLDS_MS))]
            log(
                f"placing {len(callers)} calls at {RATE:g}/s over {planned_s:.0f} s (holds "
                f"{', '.join(str(h) for h in HOLDS_MS)} ms, audio {'on' if AUDIO else 'off'})"
            )
            sipps = [
                asyncio.create_task(
                    run_calls(
                        settings,
                        DID,
                        stream,
                        rate=RATE / len(HOLDS_MS),
                        hold_ms=hold,
                        timeout=planned_s + hold / 1000 + 300,
                        audio=audio,
                    )
                )
                for stream, hold in zip(streams, HOLDS_MS, strict=True)
            ]
            load_started = time.monotonic()
            await asyncio.sleep(WARMUP_S)
            for i, name in enumerate(FAULTS):
                log(f"fault {i + 1}/{len(FAULTS)}: {name}")
                injected = time.monotonic()
                back = await inject(name, stack)
                runs.append(FaultRun(name, injected, back))
                log(f"  {name}: back after {back - injected:.1f} s")
                if name in ASTERISK_FAULTS:
                    await own.ensure()
                await asyncio.sleep(SETTLE_S)
            faults_done = time.monotonic()
            if faults_done - load_started > planned_s:
                log(
                    f"WARNING: the faults took {faults_done - load_started:.0f} s, longer than the load "
                    f"({planned_s:.0f} s): the last settle period ran partly without new calls"
                )
            log("faults done; waiting for sipp's last calls")
            tasks[-1].cancel()  # no more orders: the messages due are known
            sipp_results = list(await asyncio.gather(*sipps))
            for r in sipp_results:
                log(
                    f"sipp: created {r.calls}, successful {r.successful}, failed {r.failed}, "
                    f"rc {r.returncode}"
                )
            log(f"seat phone: {uas.stats().get('SuccessfulCall(C)', '?')} calls answered")
        run_end = time.monotonic()
        for i, r in enumerate(runs):
            r.until = runs[i + 1].injected if i + 1 < len(runs) else faults_done

        # Drain: every call seen has its record and none is left unsettled, or DRAIN_S passed.
        deadline = time.monotonic() + DRAIN_S
        while True:
            records = await asyncio.to_thread(read_records, settings, last_record_id)
            waiting = [lid for lid in truth.started if lid not in records]
            unsettled = [r for r in records.values() if r.outcome == UNSETTLED]
            if (not waiting and not unsettled) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        log(
            f"drain: {len(waiting)} calls without a record, {len(unsettled)} unsettled after "
            f"{time.monotonic() - run_end:.0f} s"
        )
        # Messages: every one of the run's orders' messages sent or given up (retries back off
        # up to sms_retry_max_s), or MESSAGES_DRAIN_S passed.
        deadline = time.monotonic() + MESSAGES_DRAIN_S
        while True:
            messages = await asyncio.to_thread(read_messages, settings, list(orders.created))
            pending = [
                m for m in messages["sms"] + messages["mail"] if m[3] not in ("sent", "delivered", "failed")
            ]
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        log(f"messages drain: {len(pending)} still pending after {time.monotonic() - run_end:.0f} s")
        dup_records, dup_stats = await asyncio.to_thread(count_duplicates, settings)
        lost = [lid for lid in truth.started if lid not in records]
        in_stats = await asyncio.to_thread(stat_call_rows, settings, lost)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for c in consoles:
            if c.client is not None:
                with contextlib.suppress(Exception):
                    await c.client.aclose()
        if browser is not None:
            with contextlib.suppress(Exception):
                await browser.close()
        if playwright is not None:
            with contextlib.suppress(Exception):
                await playwright.stop()
        own.close()
        for web in webs:
            await asyncio.to_thread(web.stop)
        await asyncio.to_thread(engine.stop)
        await asyncio.to_thread(process.stop, ast_settings)
        if stack.bus is not None:
            with contextlib.suppress(Exception):
                await stack.bus.close()
        ami_relay.close()
        agi_relay.close()
        smtp.close()
        mail.stop()
        sms.stop()

    result = analyse(
        truth,
        consoles,
        runs,
        records,
        in_stats,
        bus_pops,
        sipp_results,
        dup_records,
        dup_stats,
        wall0,
        mono0,
        run_end,
    )
    result.update(analyse_messages(messages, sms, mail, orders, plan["outlet_phones"]))
    return result


def analyse(
    truth: Truth,
    consoles: list[Console],
    runs: list[FaultRun],
    records: dict[str, CallRecord],
    lost_in_stats: set[str],
    bus_pops: dict[str, bool],
    sipp_results: list[Any],
    dup_records: int,
    dup_stats: int,
    wall0: float,
    mono0: float,
    run_end: float,
) -> dict[str, Any]:
    # A call still up when Asterisk was stopped or killed ended with it (no Hangup reaches us).
    ended = dict(truth.hangup)
    for r in runs:
        if r.name in ASTERISK_FAULTS:
            for lid, s in truth.started.items():
                if s < r.back and lid not in ended:
                    ended[lid] = r.injected
    first_run = runs[0].injected if runs else run_end

    def rel(t: float) -> float:
        return round(t - mono0, 2)

    def at_seat(lid: str, before: float) -> bool:
        c = truth.connected.get(lid)
        return c is not None and c[0] < before

    recover: list[float] = []
    offer_lags: list[float] = []  # first call offered to a console's seat after "back" -> its pop
    not_recovered = 0
    faults: dict[str, Any] = {}
    records_unseen = [lid for lid in records if lid not in truth.started]
    for r in runs:
        d: dict[str, Any] = {"injected_at_s": rel(r.injected), "back_after_s": round(r.back - r.injected, 2)}
        # (calls cut by an earlier Asterisk fault have no Hangup: they ended at that fault)
        up = [
            lid
            for lid, st in truth.started.items()
            if st < r.injected and ended.get(lid, float("inf")) >= r.injected
        ]
        d["calls_up_at_fault"] = len(up)
        window = [lid for lid, t in ended.items() if r.injected <= t <= r.back]
        d["calls_ended_in_fault"] = len(window)
        if r.name in ASTERISK_FAULTS:
            cut = [lid for lid in up if not at_seat(lid, r.injected)]
            seated = [lid for lid in up if at_seat(lid, r.injected)]
            d["cut_before_a_seat"] = len(cut)
            d["cut_before_a_seat_outcomes"] = dict(Counter(records[x].outcome for x in cut if x in records))
            d["cut_recorded_abandoned_not_failed"] = sum(
                1 for x in cut if x in records and records[x].outcome == "abandoned"
            )
            d["cut_at_a_seat"] = len(seated)
            d["cut_at_a_seat_outcomes"] = dict(Counter(records[x].outcome for x in seated if x in records))
        else:
            # Asterisk ran on: a caller who left meanwhile hung up by themselves.
            alone = [lid for lid in window if not at_seat(lid, ended[lid])]
            d["ended_in_fault_before_a_seat"] = len(alone)
            d["ended_in_fault_before_a_seat_outcomes"] = dict(
                Counter(records[x].outcome for x in alone if x in records)
            )
            d["ended_in_fault_before_a_seat_recorded_failed"] = sum(
                1 for x in alone if x in records and records[x].outcome == "failed"
            )
        phase = [lid for lid, s in truth.started.items() if r.injected <= s < r.until]
        touched = set(up) | set(window) | set(phase)
        d["calls_in_phase"] = len(phase)
        d["records_lost_in_phase"] = sum(1 for x in phase if x not in records)
        d["records_lost_of_calls_up_at_fault"] = sum(1 for x in up if x not in records)
        d["records_lost_of_calls_ended_in_fault"] = sum(1 for x in window if x not in records)
        d["unsettled"] = sum(1 for x in touched if x in records and records[x].outcome == UNSETTLED)
        d["records_without_ami_newchannel_in_phase"] = sum(
            1
            for lid in records_unseen
            if r.injected <= as_monotonic(records[lid].started_at, wall0, mono0) < r.until
        )
        per_console = []
        for con in consoles:
            # Asterisk's truth at "back": the call this seat is talking on (if any)
            talking = [
                (t, lid)
                for lid, (t, seat) in truth.connected.items()
                if seat == con.ext and t < r.back and ended.get(lid, float("inf")) > r.back
            ]
            current = max(talking)[1] if talking else None
            shown = con.shown_at(r.back)
            # (a) a call that had ended by "back" no longer shown
            t_a: float | None = r.back
            if shown is not None and shown != current and ended.get(shown, float("inf")) <= r.back:
                t_a = con.changed_after(r.back, shown)
            # (c) the seat's current call shown (a pop of it, or its end if that came first)
            t_c: float | None = r.back
            if current is not None and shown != current:
                pop_c = next(
                    (at for at, kind, lid in con.events if kind == "pop" and lid == current and at > r.back),
                    None,
                )
                end_c = ended.get(current)
                t_c = min(x for x in (pop_c, end_c) if x is not None) if (pop_c or end_c) else None
            # (b) the first call offered to the seat after "back" pops (its lag from the offer)
            offers = sorted(
                (t, lid) for (lid, ext), t in truth.called.items() if ext == con.ext and r.back < t < r.until
            )
            offer_lag: float | None = None
            offer_popped = True
            if offers:
                t_offer, lid_offer = offers[0]
                pop_b = next(
                    (
                        at
                        for at, kind, lid in con.events
                        if kind == "pop" and lid == lid_offer and at >= t_offer - 1
                    ),
                    None,
                )
                offer_popped = pop_b is not None
                offer_lag = None if pop_b is None else pop_b - t_offer
            entry: dict[str, Any] = {
                "ext": con.ext,
                "talking_at_back": current,
                "stale_at_back": shown if t_a != r.back else None,
                "stale_dropped_s": None if t_a is None else round(t_a - r.back, 3),
                "current_shown_s": None if t_c is None else round(t_c - r.back, 3),
                "first_offer_after_back_s": round(offers[0][0] - r.back, 3) if offers else None,
                "first_offer_pop_lag_s": None if offer_lag is None else round(offer_lag, 3),
                "sockets_opened_in_phase": sum(1 for t in con.opened if r.injected <= t < r.until),
            }
            if offer_lag is not None:
                offer_lags.append(offer_lag)
            if t_a is not None and t_c is not None and t_a < r.until and t_c < r.until and offer_popped:
                entry["recover_s"] = round(max(t_a, t_c) - r.back, 3)
                recover.append(max(t_a, t_c) - r.back)
            else:
                entry["recover_s"] = None
                not_recovered += 1
            per_console.append(entry)
        d["consoles"] = per_console
        if r.name == "agi_cut":
            unrouted = {lid for lid, s in truth.started.items() if r.injected <= s < r.back}
            on_pages: dict[str, bool] = {}
            for con in consoles:
                for _t, lid, ready, resident in con.pops:
                    if lid in unrouted:
                        on_pages[lid] = on_pages.get(lid, False) or (ready and resident)
            # Every seat's pops (the bus, as the web workers receive them), not only the pages'
            popped = {lid: ok for lid, ok in bus_pops.items() if lid in unrouted}
            d["unrouted_calls_entered"] = len(unrouted)
            d["unrouted_calls_popped"] = len(popped)
            d["unrouted_pops_with_profile"] = sum(popped.values())
            d["unrouted_calls_popped_on_the_pages"] = len(on_pages)
            d["unrouted_pops_with_profile_on_the_pages"] = sum(on_pages.values())
        if r.name == "agi_slow":
            # The route answered late: every caller must still reach the queue (2 s later)
            slow = [lid for lid, s in truth.started.items() if r.injected <= s < r.back]
            waits = sorted(truth.joined[x] - truth.started[x] for x in slow if x in truth.joined)
            d["slow_route_calls_entered"] = len(slow)
            d["slow_route_calls_reached_queue"] = len(waits)
            d["slow_route_to_queue_p50_s"] = round(percentile(waits, 50), 2) if waits else None
            d["slow_route_to_queue_max_s"] = round(waits[-1], 2) if waits else None
        faults[r.name] = d
        log(f"{r.name}: {json.dumps(d, ensure_ascii=False)}")

    seen = list(truth.started)
    lost = [lid for lid in seen if lid not in records]
    outcomes = Counter(records[lid].outcome for lid in seen if lid in records)
    log(
        f"calls: {len(seen)} seen on AMI ({sum(1 for s in truth.started.values() if s < first_run)} "
        f"before the first fault), {len(records)} records, {len(lost)} without a record, "
        f"{len(records_unseen)} records without a Newchannel seen; outcomes {dict(outcomes)}"
    )
    if lost:
        log(
            f"calls without a record ({len(lost_in_stats)} of them with a stat_call row from queue_log): "
            + ", ".join(f"{lid} (ended {rel(ended[lid]) if lid in ended else '?'} s)" for lid in lost[:20])
        )
    sipp_created = sum(r.calls for r in sipp_results) if sipp_results else None
    if sipp_created is not None:
        log(
            f"cross-check: sipp created {sipp_created} calls, {len(records)} records: "
            f"{sipp_created - len(records)} created calls left no record (sent while Asterisk "
            "was down, or lost)"
        )
    if records_unseen:
        log("records without a Newchannel seen: " + ", ".join(records_unseen[:20]))
    log(
        f"duplicates: {dup_records} linkedids with >1 call record, {dup_stats} with >1 stat_call seq 0 "
        "(both unique-constrained in the schema: a duplicate write fails instead, so 0 is expected)"
    )
    log(f"own AMI connection: {len(truth.logins)} logins, {len(truth.disconnects)} losses")
    n = len(recover)
    if recover:
        log(
            f"console recovery s (n={n}): min {min(recover):.2f}, p50 {percentile(recover, 50):.2f}, "
            f"max {max(recover):.2f}; {not_recovered} console(s) not recovered within their phase"
        )
    agi = faults.get("agi_cut", {})
    return {
        "bench": "faults",
        "fault_calls": len(seen),
        "fault_records_lost": len(lost),
        "fault_records_duplicated": dup_records + dup_stats,
        "fault_console_recover_p99_s": round(percentile(recover, 99), 3) if n >= 1000 else None,
        "fault_console_recover_max_s": round(max(recover), 3) if recover else None,
        "fault_console_recover_n": n,
        "fault_console_not_recovered": not_recovered,
        "fault_first_offer_pop_lag_p50_s": round(percentile(offer_lags, 50), 3) if offer_lags else None,
        "fault_first_offer_pop_lag_max_s": round(max(offer_lags), 3) if offer_lags else None,
        "fault_first_offer_pop_lag_n": len(offer_lags),
        "fault_unrouted_pops_with_profile": agi.get("unrouted_pops_with_profile"),
        "fault_unrouted_calls": agi.get("unrouted_calls_popped"),
        "faults": faults,
        "load": {
            "rate_per_s": RATE if RATE != int(RATE) else int(RATE),
            "holds_ms": HOLDS_MS,
            "audio": AUDIO,
            "recording": "MixMonitor of every call a seat answers (the product's dialplan)",
            "topology": "PostgreSQL, Redis, one engine, two web workers",
            "outage_s": OUTAGE_S,
            "agi_delay_s": AGI_DELAY_S,
            "seats": SEATS,
            "consoles": len(consoles),
            "consoles_in": "Chromium (the console page)"
            if BROWSER
            else "WebSocket clients of this benchmark",
            "seat_ring_ms": RING_MS,
            "warmup_s": WARMUP_S,
            "settle_s": SETTLE_S,
            "cut_s": CUT_S,
            "run_s": round(run_end - mono0, 1),
            "fault_calls_source": "own AMI Newchannel (from-carrier, Uniqueid == Linkedid)",
            "sipp_calls_created": sipp_created,
            "sipp_calls_successful": sum(r.successful for r in sipp_results) if sipp_results else None,
            "sipp_calls_failed": sum(r.failed for r in sipp_results) if sipp_results else None,
            "records": len(records),
            "records_without_ami_newchannel": len(records_unseen),
            # a record no call of Asterisk's can have (an event without the caller's channel)
            "records_with_empty_linkedid": sum(1 for lid in records if not lid),
            "records_lost_with_stat_call_row": len(lost_in_stats),
            # sipp's count cannot be split by fault: calls it created that left no record at all,
            # including those sent while Asterisk was down (they never reached it)
            "sipp_calls_created_minus_records": (
                sipp_created - len(records) if sipp_created is not None else None
            ),
            "outcomes": dict(outcomes),
        },
    }


def analyse_messages(
    messages: dict[str, Any], sms: Any, mail: MailServer, orders: Orders, outlet_phones: set[str]
) -> dict[str, Any]:
    """Messages due (one SMS and one e-mail to the outlet of every order the seats opened) against
    what the provider's and the mail server's stand-ins received."""
    import hashlib
    from types import SimpleNamespace

    from sms.providers import AliyunProvider

    n_orders = len(orders.created)
    sms_rows, mail_rows = messages["sms"], messages["mail"]
    # Aliyun's OutId carries our row id; each mail's Message-ID is derived from its key (callcenter/mail.py)
    sms_got = Counter(m["out_id"] for m in sms.messages)
    mail_got = Counter(mail.received)
    outlet_sms = [m for m in sms_rows if m[2] in outlet_phones]
    sms_ids = {m[0]: AliyunProvider.out_id(cast(Any, SimpleNamespace(id=m[0]))) for m in sms_rows}
    mail_ids = {m[0]: hashlib.sha256(m[2].encode()).hexdigest()[:32] for m in mail_rows}
    sms_lost = [m for m in sms_rows if sms_got[sms_ids[m[0]]] == 0]
    mail_lost = [m for m in mail_rows if mail_got[mail_ids[m[0]]] == 0]
    sms_dup = sum(max(0, sms_got[sms_ids[m[0]]] - 1) for m in sms_rows)
    mail_dup = sum(max(0, mail_got[mail_ids[m[0]]] - 1) for m in mail_rows)
    # Due by the orders themselves: an order that has no outlet SMS or no outlet e-mail row lost it
    # before the outbox (the dispatch and its messages are one transaction: expected 0)
    no_sms = len(messages["orders_without_sms"])
    no_mail = len(messages["orders_without_mail"])
    dead = [m for m in sms_rows + mail_rows if m[3] == "failed"]
    statuses = Counter(str(st) for _t, st, _w in orders.statuses)
    server_errors = sum(
        1 for _t, st, _w in orders.statuses if isinstance(st, int) and st >= 500 and st != 503
    )
    log(
        f"orders: {n_orders} opened ({dict(statuses)}); due {len(outlet_sms)} outlet SMS of "
        f"{len(sms_rows)} SMS rows, {len(mail_rows)} e-mails; provider got {sum(sms_got.values())} SMS "
        f"requests kept, mail server {sum(mail_got.values())} mails"
    )
    for m in (sms_lost + mail_lost)[:20]:
        log(f"  not received: {m}")
    return {
        "fault_messages_lost": len(sms_lost) + len(mail_lost) + no_sms + no_mail,
        "fault_messages_duplicated": sms_dup + mail_dup,
        "fault_messages_due": len(sms_rows) + len(mail_rows) + no_sms + no_mail,
        "fault_http_5xx_not_503": server_errors,
        "messages": {
            "orders_opened": n_orders,
            "order_answers": dict(statuses),
            "orders_503_without_retry_after_or_message": orders.bad_503,
            "sms_due": len(sms_rows),
            "sms_to_outlets": len(outlet_sms),
            "sms_received": sum(sms_got.values()),
            "sms_lost": len(sms_lost),
            "sms_duplicated": sms_dup,
            "mail_due": len(mail_rows),
            "mail_received": sum(mail_got.values()),
            "mail_lost": len(mail_lost),
            "mail_duplicated": mail_dup,
            "orders_without_sms": no_sms,
            "orders_without_mail": no_mail,
            "dead_letters": len(dead),
            "dead_letter_reasons": dict(Counter(m[5][:60] for m in dead)),
            "provider_send_requests": sms.requests,
            "outcome_statuses": dict(Counter(m[3] for m in sms_rows + mail_rows)),
        },
    }


def main() -> None:
    started = time.monotonic()
    missing = [
        what
        for what, here in (
            ("sipp (apt-get install sip-tester)", shutil.which("sipp")),
            ("redis-server (apt-get install redis-server)", shutil.which("redis-server")),
            ("PostgreSQL (apt-get install postgresql)", any(Path("/usr/lib/postgresql").glob("*/bin"))),
        )
        if not here
    ]
    if BROWSER and not Path("/usr/bin/chromium").exists():
        missing.append("Chromium (apt-get install chromium), or BENCH_FAULTS_BROWSER=0")
    if missing:
        # The faults are those of the scale-out configuration: without its parts nothing runs.
        missing_part(", ".join(missing))
        print(json.dumps({"bench": "faults", "fault_calls": None, "faults": {}, "load": {}}))
        return
    from tests.conftest import PostgresServer, RedisServer

    pg = PostgresServer()
    redis = RedisServer(CACHE / "redis", port=REDIS_PORT).start()
    try:
        settings, exts, callers, last_id = prepare(pg.url, redis.url)
        if len(exts) < CONSOLES + 2:
            raise SystemExit(f"{len(exts)} seats, fewer than {CONSOLES} consoles and 2 seats opening orders")
        took = time.monotonic() - started
        log(f"data dir and database ready ({len(exts)} seats) in {took:.1f} s; faults: {', '.join(FAULTS)}")
        result = asyncio.run(measure(settings, exts, callers, last_id, pg, redis))
    finally:
        redis.stop()
        pg.remove()
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
