"""Screen-pop lead time through the real Asterisk: AMI AgentCalled -> the seat console's pop.

The whole stack runs as in production: Asterisk (asterisk_conf.process), ``callcenter serve`` in
its own process, one sipp answering machine serving every seat's phone, and residents' calls
placed by sipp at a fixed rate. Every seat is logged in to the console over its own WebSocket.

For each call and seat, lead = (time the first pop for that call reaches that seat's console
WebSocket) - (time this benchmark's own AMI connection receives AgentCalled for that call and
seat). Both are read from the same monotonic clock in this process.

Prints progress to stderr and one JSON line last on stdout:
{"bench": "pop", "pop_lead_p50_ms", "pop_lead_p99_ms", "calls", "pops_matched", "rate_per_s"}.

Sizes: BENCH_POP_CALLS (200), BENCH_POP_RATE (10 calls/s), BENCH_POP_SEATS (extra seats, 50),
BENCH_POP_HOLD_MS (4000: how long a resident stays after Asterisk answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from asterisk_conf.sipp import SippUAS, run_calls  # noqa: E402
from benchmarks.common import CACHE_ROOT, PORT_OFFSET, fresh_data_dir, log, on_stack, percentile, ports  # noqa: E402
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, open_manager  # noqa: E402
from callcenter.calls.state import seat_of  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import session_scope  # noqa: E402
from tests.e2e.conftest import App  # noqa: E402

CALLS = int(os.environ.get("BENCH_POP_CALLS", "200"))
RATE = float(os.environ.get("BENCH_POP_RATE", "10"))
SEATS = int(os.environ.get("BENCH_POP_SEATS", "50"))
HOLD_MS = int(os.environ.get("BENCH_POP_HOLD_MS", "4000"))
RING_MS = 300
DID = "96345"
CACHE = CACHE_ROOT / "pop"
UAS_PORT = 26081 + PORT_OFFSET
PORTS = ports(
    ami_port=26038,
    sip_port=26060,
    agi_port=25573,
    web_port=29080,
    rtp_start=13000,
    rtp_end=13999,
    doctor_sip_port=26099,
    asterisk_http_port=26088,
)


def make_settings() -> Settings:
    return set_settings(Settings(data_dir=CACHE / "var", _env_file=None, **PORTS))


def prepare() -> tuple[Settings, list[str], list[str]]:
    """A fresh data dir: demo data, SEATS extra seats, every seat's phone on one sipp port.

    Returns the settings, the seat extensions and the callers (national mobile numbers)."""
    settings = make_settings()
    fresh_data_dir(settings, CACHE)

    from callcenter.accounts.models import Account, QueueMembership
    from callcenter.accounts.service import hash_password
    from callcenter.directory.models import CallQueue
    from callcenter.residents.models import Resident
    from hotline.demo import DEMO_PASSWORD, HOTLINE_QUEUE, load_demo

    with session_scope(settings) as s:
        load_demo(
            s, residents=max(300, min(CALLS, 2000)), seat_contact_base_port=None, must_change_password=False
        )
        pw = hash_password(DEMO_PASSWORD)
        for i in range(1, SEATS + 1):
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
            # Every seat (the demo's 1001-1004 too) rings the same sipp answering machine.
            acc.sip_contact = f"sip:seat{acc.extension}@127.0.0.1:{UAS_PORT}"
            s.add(acc)
            exts.append(acc.extension)
        hotline = s.exec(select(CallQueue).where(CallQueue.name == HOTLINE_QUEUE)).one()
        hotline.wrapup = 0
        s.add(hotline)
        s.commit()
        phones = [p for p in s.exec(select(Resident.phone)).all() if p.startswith("+861") and len(p) == 14]
    phones = sorted(set(phones))
    callers = [phones[i % len(phones)][3:] for i in range(CALLS)]
    return settings, sorted(exts), callers


class Recorder:
    def __init__(self) -> None:
        self.called: dict[tuple[str, str], float] = {}  # (linkedid, ext) -> AMI receive time
        self.pops: dict[tuple[str, str], tuple[float, str]] = {}  # -> (WS receive time, state)
        self.connects = 0
        self.ready: set[str] = set()

    def on_ami(self, _manager, msg) -> None:
        t = time.perf_counter()
        event = ev.parse_event(msg)
        if isinstance(event, ev.AgentCalled):
            self.called.setdefault((event.linkedid, seat_of(event.interface) or event.interface), t)
        elif isinstance(event, ev.AgentConnect):
            self.connects += 1


async def read_console(ws, ext: str, rec: Recorder) -> None:
    with contextlib.suppress(Exception):
        async for raw in ws:
            t = time.perf_counter()
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "pop":
                rec.pops.setdefault((msg.get("linkedid", ""), ext), (t, msg.get("state", "")))
            elif msg.get("topic") == "console.ready":
                rec.ready.add(ext)


async def measure(app: App, exts: list[str], callers: list[str]) -> dict:
    from hotline.demo import DEMO_PASSWORD
    from hotline.doctor import console_login, open_console_ws

    settings = app.settings
    rec = Recorder()
    manager = await open_manager(settings, rec.on_ami)
    clients, sockets, readers = [], [], []
    try:
        log(f"logging {len(exts)} seats in to the console")
        for ext in exts:
            client = await console_login(app.base_url, f"seat{ext}", DEMO_PASSWORD)
            clients.append(client)
            ws = await open_console_ws(app.base_url, client)
            sockets.append(ws)
            readers.append(asyncio.create_task(read_console(ws, ext, rec)))
        deadline = time.monotonic() + 15
        while len(rec.ready) < len(exts) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if len(rec.ready) < len(exts):
            log(f"WARNING: only {len(rec.ready)}/{len(exts)} consoles said console.ready")

        with SippUAS(port=UAS_PORT, ring_ms=RING_MS, talk_ms=0) as uas:
            log(f"placing {len(callers)} calls at {RATE:g}/s (hold {HOLD_MS} ms after answer)")
            t0 = time.monotonic()
            result = await run_calls(
                settings,
                DID,
                callers,
                rate=RATE,
                hold_ms=HOLD_MS,
                timeout=len(callers) / RATE + HOLD_MS / 1000 + 60,
            )
            log(
                f"sipp done in {time.monotonic() - t0:.1f} s: created {result.calls}, "
                f"successful {result.successful}, failed {result.failed}, rc {result.returncode}"
            )
            if result.failed or result.returncode:
                log("sipp errors: " + (result.errors or result.output).strip()[-1500:])
            await asyncio.sleep(2)  # late pops
            log(f"seat phone: {uas.stats().get('SuccessfulCall(C)', '?')} calls answered")
    finally:
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in readers:
            task.cancel()
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        close_manager(manager)

    leads = []
    first_states: dict[str, int] = {}
    for key, called_at in rec.called.items():
        pop = rec.pops.get(key)
        if pop is None:
            continue
        leads.append((pop[0] - called_at) * 1000)
        first_states[pop[1]] = first_states.get(pop[1], 0) + 1
    calls_rung = len({linkedid for linkedid, _ in rec.called})
    log(
        f"AgentCalled for {calls_rung} calls ({len(rec.called)} call/seat pairs), "
        f"{rec.connects} AgentConnect, {len(rec.pops)} first pops, {len(leads)} matched; "
        f"first pop states {first_states}"
    )
    if leads:
        log(
            f"lead ms: min {min(leads):.2f}, p50 {percentile(leads, 50):.2f}, "
            f"p90 {percentile(leads, 90):.2f}, p99 {percentile(leads, 99):.2f}, max {max(leads):.2f}"
        )
    if len(leads) < 0.95 * len(callers):
        log(f"WARNING: only {len(leads)} of {len(callers)} calls have a matched pop (< 95 %)")
    return {
        "bench": "pop",
        "pop_lead_p50_ms": round(percentile(leads, 50), 2) if leads else None,
        "pop_lead_p99_ms": round(percentile(leads, 99), 2) if leads else None,
        "calls": len(callers),
        "pops_matched": len(leads),
        "rate_per_s": RATE if RATE != int(RATE) else int(RATE),
    }


def main() -> None:
    started = time.monotonic()
    settings, exts, callers = prepare()
    log(f"data dir ready ({len(exts)} seats) in {time.monotonic() - started:.1f} s")
    result = on_stack(settings, measure, exts, callers)
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
