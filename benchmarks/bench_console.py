"""The console as people see it: screen-pop paint in a real browser, and the wallboard under load.

The whole stack runs as in production (Asterisk, ``callcenter serve`` in its own process, sipp
phones), set up by ``bench_pop``'s helpers in a data dir and on ports of its own. 100 seats are
members of the hotline queue: seat 1001's phone is a sipp answering machine, every other seat's
phone a sipp UAS that rings forever. The database is the shared benchmark data set
(benchmarks/dataset.py: BENCH_RESIDENTS residents, 1,000,000), callers drawn from its residents
with BENCH_UNKNOWN_SHARE (10 %) unknown numbers.

1. Pop paint. Every seat but 1001 is paused, so each call rings seat 1001 alone. Seat 1001 is
   logged in to the console in headless Chromium (Playwright); a MutationObserver on
   ``#pop-area`` records, in a requestAnimationFrame callback, when a ``#pop`` with a new
   ``data-linkedid`` is in the page. Paint delay = that wall-clock time - the wall-clock time
   this benchmark's own AMI connection received AgentCalled for PJSIP/seat1001 and the call.
   Calls are placed one at a time (sipp ``-l 1``), each answered by the seat and ended before
   the next.
2. Wallboard update. Every seat is paused and callers wait in the queue; WALLBOARD_SOCKETS
   supervisor wallboard WebSockets are open. Seats are unpaused / paused (with a reason) through
   AMI QueuePause; delay = first wallboard snapshot showing the seat's new state - the AMI
   QueueMemberPause event received by this benchmark (both on this process's monotonic clock).
3. Wallboard CPU: CPU % (utime+stime from /proc, all threads) of the ``callcenter serve`` process
   over a CPU_WINDOW_S window of that pause/unpause activity, with the sockets open.

Prints progress to stderr and one JSON line last on stdout:
{"bench": "console", "pop_paint_p50_ms", "pop_paint_p99_ms", "wallboard_update_p99_ms",
 "wallboard_cpu_pct", ...}.

Sizes: BENCH_CONSOLE_CALLS (100 pop calls), BENCH_CONSOLE_RATE (2 calls/s at most; one call at a
time), BENCH_CONSOLE_HOLD_MS (2600: a caller stays this long after Asterisk answers),
BENCH_CONSOLE_RING_MS (800), BENCH_CONSOLE_SEATS (100 seats in all), BENCH_CONSOLE_WAITING (50
callers waiting), BENCH_CONSOLE_TOGGLES (50 pause changes), BENCH_CONSOLE_SOCKETS (20 wallboards),
BENCH_CONSOLE_CPU_WINDOW_S (20).
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
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_pop  # noqa: E402
from bench_pop import App, log, on_stack, percentile  # noqa: E402
from sqlmodel import select  # noqa: E402

from asterisk_conf.sipp import SippUAS, run_calls  # noqa: E402
from benchmarks.common import CACHE_ROOT, PORT_OFFSET, ports  # noqa: E402
from callcenter.ami import actions  # noqa: E402
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, open_manager, sender  # noqa: E402
from callcenter.calls.state import seat_of  # noqa: E402
from callcenter.database import session_scope  # noqa: E402

CALLS = int(os.environ.get("BENCH_CONSOLE_CALLS", "100"))
RATE = float(os.environ.get("BENCH_CONSOLE_RATE", "2"))
HOLD_MS = int(os.environ.get("BENCH_CONSOLE_HOLD_MS", "2600"))
RING_MS = int(os.environ.get("BENCH_CONSOLE_RING_MS", "800"))
SEATS = int(os.environ.get("BENCH_CONSOLE_SEATS", "100"))
WAITING = int(os.environ.get("BENCH_CONSOLE_WAITING", "50"))
TOGGLES = int(os.environ.get("BENCH_CONSOLE_TOGGLES", "50"))
SOCKETS = int(os.environ.get("BENCH_CONSOLE_SOCKETS", "20"))
CPU_WINDOW_S = float(os.environ.get("BENCH_CONSOLE_CPU_WINDOW_S", "20"))

POP_EXT = "1001"
ANSWER_PORT = 27081 + PORT_OFFSET  # seat 1001's phone: answers after RING_MS
NEVER_PORT = 27082 + PORT_OFFSET  # every other seat's phone: rings until the queue gives up
PORTS = ports(
    ami_port=27038,
    sip_port=27060,
    agi_port=26573,
    web_port=30080,
    rtp_start=14000,
    rtp_end=14999,
    doctor_sip_port=27099,
    asterisk_http_port=27088,
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Records when a #pop with a new linkedid is in #pop-area, in the next animation frame.
PAINT_OBSERVER = """() => {
  window.__paints = [];
  let last = "";
  const area = document.getElementById("pop-area");
  new MutationObserver(() => {
    const pop = document.getElementById("pop");
    if (!pop) return;
    const id = pop.dataset.linkedid;
    if (!id || id === last) return;
    last = id;
    requestAnimationFrame(() => window.__paints.push([id, performance.timeOrigin + performance.now()]));
  }).observe(area, {childList: true, subtree: true, attributes: true, attributeFilter: ["data-linkedid"]});
  return true;
}"""


def prepare():
    """bench_pop's data dir (the shared benchmark data set, extra seats; callers drawn from its
    residents, 10 % unknown), pointed at this benchmark's cache and ports;
    every seat's phone rings forever except seat 1001's, which answers."""
    bench_pop.CACHE = CACHE_ROOT / "console"
    bench_pop.PORTS = PORTS
    bench_pop.UAS_PORT = NEVER_PORT
    bench_pop.SEATS = max(0, SEATS - 4)  # the demo has seats 1001-1004
    bench_pop.CALLS = CALLS + WAITING
    settings, exts, callers = bench_pop.prepare()

    from callcenter.accounts.models import Account

    with session_scope(settings) as s:
        seat = s.exec(select(Account).where(Account.extension == POP_EXT)).one()
        seat.sip_contact = f"sip:seat{POP_EXT}@127.0.0.1:{ANSWER_PORT}"
        s.add(seat)
        s.commit()
    return settings, exts, callers


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


class Recorder:
    def __init__(self) -> None:
        self.called: dict[str, float] = {}  # linkedid -> wall-clock receive time (seat 1001)
        self.pause_events: dict[str, list[tuple[float, bool, str]]] = {}  # ext -> (t, paused, reason)

    def on_ami(self, _manager, msg) -> None:
        wall, t = time.time(), time.perf_counter()
        kind = msg.get("Event", "")
        if kind == "AgentCalled":
            event = ev.parse_event(msg)
            if isinstance(event, ev.AgentCalled) and seat_of(event.interface) == POP_EXT:
                self.called.setdefault(event.linkedid, wall)
        elif kind == "QueueMemberPause":
            event = ev.parse_event(msg)
            ext = seat_of(getattr(event, "interface", "")) or ""
            self.pause_events.setdefault(ext, []).append((t, event.paused, event.paused_reason))


async def queue_pause(manager, ext: str, paused: bool, reason: str = "") -> None:
    action = actions.queue_pause(ext, paused, reason if paused else "")
    if action is None:
        raise ValueError(f"not a QueuePause we send: {ext} {reason!r}")
    reply = await asyncio.wait_for(sender(manager)(action), 10)
    if not reply.ok:
        log(f"WARNING: QueuePause {ext} {paused}: {reply.raw!r}")


async def pause_all(manager, exts: list[str], reason: str) -> None:
    for i in range(0, len(exts), 20):
        await asyncio.gather(*(queue_pause(manager, ext, True, reason) for ext in exts[i : i + 20]))


# -- 1. pop paint ----------------------------------------------------------------------------------
async def pop_paint(app: App, rec: Recorder, callers: list[str]) -> dict:
    from playwright.async_api import async_playwright

    from hotline.demo import DEMO_PASSWORD

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(app.base_url + "/login")
            await page.fill("#username", f"seat{POP_EXT}")
            await page.fill("#password", DEMO_PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_selector('#conn[data-conn="online"]', timeout=20000)
            await page.evaluate(PAINT_OBSERVER)
            log(f"seat{POP_EXT} console online in Chromium")

            with SippUAS(port=ANSWER_PORT, ring_ms=RING_MS, talk_ms=0) as uas:
                log(f"placing {len(callers)} calls one at a time (rate cap {RATE:g}/s, hold {HOLD_MS} ms)")
                t0 = time.monotonic()
                result = await run_calls(
                    app.settings,
                    bench_pop.DID,
                    callers,
                    rate=RATE,
                    limit=1,
                    hold_ms=HOLD_MS,
                    timeout=len(callers) * (HOLD_MS / 1000 + 3) + 60,
                )
                elapsed = time.monotonic() - t0
                log(
                    f"sipp done in {elapsed:.1f} s: created {result.calls}, successful {result.successful}, "
                    f"failed {result.failed}, rc {result.returncode}"
                )
                if result.failed or result.returncode:
                    log("sipp errors: " + (result.errors or result.output).strip()[-1500:])
                await asyncio.sleep(1.5)  # a late paint
                answered = uas.stats().get("SuccessfulCall(C)", "?")
                log(f"seat {POP_EXT}'s phone answered {answered} calls")
            paints = await page.evaluate("window.__paints")
        finally:
            await browser.close()

    painted: dict[str, float] = {}
    for linkedid, at_ms in paints:
        painted.setdefault(linkedid, at_ms)
    delays = [painted[lid] - called * 1000 for lid, called in rec.called.items() if lid in painted]
    log(f"seat {POP_EXT}: AgentCalled {len(rec.called)} calls, {len(paints)} paints, {len(delays)} matched")
    if delays:
        log(
            f"paint ms: min {min(delays):.1f}, p50 {percentile(delays, 50):.1f}, "
            f"p90 {percentile(delays, 90):.1f}, p99 {percentile(delays, 99):.1f}, max {max(delays):.1f}"
        )
    if len(delays) < 0.95 * len(callers):
        log(f"WARNING: only {len(delays)} of {len(callers)} calls have a matched paint (< 95 %)")
    return {
        "pop_paint_p50_ms": round(percentile(delays, 50), 1) if delays else None,
        "pop_paint_p99_ms": round(percentile(delays, 99), 1) if delays else None,
        "pop_calls": len(callers),
        "pop_paints_matched": len(delays),
        "pop_calls_per_s": round(len(callers) / elapsed, 2),
        "pop_answered": answered,
    }


# -- 2 and 3. the wallboard ----------------------------------------------------------------------
class Board:
    def __init__(self) -> None:
        self.waiting = 0
        self.snapshots = 0
        self.expect: dict[str, tuple[bool, str, float]] = {}  # ext -> (paused, reason, sent at)
        self.seen: dict[str, float] = {}  # ext -> first matching snapshot time

    def on_snapshot(self, t: float, msg: dict) -> None:
        self.snapshots += 1
        self.waiting = sum(q.get("waiting", 0) for q in msg.get("queues", {}).values())
        if not self.expect:
            return
        seats = {s.get("ext"): s for s in msg.get("seats", [])}
        for ext, (paused, reason, _sent) in list(self.expect.items()):
            seat = seats.get(ext)
            if seat is None or ext in self.seen:
                continue
            state = seat.get("state")
            if (paused and state == "paused" and seat.get("paused_reason") == reason) or (
                not paused and state != "paused"
            ):
                self.seen[ext] = t


async def read_board(ws, board: Board) -> None:
    with contextlib.suppress(Exception):
        async for raw in ws:
            t = time.perf_counter()
            msg = json.loads(raw)
            if msg.get("type") == "snapshot":
                board.on_snapshot(t, msg)


async def drain(ws) -> None:
    with contextlib.suppress(Exception):
        async for _raw in ws:
            pass


async def wallboard(app: App, manager, rec: Recorder, exts: list[str], callers: list[str]) -> dict:
    from hotline.demo import DEMO_PASSWORD
    from hotline.doctor import console_login, open_console_ws

    settings = app.settings
    reasons = list(settings.pause_reasons)
    await queue_pause(manager, POP_EXT, True, reasons[0])
    hold_ms = int((20 + TOGGLES * max(0.45, (CPU_WINDOW_S + 2) / max(TOGGLES, 1)) + 30) * 1000)
    board = Board()
    clients, sockets, tasks = [], [], []
    calls_task = None
    try:
        log(f"placing {len(callers)} calls to wait (all seats paused, hold {hold_ms // 1000} s)")
        calls_task = asyncio.create_task(
            run_calls(settings, bench_pop.DID, callers, rate=10, hold_ms=hold_ms, timeout=hold_ms / 1000 + 60)
        )
        for i in range(SOCKETS):
            client = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
            clients.append(client)
            ws = await open_console_ws(app.base_url, client, path="/ws/wallboard")
            sockets.append(ws)
            tasks.append(asyncio.create_task(read_board(ws, board) if i == 0 else drain(ws)))
        deadline = time.monotonic() + 30 + len(callers) / 10
        while board.waiting < len(callers) and time.monotonic() < deadline:
            if calls_task.done():
                break
            await asyncio.sleep(0.2)
        log(
            f"{SOCKETS} wallboards open; {board.waiting} callers waiting ({board.snapshots} snapshots so far)"
        )
        if board.waiting < len(callers):
            log(f"WARNING: only {board.waiting} of {len(callers)} callers waiting")

        candidates = [e for e in exts if e != POP_EXT]
        interval = max(0.45, (CPU_WINDOW_S + 2) / max(TOGGLES, 1))
        pid = app.proc.pid
        hz = os.sysconf("SC_CLK_TCK")
        cpu: dict[str, float] = {}

        async def sample_cpu() -> None:
            ticks0, t0 = cpu_ticks(pid), time.monotonic()
            await asyncio.sleep(CPU_WINDOW_S)
            ticks1, t1 = cpu_ticks(pid), time.monotonic()
            cpu["pct"] = (ticks1 - ticks0) / hz / (t1 - t0) * 100
            cpu["window_s"] = t1 - t0

        log(f"{TOGGLES} pause changes, one every {interval:.2f} s; CPU window {CPU_WINDOW_S:g} s")
        cpu_task = asyncio.create_task(sample_cpu())
        delays: list[float] = []
        missed = 0
        snaps0 = board.snapshots
        for i in range(TOGGLES):
            started = time.perf_counter()
            ext = candidates[(i // 2) % len(candidates)]
            paused = i % 2 == 1  # unpause a paused seat, then pause it again with a reason
            reason = reasons[(i // 2) % len(reasons)] if paused else ""
            n_events = len(rec.pause_events.get(ext, []))
            board.seen.pop(ext, None)
            board.expect[ext] = (paused, reason, started)
            await queue_pause(manager, ext, paused, reason)
            event_at = None
            wait_until = time.perf_counter() + 5
            while time.perf_counter() < wait_until:
                for t, p, r in rec.pause_events.get(ext, [])[n_events:]:
                    if p == paused and (not paused or r == reason):
                        event_at = t
                        break
                if event_at is not None and ext in board.seen:
                    break
                await asyncio.sleep(0.005)
            seen_at = board.seen.get(ext)
            board.expect.pop(ext, None)
            if event_at is None or seen_at is None:
                missed += 1
                log(f"WARNING: change {i} (seat {ext} paused={paused}): event {event_at}, snapshot {seen_at}")
            else:
                delays.append((seen_at - event_at) * 1000)
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
        await cpu_task
        snaps = board.snapshots - snaps0
    finally:
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in tasks:
            task.cancel()
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        if calls_task is not None:
            calls_task.cancel()
            with contextlib.suppress(BaseException):
                await calls_task

    if delays:
        log(
            f"wallboard ms: min {min(delays):.1f}, p50 {percentile(delays, 50):.1f}, "
            f"p90 {percentile(delays, 90):.1f}, p99 {percentile(delays, 99):.1f}, max {max(delays):.1f}; "
            f"{snaps} snapshots on one socket during the changes; {missed} missed"
        )
    log(f"callcenter serve CPU {cpu.get('pct', float('nan')):.1f} % over {cpu.get('window_s', 0):.1f} s")
    return {
        "wallboard_update_p50_ms": round(percentile(delays, 50), 1) if delays else None,
        "wallboard_update_p99_ms": round(percentile(delays, 99), 1) if delays else None,
        "wallboard_changes": TOGGLES,
        "wallboard_changes_missed": missed,
        "wallboard_waiting": board.waiting,
        "wallboard_sockets": SOCKETS,
        "wallboard_cpu_pct": round(cpu["pct"], 1) if "pct" in cpu else None,
        "wallboard_cpu_window_s": round(cpu.get("window_s", 0), 1),
    }


async def measure(app: App, exts: list[str], callers: list[str]) -> dict:
    rec = Recorder()
    manager = await open_manager(app.settings, rec.on_ami)
    try:
        others = [e for e in exts if e != POP_EXT]
        log(f"pausing the {len(others)} seats other than {POP_EXT}")
        await pause_all(manager, others, app.settings.pause_reasons[0])
        with SippUAS(port=NEVER_PORT, ring_ms=None):
            result = {"bench": "console", "seats": len(exts)}
            result.update(await pop_paint(app, rec, callers[:CALLS]))
            result.update(await wallboard(app, manager, rec, exts, callers[CALLS : CALLS + WAITING]))
    finally:
        close_manager(manager)
    return result


def main() -> None:
    started = time.monotonic()
    settings, exts, callers = prepare()
    log(f"data dir ready ({len(exts)} seats) in {time.monotonic() - started:.1f} s")
    result = on_stack(settings, measure, exts, callers)
    result["run_s"] = round(time.monotonic() - started, 1)
    log(f"total {result['run_s']} s")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
