"""Sustained load through the whole call path: the Mandarin menu, the FastAGI route, the queue and
seats answering — and the same path with the FastAGI step replaced by static dialplan, side by
side in one run.

The stack runs as in production: Asterisk (asterisk_conf.process), ``callcenter serve`` in its own
process, one sipp answering machine as every seat's phone, residents' calls placed by sipp. Each
call hears the welcome, presses 1 in the menu of 96346 (SIP INFO), waits in the skill queue, is
answered by a seat and hangs up HOLD_MS later.

A step places RATE calls/s for STEP_S seconds. It passes when sipp reports no failed call, every
call joined the menu's queue with the route's answer (CC_ROUTE_OK=1: a FastAGI timeout would fall
back silently) and every call was answered by a seat. Rates go up until a step fails, for both
paths alternately; the highest passing rate is the path's figure.

app_cpu_ms_per_call: CPU time (user + system) of the app process during the full-path steps,
divided by the calls of those steps.

Prints progress to stderr and one JSON line last on stdout:
{"bench": "full_path", "full_path_max_cps", "static_path_max_cps", "python_overhead_ratio",
 "app_cpu_ms_per_call", "rates_tried", "steps"}.

Sizes: BENCH_FULL_RATES (comma-separated calls/s, "2,4,6,8,12,16,20,24,32"), BENCH_FULL_STEP_S (10),
BENCH_FULL_SEATS (extra seats, 200), BENCH_FULL_HOLD_MS (1000).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from asterisk_conf import process  # noqa: E402
from asterisk_conf.sipp import SippUAS, run_calls  # noqa: E402
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, open_manager  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import migrate, session_scope  # noqa: E402
from tests.e2e.conftest import App  # noqa: E402

RATES = [float(r) for r in os.environ.get("BENCH_FULL_RATES", "2,4,6,8,12,16,20,24,32").split(",") if r]
STEP_S = float(os.environ.get("BENCH_FULL_STEP_S", "10"))
SEATS = int(os.environ.get("BENCH_FULL_SEATS", "200"))
HOLD_MS = int(os.environ.get("BENCH_FULL_HOLD_MS", "1000"))
RING_MS = 100
KEY_AT_MS = int(os.environ.get("BENCH_FULL_KEY_AT_MS", "2500"))  # after the welcome, during the menu
MENU_DID = "96346"
STATIC_DID = "96398"
KEY = "1"
CLOCK = "2026-11-27T10:00:00"  # a working Friday morning: the menu's number is open
CACHE = ROOT / "benchmarks" / ".cache" / "full_path"
UAS_PORT = 31081
PORTS = {
    "ami_port": 31038,
    "sip_port": 31060,
    "agi_port": 31573,
    "web_port": 31080,
    "rtp_start": 16000,
    "rtp_end": 17999,
    "doctor_sip_port": 31099,
}


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def make_settings() -> Settings:
    return set_settings(
        Settings(data_dir=CACHE / "var", _env_file=None, clock=CLOCK, bench_static_did=STATIC_DID, **PORTS)
    )


def prepare() -> tuple[Settings, str, list[str]]:
    """A fresh data dir: demo data, SEATS extra seats in the menu's queue, every seat's phone on
    one sipp port, short prompts. Returns the settings, the menu key's queue, the callers."""
    settings = make_settings()
    process.stop(settings)  # a previous run that died before its teardown
    shutil.rmtree(CACHE, ignore_errors=True)
    settings.data_dir.mkdir(parents=True)
    migrate(settings)
    settings.load_secrets()
    (settings.data_dir / "prompts.json").write_text(json.dumps({"welcome": "您好。"}, ensure_ascii=False))

    from callcenter.accounts.models import Account, QueueMembership
    from callcenter.accounts.service import hash_password
    from callcenter.demo import DEMO_PASSWORD, load_demo
    from callcenter.directory.models import CallQueue
    from callcenter.ivr.models import IvrOption
    from callcenter.residents.models import Resident

    with session_scope(settings) as s:
        load_demo(s, residents=2000, seat_contact_base_port=None, must_change_password=False)
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
                sip_password="bench-" + ext,
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
        phones = [p for p in s.exec(select(Resident.phone)).all() if p.startswith("+861") and len(p) == 14]
    # Each call of the run from a different number (residents first, then unknown callers): a
    # caller answered minutes ago would be offered to that seat first, a different path.
    callers = [p[3:] for p in sorted(set(phones))]
    callers += [f"170{n:08d}" for n in range(20000)]
    return settings, queue, callers


class Counter:
    """Per linkedid: joined the expected queue with the route's answer; answered by a seat."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.joined_ok: set[str] = set()
        self.joined_other: set[str] = set()
        self.connected: set[str] = set()

    def on_ami(self, _manager, msg) -> None:
        event = ev.parse_event(msg)
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
        "ok": ok,
        "sipp_ok": result.successful,
        "sipp_failed": result.failed,
        "joined": len(counter.joined_ok),
        "fallback_or_wrong_queue": len(counter.joined_other),
        "answered": len(counter.connected),
    }


async def measure(app: App, queue: str, callers: list[str]) -> dict:
    settings = app.settings
    counter = Counter(queue)
    manager = await open_manager(settings, counter.on_ami)
    best = {"full": 0.0, "static": 0.0}
    failed = {"full": False, "static": False}
    steps = []
    cpu_total = 0.0
    calls_total = 0
    try:
        with SippUAS(port=UAS_PORT, ring_ms=RING_MS, talk_ms=0):
            for rate in RATES:
                for path, did in (("full", MENU_DID), ("static", STATIC_DID)):
                    if failed[path]:
                        continue
                    cpu0 = cpu_ms(app.proc.pid)
                    outcome = await step(settings, counter, did, rate, callers)
                    cpu = cpu_ms(app.proc.pid) - cpu0
                    outcome["path"] = path
                    if path == "full":
                        cpu_total += cpu
                        calls_total += outcome["calls"]
                    steps.append(outcome)
                    log(
                        f"{path:6} {rate:5g}/s: {outcome['calls']} calls, sipp ok {outcome['sipp_ok']} "
                        f"failed {outcome['sipp_failed']}, joined {outcome['joined']}, answered "
                        f"{outcome['answered']}, fallback/wrong {outcome['fallback_or_wrong_queue']}, "
                        f"app cpu {cpu:.0f} ms -> {'PASS' if outcome['ok'] else 'FAIL'}"
                    )
                    if outcome["ok"]:
                        best[path] = rate
                    else:
                        failed[path] = True
                    await asyncio.sleep(2)  # calls drain before the next step
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
        "app_cpu_ms_per_call": round(cpu_total / calls_total, 2) if calls_total else None,
        "rates_tried": RATES,
        "step_s": STEP_S,
        "hold_ms": HOLD_MS,
        "steps": steps,
    }


def main() -> None:
    started = time.monotonic()
    settings, queue, callers = prepare()
    log(f"data dir ready ({SEATS} extra seats in {queue}) in {time.monotonic() - started:.1f} s")
    app = App(settings)
    env = {"CALLCENTER_CLOCK": CLOCK, "CALLCENTER_BENCH_STATIC_DID": STATIC_DID}
    os.environ.update(env)
    try:
        process.start(settings)
        log("Asterisk up")
        app.start()
        log("app up")
        result = asyncio.run(measure(app, queue, callers))
    finally:
        app.stop()
        process.stop(settings)
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
