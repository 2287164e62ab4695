"""Sustained load through the whole call path: the Mandarin menu, the FastAGI route, the queue and
seats answering — and the same path with the FastAGI step replaced by static dialplan, side by
side in one run.

The stack runs as in production: Asterisk (asterisk_conf.process), ``callcenter serve`` in its own
process, one sipp answering machine as every seat's phone, residents' calls placed by sipp. Each
call hears the welcome, presses 1 in the menu of 96346 (SIP INFO), waits in the skill queue, is
answered by a seat and hangs up HOLD_MS later.

The key is pressed 3 s after the answer: Asterisk's Answer() waits up to 500 ms for the caller's
first audio (sipp sends none), the welcome lasts about 1.1 s, so the route has about 1.4 s before
the key would fall into the welcome and be lost (the call then never reaches the queue: a failed
call). ``route_p50_ms`` / ``route_max_ms`` per step: channel created -> the route's answer
(CC_ROUTE_AT), the 500 ms answer wait included.

The database is the shared benchmark data set (benchmarks/dataset.py: BENCH_RESIDENTS residents,
1,000,000, with households, elderly profiles, service archives, earlier calls and orders); every
call of the run comes from a different number, drawn from its residents, with BENCH_UNKNOWN_SHARE
(10 %) numbers no resident has, so at every rate the route finds the resident and the engine
builds a known caller's profile for about nine calls in ten.

A step places RATE calls/s for STEP_S seconds. It passes when sipp reports no failed call, every
call joined the menu's queue with the route's answer (CC_ROUTE_OK=1: a FastAGI timeout would fall
back silently) and every call was answered by a seat. A failed step is run once more (the machine
is shared); a rate fails when both runs fail. Rates go up until a rate fails, for both paths
alternately; the highest passing rate is the path's figure.

app_cpu_ms_per_call: CPU time (user + system) of the app process during the full-path steps, less
its idle CPU over the same time (measured first), divided by the calls of those steps;
app_cpu_ms_per_call_static is the same for the static path (AMI events, pops, call records).
Each step also logs Asterisk's own CPU time (the machine has 2 cores shared by Asterisk, the app
and both sipp: the ceiling of either path is where the machine runs out).

Prints progress to stderr and one JSON line last on stdout:
{"bench": "full_path", "full_path_max_cps", "static_path_max_cps", "python_overhead_ratio",
 "app_cpu_ms_per_call", "rates_tried", "steps"}.

Sizes: BENCH_FULL_RATES (comma-separated calls/s, "16,24,32,40,48,52,56,60,64,68,72,80": finer
steps near the machine's limit, where steps of 8 could only give a ratio of 1.0 or 0.875),
BENCH_FULL_STEP_S (10), BENCH_FULL_SEATS (extra seats, 200), BENCH_FULL_HOLD_MS (1000),
BENCH_FULL_KEY_AT_MS (3000), BENCH_RESIDENTS, BENCH_UNKNOWN_SHARE.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from asterisk_conf import process  # noqa: E402
from asterisk_conf.sipp import SippUAS, run_calls  # noqa: E402
from benchmarks import dataset  # noqa: E402
from benchmarks.common import CACHE_ROOT, PORT_OFFSET, fresh_data_dir, log, on_stack, ports  # noqa: E402
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, open_manager  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import session_scope  # noqa: E402
from tests.e2e.conftest import App  # noqa: E402

DEFAULT_RATES = "16,24,32,40,48,52,56,60,64,68,72,80"
RATES = [float(r) for r in os.environ.get("BENCH_FULL_RATES", DEFAULT_RATES).split(",") if r]
STEP_S = float(os.environ.get("BENCH_FULL_STEP_S", "10"))
SEATS = int(os.environ.get("BENCH_FULL_SEATS", "200"))
HOLD_MS = int(os.environ.get("BENCH_FULL_HOLD_MS", "1000"))
RING_MS = 100
KEY_AT_MS = int(os.environ.get("BENCH_FULL_KEY_AT_MS", "3000"))  # during the menu
MENU_DID = "96346"
STATIC_DID = "96398"
KEY = "1"
IDLE_S = 5.0
CLOCK = "2026-11-27T10:00:00"  # a working Friday morning: the menu's number is open
CACHE = CACHE_ROOT / "full_path"
# Apart from the other benchmarks' ports and from the e2e tests' (which add 1000s to theirs).
UAS_PORT = 23081 + PORT_OFFSET
PORTS = ports(
    ami_port=23038,
    sip_port=23060,
    agi_port=23573,
    web_port=23080,
    rtp_start=18000,
    rtp_end=19999,
    doctor_sip_port=23099,
    asterisk_http_port=23088,
)


def make_settings() -> Settings:
    return set_settings(
        Settings(data_dir=CACHE / "var", _env_file=None, clock=CLOCK, bench_static_did=STATIC_DID, **PORTS)
    )


def prepare() -> tuple[Settings, str, list[str]]:
    """A fresh data dir: the benchmark data set, SEATS extra seats in the menu's queue, every
    seat's phone on one sipp port, short prompts. Returns the settings, the menu key's queue, the
    callers."""
    settings = make_settings()
    fresh_data_dir(settings, CACHE, residents=dataset.RESIDENTS)

    from callcenter.accounts.models import Account, QueueMembership
    from callcenter.accounts.service import hash_password
    from callcenter.directory.models import CallQueue
    from callcenter.ivr.models import IvrOption
    from hotline.demo import DEMO_PASSWORD

    with session_scope(settings) as s:
        options = s.exec(select(IvrOption).where(IvrOption.number == MENU_DID)).all()
        for o in options:
            o.prompt_text = f"按{o.digit}"
            s.add(o)
        queue = next(o.queue_name for o in options if o.digit == KEY)
        pw = hash_password(DEMO_PASSWORD)
        for i in range(1, SEATS + 1):
            ext = str(3000 + i)
            acc = Account(
                username=f"seat{ext}",
                display_name=f"压测坐席{i:03d}",
                password_hash=pw,
                role="seat",
                must_change_password=False,
                extension=ext,
            )
            s.add(acc)
            s.flush()
            s.add(QueueMembership(account_id=acc.id, queue_name=queue, penalty=0))
        for acc in s.exec(select(Account).where(Account.role == "seat")).all():
            if acc.extension:
                acc.sip_contact = f"sip:seat{acc.extension}@127.0.0.1:{UAS_PORT}"
                s.add(acc)
        for q in s.exec(select(CallQueue)).all():
            q.wrapup = 0
            s.add(q)
        s.commit()
    # Each call of the run from a different number (a caller answered minutes ago would be
    # offered to that seat first, a different path): enough for every step run twice, both paths.
    needed = sum(max(1, int(rate * STEP_S)) for rate in RATES) * 4
    return settings, queue, dataset.callers(needed)


class Counter:
    """Per linkedid: joined the expected queue with the route's answer; answered by a seat."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.joined_ok: set[str] = set()
        self.joined_other: set[str] = set()
        self.connected: set[str] = set()
        self.created: dict[str, float] = {}  # linkedid -> Newchannel (Asterisk's clock)
        self.route_ms: list[float] = []  # Newchannel -> the FastAGI route's answer (CC_ROUTE_AT)

    def on_ami(self, _manager, msg) -> None:
        event = ev.parse_event(msg)
        if isinstance(event, ev.Newchannel) and event.uniqueid == event.linkedid:
            self.created[event.linkedid] = event.emitted or event.received
        elif isinstance(event, ev.Hangup) and event.uniqueid == event.linkedid:
            at = event.variables.get("CC_ROUTE_AT", "")
            start = self.created.pop(event.linkedid, None)
            if at and start:
                self.route_ms.append((float(at) - start) * 1000)
        if isinstance(event, ev.QueueCallerJoin):
            ok = (
                event.variables.get("CC_ROUTE_OK") == "1"
                and event.variables.get("CC_IVR_CHOICE") == KEY
                and event.queue == self.queue
            )
            (self.joined_ok if ok else self.joined_other).add(event.linkedid)
        elif isinstance(event, ev.AgentConnect):
            self.connected.add(event.linkedid)

    def reset(self) -> None:
        self.route_ms.clear()
        self.joined_ok.clear()
        self.joined_other.clear()
        self.connected.clear()


def cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


async def step(settings: Settings, counter: Counter, did: str, rate: float, callers: list[str]) -> dict:
    n = max(1, int(rate * STEP_S))
    batch, callers[:] = callers[:n], callers[n:]
    counter.reset()
    result = await run_calls(
        settings,
        did,
        batch,
        rate=rate,
        hold_ms=HOLD_MS,
        dtmf=[KEY_AT_MS, KEY],
        timeout=STEP_S + 60,
    )
    await asyncio.sleep(1.0)  # the last events
    delays = sorted(counter.route_ms)
    ok = (
        result.returncode == 0
        and result.failed == 0
        and result.successful == n
        and len(counter.joined_ok) == n
        and not counter.joined_other
        and len(counter.connected) == n
    )
    return {
        "rate": rate,
        "calls": n,
        "known_callers": sum(dataset.is_known(c) for c in batch),
        "ok": ok,
        "sipp_ok": result.successful,
        "sipp_failed": result.failed,
        "joined": len(counter.joined_ok),
        "fallback_or_wrong_queue": len(counter.joined_other),
        "answered": len(counter.connected),
        # how long after the call arrived the FastAGI route had answered (full path only)
        "route_p50_ms": round(delays[len(delays) // 2], 1) if delays else None,
        "route_max_ms": round(delays[-1], 1) if delays else None,
    }


async def measure(app: App, queue: str, callers: list[str]) -> dict:
    settings = app.settings
    counter = Counter(queue)
    # As the engine's user: Asterisk sends only the engine's events (the counter reads four of
    # them), not every call event for this process to parse on the machine the calls share.
    manager = await open_manager(settings, counter.on_ami, username=settings.ami_engine_user)
    best = {"full": 0.0, "static": 0.0}
    failed = {"full": False, "static": False}
    steps = []
    cpu_total = {"full": 0.0, "static": 0.0}
    calls_total = {"full": 0, "static": 0}
    # The app's CPU when no call comes (AMI keep-alive, wallboard timer): taken off each step.
    await asyncio.sleep(IDLE_S)  # the start-up's own work (re-sync, first snapshots) is over
    idle0, t0 = cpu_ms(app.proc.pid), time.monotonic()
    await asyncio.sleep(IDLE_S)
    idle_ms_per_s = (cpu_ms(app.proc.pid) - idle0) / (time.monotonic() - t0)
    log(f"app idle: {idle_ms_per_s:.1f} ms CPU per second")
    asterisk_pid = int(process.pid_file(settings).read_text().split()[0])
    try:
        with SippUAS(port=UAS_PORT, ring_ms=RING_MS, talk_ms=0):
            for rate in RATES:
                for path, did in (("full", MENU_DID), ("static", STATIC_DID)):
                    if failed[path]:
                        continue
                    # The machine is shared (2 cores): a failed step is run once more, and the
                    # rate fails only when both runs lose a call. Both paths are treated alike.
                    for attempt in (1, 2):
                        cpu0, t0 = cpu_ms(app.proc.pid), time.monotonic()
                        ast0 = cpu_ms(asterisk_pid)
                        outcome = await step(settings, counter, did, rate, callers)
                        cpu = cpu_ms(app.proc.pid) - cpu0 - idle_ms_per_s * (time.monotonic() - t0)
                        ast = cpu_ms(asterisk_pid) - ast0
                        outcome |= {
                            "path": path,
                            "attempt": attempt,
                            "app_cpu_ms": round(cpu),
                            "asterisk_cpu_ms": round(ast),
                            "wall_s": round(time.monotonic() - t0, 1),
                        }
                        cpu_total[path] += cpu
                        calls_total[path] += outcome["calls"]
                        steps.append(outcome)
                        o = outcome
                        log(
                            f"{path:6} {rate:5g}/s #{attempt}: {o['calls']} calls, sipp ok {o['sipp_ok']} "
                            f"failed {o['sipp_failed']}, joined {o['joined']}, answered {o['answered']}, "
                            f"fallback/wrong {o['fallback_or_wrong_queue']}, route p50/max "
                            f"{o['route_p50_ms']}/{o['route_max_ms']} ms, app cpu {cpu:.0f} ms, asterisk cpu "
                            f"{ast:.0f} ms in {o['wall_s']} s -> "
                            f"{'PASS' if o['ok'] else 'FAIL'}"
                        )
                        await asyncio.sleep(2)  # calls drain before the next step
                        if outcome["ok"]:
                            break
                    if outcome["ok"]:
                        best[path] = rate
                    else:
                        failed[path] = True
                if all(failed.values()):
                    break
    finally:
        close_manager(manager)
    ratio = round(best["full"] / best["static"], 3) if best["static"] else None
    return {
        "bench": "full_path",
        "full_path_max_cps": best["full"],
        "static_path_max_cps": best["static"],
        "python_overhead_ratio": ratio,
        "app_cpu_ms_per_call": round(cpu_total["full"] / calls_total["full"], 2)
        if calls_total["full"]
        else None,
        # the same without the FastAGI route (the engine still follows every call by AMI)
        "app_cpu_ms_per_call_static": (
            round(cpu_total["static"] / calls_total["static"], 2) if calls_total["static"] else None
        ),
        "app_idle_cpu_ms_per_s": round(idle_ms_per_s, 1),
        "residents": dataset.RESIDENTS,
        "unknown_share": dataset.UNKNOWN_SHARE,
        "rates_tried": RATES,
        "step_s": STEP_S,
        "hold_ms": HOLD_MS,
        "steps": steps,
    }


def main() -> None:
    started = time.monotonic()
    settings, queue, callers = prepare()
    log(f"data dir ready ({SEATS} extra seats in {queue}) in {time.monotonic() - started:.1f} s")
    # The app's process reads the benchmark's clock and static number from its environment.
    os.environ.update({"CALLCENTER_CLOCK": CLOCK, "CALLCENTER_BENCH_STATIC_DID": STATIC_DID})
    result = on_stack(settings, measure, queue, callers)
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
