"""Faults under a steady load (issue 13): parts of the stack fail one after another while residents
keep calling, and this measures what is lost, duplicated or wrong afterwards.

The stack runs as in production: Asterisk (asterisk_conf.process), ``callcenter serve`` in its own
process, one sipp answering machine as every seat's phone (answers after RING_MS, holds until the
caller hangs up) and residents' calls placed by one sipp at a fixed rate for the whole run, from
demo residents' numbers. CONSOLES seats are logged in to the console over WebSockets the whole run;
a socket that closes is opened again every 0.5 s, as the page does (the page backs off from 0.5 s).
The engine reaches AMI through a TCP relay of this benchmark and Asterisk reaches the FastAGI route
through another, from the start, so both connections can be cut while the parts stay up.

The faults, one after another, each followed by SETTLE_S of load (the settle period):
  asterisk_restart  Asterisk stopped (SIGTERM) and started (asterisk_conf.process.restart);
  asterisk_kill     Asterisk killed with -9, then started again;
  engine_kill       ``callcenter serve`` killed with -9 and started again (consoles reconnect);
  ami_cut           the engine's AMI connection cut (relay closed, new connections refused) for
                    CUT_S while Asterisk runs on, then restored;
  agi_cut           the FastAGI route unreachable (relay closed) for CUT_S while the app runs on.
"back" is when the part is back: process.start returned, app.start returned (the web answers and
the engine is logged in to AMI) or the relay listens again.

Truth is Asterisk's, read on an AMI connection of this benchmark (straight to Asterisk, reconnected
after an Asterisk restart): a resident call is a Newchannel in context ``from-carrier`` with
Uniqueid == Linkedid; it ended at its Hangup, or, for a call still up when Asterisk was stopped or
killed, at the fault.

Figures:
  fault_calls               resident calls this benchmark's AMI saw (Newchannel); sipp's created
                            calls are reported beside it (load.sipp_calls_created), they include
                            calls sent while Asterisk was down, which never reached it; sipp's
                            total less the records is the cross-check (load, not per fault:
                            sipp counts for the whole run only).
  fault_records_lost        of those calls, the ones with no ``callrecord`` row after the drain.
                            Calls that reached Asterisk while this AMI connection was away (just
                            after an Asterisk restart) cannot be known by linkedid: records with
                            no Newchannel seen are counted apart (records_without_ami_newchannel).
  fault_records_duplicated  linkedids with more than one ``callrecord`` or more than one
                            ``stat_call`` row of seq 0 (both unique-constrained: 0 unless the
                            constraint is gone).
  fault_console_recover_*   per fault and console (n = faults x consoles): from "back" until the
                            console shows Asterisk's truth again, i.e. the later of
                            (a) the page no longer shows a call that had ended by "back" (a
                                ``clear`` for it, or a pop of another call replacing it, as the
                                page's single pop does; the page keeps its pop over a reconnect),
                            (b) a pop arrives for a call this console had not shown before "back".
                            A console not recovered before the next fault counts in
                            fault_console_not_recovered and not in the figure. p99 only from at
                            least 1,000 samples; below that _p99_s is null and _max_s is given.
  fault_unrouted_*          during agi_cut: calls that entered while the route was unreachable
                            and popped on a console, and of those the ones whose pop came with
                            ``profile_ready`` and a resident.
  fault_messages_*          null: not measured here (tests/sms, tests/callcenter/test_mail.py).
Per fault (``faults``): the calls up at the fault and their recorded outcomes, calls cut by an
Asterisk fault before reaching a seat that are recorded ``abandoned`` (they should be ``failed``),
records left ``unsettled``, records lost in the fault's phase and each console's (a) and (b) times.

Prints progress to stderr and one JSON line last on stdout.

Sizes: BENCH_FAULTS_RATE (2 calls/s), BENCH_FAULTS_HOLD_MS (15000: how long a resident stays after
Asterisk answers), BENCH_FAULTS_SEATS (8), BENCH_FAULTS_CONSOLES (4), BENCH_FAULTS_WARMUP_S (20),
BENCH_FAULTS_SETTLE_S (40), BENCH_FAULTS_CUT_S (5), BENCH_FAULTS_DRAIN_S (60),
BENCH_FAULTS_BUDGET_S (15: the time a fault itself is expected to take; sipp places
RATE x (WARMUP_S + faults x (SETTLE_S + BUDGET_S)) calls), BENCH_FAULTS_LIST (all five,
comma-separated, in this order).
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlmodel import select  # noqa: E402

from asterisk_conf import process  # noqa: E402
from asterisk_conf.sipp import SippUAS, run_calls  # noqa: E402
from benchmarks.common import (  # noqa: E402
    CACHE_ROOT,
    PORT_OFFSET,
    fresh_data_dir,
    log,
    missing_part,
    percentile,
    ports,
)
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, new_manager  # noqa: E402
from callcenter.calls.models import UNSETTLED, CallRecord  # noqa: E402
from callcenter.calls.state import seat_of  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import get_engine, session_scope  # noqa: E402
from tests.e2e.conftest import App, CuttableRelay  # noqa: E402

RATE = float(os.environ.get("BENCH_FAULTS_RATE", "2"))
HOLD_MS = int(os.environ.get("BENCH_FAULTS_HOLD_MS", "15000"))
SEATS = int(os.environ.get("BENCH_FAULTS_SEATS", "8"))
CONSOLES = int(os.environ.get("BENCH_FAULTS_CONSOLES", "4"))
WARMUP_S = float(os.environ.get("BENCH_FAULTS_WARMUP_S", "20"))
SETTLE_S = float(os.environ.get("BENCH_FAULTS_SETTLE_S", "40"))
CUT_S = float(os.environ.get("BENCH_FAULTS_CUT_S", "5"))
DRAIN_S = float(os.environ.get("BENCH_FAULTS_DRAIN_S", "60"))
ALL_FAULTS = ("asterisk_restart", "asterisk_kill", "engine_kill", "ami_cut", "agi_cut")
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
PORTS = ports(
    ami_port=10838,
    sip_port=10860,
    agi_port=10873,
    web_port=10880,
    rtp_start=10200,
    rtp_end=10599,
    doctor_sip_port=10899,
    asterisk_http_port=10888,
)


def make_settings() -> Settings:
    return set_settings(Settings(data_dir=CACHE / "var", _env_file=None, **PORTS))


def prepare() -> tuple[Settings, list[str], list[str], int]:
    """A fresh data dir: demo data, seats up to SEATS, every seat's phone on one sipp port.

    Returns the settings, the seat extensions, the callers (national mobile numbers, one per
    planned call) and the highest call record id before the run (the demo's history)."""
    settings = make_settings()
    fresh_data_dir(settings, CACHE)

    from callcenter.accounts.models import Account, QueueMembership
    from callcenter.accounts.service import hash_password
    from callcenter.directory.models import CallQueue
    from callcenter.residents.models import Resident
    from hotline.demo import DEMO_PASSWORD, HOTLINE_QUEUE, load_demo

    with session_scope(settings) as s:
        load_demo(s, residents=300, seat_contact_base_port=None, must_change_password=False)
        have = [a for a in s.exec(select(Account).where(Account.role == "seat")).all() if a.extension]
        pw = hash_password(DEMO_PASSWORD)
        for i in range(1, max(0, SEATS - len(have)) + 1):
            ext = str(2000 + i)
            acc = Account(
                username=f"seat{ext}",
                display_name=f"压测坐席{i:02d}",
                password_hash=pw,
                role="seat",
                must_change_password=False,
                extension=ext,
            )
            s.add(acc)
            s.flush()
            s.add(QueueMembership(account_id=acc.id, queue_name=HOTLINE_QUEUE, penalty=0))
        s.flush()
        exts = []
        for acc in s.exec(select(Account).where(Account.role == "seat")).all():
            if not acc.extension:
                continue
            acc.sip_contact = f"sip:seat{acc.extension}@127.0.0.1:{UAS_PORT}"
            s.add(acc)
            exts.append(acc.extension)
        hotline = s.exec(select(CallQueue).where(CallQueue.name == HOTLINE_QUEUE)).one()
        hotline.wrapup = 0  # seats take the next call at once: the load stays steady
        s.add(hotline)
        s.commit()
        phones = [p for p in s.exec(select(Resident.phone)).all() if p.startswith("+861") and len(p) == 14]
        last_id = max((r or 0 for r in s.exec(select(CallRecord.id)).all()), default=0)
    phones = sorted(set(phones))
    calls = int(RATE * (WARMUP_S + len(FAULTS) * (SETTLE_S + FAULT_BUDGET_S)))
    callers = [phones[i % len(phones)][3:] for i in range(max(1, calls))]
    return settings, sorted(exts), callers, last_id


@dataclass
class Truth:
    """Asterisk's view of the calls, from this benchmark's own AMI connection (monotonic times)."""

    started: dict[str, float] = field(default_factory=dict)  # linkedid -> Newchannel
    hangup: dict[str, float] = field(default_factory=dict)  # linkedid -> caller channel Hangup
    connected: dict[str, tuple[float, str]] = field(default_factory=dict)  # -> AgentConnect, seat
    called: dict[tuple[str, str], float] = field(default_factory=dict)  # (linkedid, ext) -> AgentCalled
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
            if uid and uid == lid and lid in self.started:
                self.hangup.setdefault(lid, t)
        elif name in ("AgentCalled", "AgentConnect"):
            event = ev.parse_event(msg)
            if isinstance(event, ev.AgentCalled):
                self.called.setdefault((event.linkedid, seat_of(event.interface) or event.interface), t)
            elif isinstance(event, ev.AgentConnect):
                self.connected.setdefault(event.linkedid, (t, seat_of(event.interface) or event.interface))

    def open_at(self, t: float) -> list[str]:
        return [lid for lid, s in self.started.items() if s < t and self.hangup.get(lid, float("inf")) >= t]


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


async def keep_console(app: App, con: Console) -> None:
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
                con.client = await console_login(app.base_url, f"seat{con.ext}", DEMO_PASSWORD)
                failures = 0
            ws = await open_console_ws(app.base_url, con.client)
        except Exception:
            failures += 1
            await asyncio.sleep(0.5)
            continue
        failures = 0
        con.opened.append(time.monotonic())
        with contextlib.suppress(Exception):
            async for raw in ws:
                t = time.monotonic()
                msg = json.loads(raw)
                kind = msg.get("type")
                lid = str(msg.get("linkedid", ""))
                if kind == "pop":
                    con.events.append((t, "pop", lid))
                    con.pops.append((t, lid, bool(msg.get("profile_ready")), bool(msg.get("resident"))))
                elif kind == "clear":
                    con.events.append((t, "clear", lid))
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


async def inject(
    name: str, app: App, ast_settings: Settings, ami_relay: CuttableRelay, agi_relay: CuttableRelay
) -> float:
    """Make the fault; return when the part is back (monotonic)."""
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
        assert app.proc is not None
        app.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(app.proc.wait, 10)
        app.proc = None
        await asyncio.to_thread(app.start)
    elif name == "ami_cut":
        ami_relay.cut()
        await asyncio.sleep(CUT_S)
        await ami_relay.restore()
    elif name == "agi_cut":
        agi_relay.cut()
        await asyncio.sleep(CUT_S)
        await agi_relay.restore()
    else:
        raise SystemExit(f"unknown fault {name!r} (known: {', '.join(ALL_FAULTS)})")
    return time.monotonic()


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
    settings: Settings, exts: list[str], callers: list[str], last_record_id: int
) -> dict[str, Any]:
    wall0, mono0 = time.time(), time.monotonic()
    ami_relay = CuttableRelay(AMI_RELAY_PORT, settings.ami_port)
    agi_relay = CuttableRelay(AGI_RELAY_PORT, settings.agi_port)
    await ami_relay.start()
    await agi_relay.start()
    # Asterisk reaches the route through the AGI relay; the app reaches AMI through the AMI relay.
    ast_settings = settings.model_copy(update={"agi_port": AGI_RELAY_PORT})
    app = App(settings.model_copy(update={"ami_port": AMI_RELAY_PORT}), name="app-faults")
    truth = Truth()
    own = OwnAmi(settings, truth)
    consoles = [Console(ext) for ext in exts[:CONSOLES]]
    tasks: list[asyncio.Task[Any]] = []
    runs: list[FaultRun] = []
    sipp_result = None
    try:
        await asyncio.to_thread(process.start, ast_settings)
        log("Asterisk up")
        await asyncio.to_thread(app.start)
        log("app up (AMI through the relay)")
        await own.open()
        tasks = [asyncio.create_task(keep_console(app, c)) for c in consoles]
        deadline = time.monotonic() + 20
        while any(not c.opened for c in consoles) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        log(f"{sum(bool(c.opened) for c in consoles)}/{len(consoles)} consoles connected: {exts[:CONSOLES]}")
        with SippUAS(port=UAS_PORT, ring_ms=RING_MS, talk_ms=0) as uas:
            planned_s = len(callers) / RATE
            log(f"placing {len(callers)} calls at {RATE:g}/s over {planned_s:.0f} s (hold {HOLD_MS} ms)")
            sipp = asyncio.create_task(
                run_calls(
                    settings,
                    DID,
                    callers,
                    rate=RATE,
                    hold_ms=HOLD_MS,
                    timeout=planned_s + HOLD_MS / 1000 + 120,
                )
            )
            load_started = time.monotonic()
            await asyncio.sleep(WARMUP_S)
            for i, name in enumerate(FAULTS):
                log(f"fault {i + 1}/{len(FAULTS)}: {name}")
                injected = time.monotonic()
                back = await inject(name, app, ast_settings, ami_relay, agi_relay)
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
            sipp_result = await sipp
            log(
                f"sipp: created {sipp_result.calls}, successful {sipp_result.successful}, "
                f"failed {sipp_result.failed}, rc {sipp_result.returncode}"
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
        own.close()
        await asyncio.to_thread(app.stop)
        await asyncio.to_thread(process.stop, ast_settings)
        ami_relay.close()
        agi_relay.close()

    return analyse(
        truth, consoles, runs, records, in_stats, sipp_result, dup_records, dup_stats, wall0, mono0, run_end
    )


def analyse(
    truth: Truth,
    consoles: list[Console],
    runs: list[FaultRun],
    records: dict[str, CallRecord],
    lost_in_stats: set[str],
    sipp_result: Any,
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
    not_recovered = 0
    faults: dict[str, Any] = {}
    records_unseen = [lid for lid in records if lid not in truth.started]
    for r in runs:
        d: dict[str, Any] = {"injected_at_s": rel(r.injected), "back_after_s": round(r.back - r.injected, 2)}
        up = truth.open_at(r.injected)
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
            shown = con.shown_at(r.back)
            t_a: float | None = r.back
            if shown is not None and ended.get(shown, float("inf")) <= r.back:
                t_a = con.changed_after(r.back, shown)
            before = {lid for at, kind, lid in con.events if kind == "pop" and at <= r.back}
            t_b = next(
                (
                    at
                    for at, kind, lid in con.events
                    if kind == "pop" and r.back < at < r.until and lid not in before
                ),
                None,
            )
            new_lid = next(
                (lid for at, kind, lid in con.events if kind == "pop" and at == t_b and lid not in before),
                None,
            )
            offered = truth.called.get((new_lid, con.ext)) if new_lid else None
            entry = {
                "ext": con.ext,
                "stale_at_back": shown if t_a != r.back else None,
                "stale_dropped_s": None if t_a is None else round(t_a - r.back, 3),
                "new_pop_s": None if t_b is None else round(t_b - r.back, 3),
                "new_call_offered_s": None if offered is None else round(offered - r.back, 3),
                "sockets_opened_in_phase": sum(1 for t in con.opened if r.injected <= t < r.until),
            }
            if t_a is not None and t_b is not None and t_a < r.until:
                entry["recover_s"] = round(max(t_a, t_b) - r.back, 3)
                recover.append(max(t_a, t_b) - r.back)
            else:
                entry["recover_s"] = None
                not_recovered += 1
            per_console.append(entry)
        d["consoles"] = per_console
        if r.name == "agi_cut":
            unrouted = {lid for lid, s in truth.started.items() if r.injected <= s < r.back}
            popped: dict[str, bool] = {}
            for con in consoles:
                for _t, lid, ready, resident in con.pops:
                    if lid in unrouted:
                        popped[lid] = popped.get(lid, False) or (ready and resident)
            d["unrouted_calls_entered"] = len(unrouted)
            d["unrouted_calls_popped"] = len(popped)
            d["unrouted_pops_with_profile"] = sum(popped.values())
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
    if sipp_result is not None:
        log(
            f"cross-check: sipp created {sipp_result.calls} calls, {len(records)} records: "
            f"{sipp_result.calls - len(records)} created calls left no record (sent while Asterisk "
            "was down, or lost)"
        )
    if records_unseen:
        log("records without a Newchannel seen: " + ", ".join(records_unseen[:20]))
    log(
        f"duplicates: {dup_records} linkedids with >1 call record, {dup_stats} with >1 stat_call seq 0 "
        "(both unique-constrained in the schema: a duplicate write fails instead, so 0 is expected)"
    )
    log(
        "messages: not measured in this benchmark: see tests/sms and tests/callcenter/test_mail.py "
        "(fault_messages_lost / _duplicated are null)"
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
        "fault_messages_lost": None,
        "fault_messages_duplicated": None,
        "fault_unrouted_pops_with_profile": agi.get("unrouted_pops_with_profile"),
        "fault_unrouted_calls": agi.get("unrouted_calls_popped"),
        "faults": faults,
        "load": {
            "rate_per_s": RATE if RATE != int(RATE) else int(RATE),
            "hold_ms": HOLD_MS,
            "seats": SEATS,
            "consoles": len(consoles),
            "seat_ring_ms": RING_MS,
            "warmup_s": WARMUP_S,
            "settle_s": SETTLE_S,
            "cut_s": CUT_S,
            "run_s": round(run_end - mono0, 1),
            "fault_calls_source": "own AMI Newchannel (from-carrier, Uniqueid == Linkedid)",
            "sipp_calls_created": getattr(sipp_result, "calls", None),
            "sipp_calls_successful": getattr(sipp_result, "successful", None),
            "sipp_calls_failed": getattr(sipp_result, "failed", None),
            "records": len(records),
            "records_without_ami_newchannel": len(records_unseen),
            # a record no call of Asterisk's can have (an event without the caller's channel)
            "records_with_empty_linkedid": sum(1 for lid in records if not lid),
            "records_lost_with_stat_call_row": len(lost_in_stats),
            # sipp's count cannot be split by fault: calls it created that left no record at all,
            # including those sent while Asterisk was down (they never reached it)
            "sipp_calls_created_minus_records": (
                sipp_result.calls - len(records) if sipp_result is not None else None
            ),
            "outcomes": dict(outcomes),
        },
    }


def main() -> None:
    started = time.monotonic()
    if shutil.which("sipp") is None:
        # Without the residents' and seats' phones nothing here can run.
        missing_part("sipp (apt-get install sip-tester)")
        print(json.dumps({"bench": "faults", "fault_calls": None, "faults": {}, "load": {}}))
        return
    settings, exts, callers, last_id = prepare()
    if len(exts) < CONSOLES:
        raise SystemExit(f"{len(exts)} seats, fewer than {CONSOLES} consoles")
    took = time.monotonic() - started
    log(f"data dir ready ({len(exts)} seats) in {took:.1f} s; faults: {', '.join(FAULTS)}")
    result = asyncio.run(measure(settings, exts, callers, last_id))
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
