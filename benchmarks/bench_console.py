"""The console as people see it: screen-pop paint in real browsers under 10 calls/s of concurrent
calls, and the wallboard under load.

The whole stack runs as in production (Asterisk, ``callcenter serve`` in its own process, sipp
phones), set up by ``bench_pop``'s helpers in a data dir and on ports of its own. BENCH_CONSOLE_SEATS
(100) seats are members of the hotline queue (ring strategy rrmemory, no wrap-up): the first
BENCH_CONSOLE_PAGES (16) and the next BENCH_CONSOLE_ANSWERING (16) answer on one sipp phone after
BENCH_CONSOLE_RING_MS (500); every other seat's phone is a sipp UAS that rings forever. The
database is the shared benchmark data set (benchmarks/dataset.py: BENCH_RESIDENTS residents,
1,000,000), callers drawn from its residents, each number once, with BENCH_UNKNOWN_SHARE (10 %)
numbers no resident has; its order statistics are counted before the stack starts, as a
deployment that has run before has them (the engine's first full recount would hold SQLite's
write lock at start-up).

1. Pop paint under concurrent calls. The never-answering seats are paused. Each of the PAGES
   seats has its console open in headless Chromium (Playwright; one browser, a context per seat,
   each logged in as its seat, no background throttling); the other answering seats have their
   console's WebSocket open. sipp places BENCH_CONSOLE_CALLS (2,400) calls at BENCH_CONSOLE_RATE
   (10) calls/s, each hanging up BENCH_CONSOLE_HOLD_MS (3,000) after Asterisk answers (the short
   welcome and the route take about a second, then ring and talk with a seat), so ~30 calls are
   up at once and each call rings one free seat (about half of them a seat with a page). In every
   page a MutationObserver on ``#pop-area`` records, in a requestAnimationFrame callback (the
   frame that paints it), ``performance.timeOrigin + performance.now()`` when a ``#pop`` with a
   new ``data-linkedid`` is in the page (its first frame) and when that pop first shows the
   resident (``data-resident="known"``, set with the profile). Start = the ``Timestamp`` header
   of AgentCalled for that seat and call (Asterisk's wall clock when it raised the event), read
   on this benchmark's AMI connection. Both are the host's wall clock (the page's clock is
   checked against Date.now() at the end: ``pop_paint_clock_skew_ms``). Figures:

   - ``pop_paint_*``: known callers, AgentCalled -> the frame with the resident's profile. p99
     only from at least 1,000 samples, else null (the max with n is there). Target ≤ 150 ms.
   - ``pop_paint_first_frame_*``: every caller, AgentCalled -> the first frame with the pop
     (with or without the profile).
   - ``pop_paint_without_profile_*``: known callers whose first frame came without the profile
     (the engine sends a pop without it when the profile is late): AgentCalled -> that frame;
     ``pop_paint_never_profile_n``: known callers' pops that never showed the resident;
     ``pop_paint_missing_n``: AgentCalled for a seat with a page but no pop painted.
2. Wallboard update. Every seat is paused and callers wait in the queue; WALLBOARD_SOCKETS
   supervisor wallboard WebSockets are open. Never-answering seats are unpaused / paused (with a
   reason) through AMI QueuePause; delay = first wallboard snapshot showing the seat's new
   state - the AMI QueueMemberPause event received by this benchmark (both on this process's
   monotonic clock).
3. Wallboard CPU: CPU % (utime+stime from /proc, all threads) of the ``callcenter serve`` process
   over a CPU_WINDOW_S window of that pause/unpause activity, with the sockets open.

Prints progress to stderr and one JSON line last on stdout (figures with their n):
{"bench": "console", "pop_paint_p50_ms", "pop_paint_p99_ms", "pop_paint_max_ms", "pop_paint_n",
 "pop_paint_first_frame_*", "pop_paint_without_profile_*", "pop_load_avg" (when the calls
 started), "wallboard_update_p99_ms", "wallboard_cpu_pct", ...}.

Sizes: BENCH_CONSOLE_CALLS (2,400), BENCH_CONSOLE_RATE (10 calls/s), BENCH_CONSOLE_HOLD_MS (3,000:
a caller stays this long after Asterisk answers), BENCH_CONSOLE_RING_MS (500),
BENCH_CONSOLE_PAGES (16), BENCH_CONSOLE_ANSWERING (16), BENCH_CONSOLE_SEATS (100 seats in all),
BENCH_CONSOLE_WAITING (50 callers waiting), BENCH_CONSOLE_TOGGLES (50 pause changes),
BENCH_CONSOLE_SOCKETS (20 wallboards), BENCH_CONSOLE_CPU_WINDOW_S (20), BENCH_RESIDENTS,
BENCH_UNKNOWN_SHARE.
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
from sqlmodel import col, select  # noqa: E402

from asterisk_conf.sipp import SippUAS, run_calls  # noqa: E402
from benchmarks import dataset  # noqa: E402
from benchmarks.common import CACHE_ROOT, PORT_OFFSET, ports  # noqa: E402
from callcenter.ami import actions  # noqa: E402
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, open_manager, sender  # noqa: E402
from callcenter.calls.state import seat_of  # noqa: E402
from callcenter.database import session_scope  # noqa: E402

# 2,400 calls: half ring a seat with a page, 90 % of those known: ~1,080 paint samples for the p99
CALLS = int(os.environ.get("BENCH_CONSOLE_CALLS", "2400"))
RATE = float(os.environ.get("BENCH_CONSOLE_RATE", "10"))
# From Asterisk's answer: the welcome and the route take ~1 s, so ~2 s with a seat (ring + talk)
HOLD_MS = int(os.environ.get("BENCH_CONSOLE_HOLD_MS", "3000"))
RING_MS = int(os.environ.get("BENCH_CONSOLE_RING_MS", "500"))
PAGES = int(os.environ.get("BENCH_CONSOLE_PAGES", "16"))  # seats with the console in Chromium
ANSWERING = int(os.environ.get("BENCH_CONSOLE_ANSWERING", "16"))  # more seats answering, no page
MIN_P99_SAMPLES = 1000  # fewer: p99 is printed as null, the max with n stands instead
SEATS = int(os.environ.get("BENCH_CONSOLE_SEATS", "100"))
WAITING = int(os.environ.get("BENCH_CONSOLE_WAITING", "50"))
TOGGLES = int(os.environ.get("BENCH_CONSOLE_TOGGLES", "50"))
SOCKETS = int(os.environ.get("BENCH_CONSOLE_SOCKETS", "20"))
CPU_WINDOW_S = float(os.environ.get("BENCH_CONSOLE_CPU_WINDOW_S", "20"))

ANSWER_PORT = 27081 + PORT_OFFSET  # the answering seats' phone: answers after RING_MS
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
    # Every page paints as a seat's foreground tab would (no throttling of pages in the background)
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
# Records, in the next animation frame (the frame that paints it), when a #pop with a new
# linkedid is in #pop-area ("first") and when it first shows a known resident ("profile": the
# page's data-resident="known", set by fillResident). Both can be the same frame.
PAINT_OBSERVER = """() => {
  window.__paints = [];
  const seen = new Set(), known = new Set();
  const area = document.getElementById("pop-area");
  new MutationObserver(() => {
    const pop = document.getElementById("pop");
    if (!pop) return;
    const id = pop.dataset.linkedid;
    if (!id) return;
    const marks = [];
    if (!seen.has(id)) { seen.add(id); marks.push("first"); }
    if (pop.dataset.resident === "known" && !known.has(id)) { known.add(id); marks.push("profile"); }
    if (!marks.length) return;
    requestAnimationFrame(() => {
      const t = performance.timeOrigin + performance.now();
      for (const m of marks) window.__paints.push([id, m, t]);
    });
  }).observe(area, {childList: true, subtree: true, attributes: true,
                    attributeFilter: ["data-linkedid", "data-resident"]});
  return true;
}"""
# The page's clock against Date.now() (the host's wall clock) when the paints are read.
PAGE_CLOCK = "() => [performance.timeOrigin + performance.now(), Date.now()]"


def prepare():
    """bench_pop's data dir (the shared benchmark data set, extra seats; callers drawn from its
    residents, 10 % unknown), pointed at this benchmark's cache and ports. The first PAGES seats
    (pages in Chromium) and the next ANSWERING seats answer on one sipp phone; every other
    seat's phone rings forever. Returns the settings, the seats with pages, the other answering
    seats, the seats that never answer and the callers."""
    bench_pop.CACHE = CACHE_ROOT / "console"
    bench_pop.PORTS = PORTS
    bench_pop.UAS_PORT = NEVER_PORT
    bench_pop.SEATS = max(0, SEATS - 4)  # the demo has seats 1001-1004
    bench_pop.CALLS = CALLS + WAITING
    settings, exts, callers = bench_pop.prepare()
    pages, answering = exts[:PAGES], exts[PAGES : PAGES + ANSWERING]
    never = exts[PAGES + ANSWERING :]
    if not never:
        raise SystemExit(f"{len(exts)} seats: none left for the wallboard (BENCH_CONSOLE_SEATS)")

    from callcenter.accounts.models import Account
    from callcenter.statistics.orders import OrderRollupTask

    # The order statistics as a deployment that has run before has them: the engine's first
    # recount is then of the recent days only, not of the data set's 400,000 orders in one long
    # write (which held SQLite's lock at start-up and made the seats' logins 503).
    t0 = time.monotonic()
    OrderRollupTask(settings).refresh()
    log(f"order statistics counted in {time.monotonic() - t0:.1f} s")
    with session_scope(settings) as s:
        for seat in s.exec(select(Account).where(col(Account.extension).in_(pages + answering))):
            seat.sip_contact = f"sip:seat{seat.extension}@127.0.0.1:{ANSWER_PORT}"
            s.add(seat)
        s.commit()
    return settings, pages, answering, never, callers


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


class Recorder:
    def __init__(self) -> None:
        # (linkedid, seat) -> (AgentCalled's Timestamp: Asterisk's wall clock, the caller's number)
        self.called: dict[tuple[str, str], tuple[float, str]] = {}
        self.untimed = 0  # AgentCalled without Asterisk's Timestamp header
        self.pause_events: dict[str, list[tuple[float, bool, str]]] = {}  # ext -> (t, paused, reason)

    def on_ami(self, _manager, msg) -> None:
        t = time.perf_counter()
        kind = msg.get("Event", "")
        if kind == "AgentCalled":
            event = ev.parse_event(msg)
            if isinstance(event, ev.AgentCalled):
                if not msg.get("Timestamp"):
                    self.untimed += 1
                key = (event.linkedid, seat_of(event.interface) or event.interface)
                self.called.setdefault(key, (event.emitted, event.caller_num))
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
def _figures(name: str, values: list[float], p99: bool = True) -> dict:
    """p50, p99 (from MIN_P99_SAMPLES samples, else null), max and n of ``values`` (ms)."""
    out = {f"{name}_p50_ms": round(percentile(values, 50), 1) if values else None}
    if p99:
        out[f"{name}_p99_ms"] = round(percentile(values, 99), 1) if len(values) >= MIN_P99_SAMPLES else None
    out[f"{name}_max_ms"] = round(max(values), 1) if values else None
    out[f"{name}_n"] = len(values)
    return out


async def open_page(browser, base_url: str, ext: str):
    """Seat ``ext``'s console in a browser context of its own (its own session), watched."""
    from hotline.demo import DEMO_PASSWORD

    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(base_url + "/login")
    await page.fill("#username", f"seat{ext}")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector('#conn[data-conn="online"]', timeout=60000)
    await page.evaluate(PAINT_OBSERVER)
    return page


async def pop_paint(
    app: App, rec: Recorder, pages: list[str], answering: list[str], callers: list[str]
) -> dict:
    from playwright.async_api import async_playwright

    from hotline.demo import DEMO_PASSWORD
    from hotline.doctor import console_login, open_console_ws

    clients, sockets, drains = [], [], []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            opened = {}
            for ext in pages:
                opened[ext] = await open_page(browser, app.base_url, ext)
            log(f"{len(pages)} seats' consoles online in Chromium")
            # The answering seats without a page have their console open too (a WebSocket each).
            for ext in answering:
                client = await console_login(app.base_url, f"seat{ext}", DEMO_PASSWORD)
                clients.append(client)
                ws = await open_console_ws(app.base_url, client)
                sockets.append(ws)
                drains.append(asyncio.create_task(drain(ws)))

            with SippUAS(port=ANSWER_PORT, ring_ms=RING_MS, talk_ms=0) as uas:
                known = sum(dataset.is_known(c) for c in callers)
                log(
                    f"placing {len(callers)} calls ({known} known residents) at {RATE:g}/s, "
                    f"hold {HOLD_MS} ms; "
                    f"{len(pages) + len(answering)} seats answer after {RING_MS} ms"
                )
                load = os.getloadavg()
                t0 = time.monotonic()
                result = await run_calls(
                    app.settings,
                    bench_pop.DID,
                    callers,
                    rate=RATE,
                    hold_ms=HOLD_MS,
                    timeout=len(callers) / RATE + HOLD_MS / 1000 + 120,
                )
                elapsed = time.monotonic() - t0
                log(
                    f"sipp done in {elapsed:.1f} s: created {result.calls}, successful {result.successful}, "
                    f"failed {result.failed}, rc {result.returncode}; load average before {load}"
                )
                if result.failed or result.returncode:
                    log("sipp errors: " + (result.errors or result.output).strip()[-1500:])
                await asyncio.sleep(2)  # a late paint
                answered = uas.stats().get("SuccessfulCall(C)", "?")
                log(f"the seats' phone answered {answered} calls")
            paints: dict[str, list] = {}
            skew_ms = 0.0
            for ext, page in opened.items():
                paints[ext] = await page.evaluate("window.__paints")
                page_clock, date_now = await page.evaluate(PAGE_CLOCK)
                skew_ms = max(skew_ms, abs(page_clock - date_now))
        finally:
            for ws in sockets:
                with contextlib.suppress(Exception):
                    await ws.close()
            for task in drains:
                task.cancel()
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await browser.close()

    first: dict[tuple[str, str], float] = {}  # (linkedid, seat) -> the frame with the pop
    profile: dict[tuple[str, str], float] = {}  # ... -> the frame with the resident's profile
    for ext, marks in paints.items():
        for linkedid, kind, at_ms in marks:
            (first if kind == "first" else profile).setdefault((linkedid, ext), at_ms)
    painted: list[float] = []  # known callers: AgentCalled -> the frame with the profile
    first_frame: list[float] = []  # every caller: AgentCalled -> the first frame with the pop
    without_profile: list[float] = []  # known callers whose first frame had no profile
    never_profile = unmatched = rung = 0
    for (linkedid, ext), (called, caller) in rec.called.items():
        if ext not in opened:
            continue
        rung += 1
        key = (linkedid, ext)
        if key not in first:
            unmatched += 1
            continue
        first_frame.append(first[key] - called * 1000)
        if not dataset.is_known(caller.removeprefix("+86")):
            continue
        if key not in profile:
            never_profile += 1
        elif profile[key] > first[key]:
            without_profile.append(first[key] - called * 1000)
        if key in profile:
            painted.append(profile[key] - called * 1000)
    log(
        f"AgentCalled {len(rec.called)} call/seat pairs, {rung} on seats with a page "
        f"({rec.untimed} without Asterisk's Timestamp); paints: {len(first_frame)} first frames, "
        f"{len(painted)} with the profile (known callers), {len(without_profile)} known callers' first "
        f"frame without it, {never_profile} never with it, {unmatched} no paint; "
        f"page clock vs Date.now() at most {skew_ms:.1f} ms apart"
    )
    for name, values in (("profile", painted), ("first frame", first_frame)):
        if values:
            log(
                f"paint {name} ms: min {min(values):.1f}, p50 {percentile(values, 50):.1f}, "
                f"p90 {percentile(values, 90):.1f}, p99 {percentile(values, 99):.1f}, max {max(values):.1f} "
                f"(n {len(values)})"
            )
    if len(painted) < MIN_P99_SAMPLES:
        log(f"pop_paint_p99_ms is null: {len(painted)} samples < {MIN_P99_SAMPLES} (see the max and n)")
    return {
        **_figures("pop_paint", painted),
        **_figures("pop_paint_first_frame", first_frame),
        **_figures("pop_paint_without_profile", without_profile, p99=False),
        "pop_paint_never_profile_n": never_profile,
        "pop_paint_missing_n": unmatched,
        "pop_paint_pages": len(pages),
        "pop_paint_answering_seats": len(pages) + len(answering),
        "pop_paint_clock_skew_ms": round(skew_ms, 1),
        "pop_calls": len(callers),
        "pop_calls_sipp_ok": result.successful,
        "pop_calls_sipp_failed": result.failed,
        "pop_rate_per_s": RATE if RATE != int(RATE) else int(RATE),
        "pop_calls_per_s": round(len(callers) / elapsed, 2),
        "pop_answered": answered,
        "pop_load_avg": [round(x, 2) for x in load],
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


async def wallboard(
    app: App, manager, rec: Recorder, answering: list[str], never: list[str], callers: list[str]
) -> dict:
    from hotline.demo import DEMO_PASSWORD
    from hotline.doctor import console_login, open_console_ws

    settings = app.settings
    reasons = list(settings.pause_reasons)
    await pause_all(manager, answering, reasons[0])  # the callers wait: only never-answering seats change
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

        candidates = never
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


async def measure(
    app: App, pages: list[str], answering: list[str], never: list[str], callers: list[str]
) -> dict:
    rec = Recorder()
    manager = await open_manager(app.settings, rec.on_ami)
    try:
        log(f"pausing the {len(never)} seats that never answer")
        await pause_all(manager, never, app.settings.pause_reasons[0])
        with SippUAS(port=NEVER_PORT, ring_ms=None):
            result = {"bench": "console", "seats": len(pages) + len(answering) + len(never)}
            result.update(await pop_paint(app, rec, pages, answering, callers[:CALLS]))
            result.update(
                await wallboard(app, manager, rec, pages + answering, never, callers[CALLS : CALLS + WAITING])
            )
    finally:
        close_manager(manager)
    return result


def main() -> None:
    started = time.monotonic()
    settings, pages, answering, never, callers = prepare()
    log(
        f"data dir ready ({len(pages)} seats with pages, {len(answering)} more answering, {len(never)} "
        f"never answering) in {time.monotonic() - started:.1f} s"
    )
    result = on_stack(settings, measure, pages, answering, never, callers)
    result["run_s"] = round(time.monotonic() - started, 1)
    log(f"total {result['run_s']} s")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
