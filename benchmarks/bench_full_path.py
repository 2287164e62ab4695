"""Sustained load through the whole call path with audio both ways and recording: the Mandarin
menu, the FastAGI route, the queue and seats answering — and the same path with the FastAGI step
replaced by static dialplan, side by side in one run.

The stack runs as in production: Asterisk (asterisk_conf.process), ``callcenter serve`` in its own
process, one sipp answering machine as every seat's phone, residents' calls placed by sipp. Each
call hears the welcome, presses 1 in the menu of 96346 (SIP INFO), waits in the skill queue, is
answered by a seat and hangs up HOLD_MS after the key. Audio flows both ways for the whole call:
the resident's sipp streams a looped 1 kHz tone (8 kHz µ-law, sipp ``rtp_stream``) from Asterisk's
answer on, the seats' sipp answers in PCMU and streams a looped 440 Hz tone; every call a seat
answers is recorded by the product's own dialplan (MixMonitor in cc-queue, spool/monitor/
<linkedid>.wav).

Prompts (BENCH_FULL_PROMPTS): ``short`` (the rate ramp's default) shortens them, a disclosed
deviation: the welcome to "您好。" (benchmarks/common.py fresh_data_dir; the product's is
"您好，社区服务热线。紧急情况请拨幺幺零、幺幺九、幺二零。", about 5 s) and each menu prompt to
"按<digit>" (the product's "老年人服务请按1。" etc.); the key is pressed BENCH_FULL_KEY_AT_MS
(3000) after the answer. ``production`` keeps the product's welcome and menu prompts and presses
the key when the caller has heard the welcome, "人工服务请按0。" and "老年人服务请按1。" (their
generated lengths read from the sound files) plus 1.9 s (the 1.4 s the route had before the
welcome in the short configuration and Answer()'s 0.5 s). With ``short``, the run ends with the
production prompts at one rate, BENCH_FULL_PRODUCTION_RATE (20 calls/s; 0: not run): three steps
per path, as below (``production_prompts_*``).

Calls are short (about 3 s of menu and HOLD_MS, 1 s, of talk): a disclosed deviation from a real
shift's 60-180 s calls. At the rates this ramp reaches, 60-180 s calls would mean thousands of
concurrent recorded calls, more than the 2-core machine holds, so the ramp would measure where
the machine runs out of concurrent media, not the route's cost per call set-up. Long recorded
calls are measured by bench_capacity.py (max_concurrent_recorded_calls) and the soak benchmark.

A step places RATE calls/s for STEP_S seconds. It passes when sipp reports no failed call, every
call joined the menu's queue with the route's answer (CC_ROUTE_OK=1: a FastAGI timeout would fall
back silently), every call was answered by a seat, and every answered call left a recording with
audio in it (more than 50 ms); up to three recordings per step are checked for both tones
(``two_way_min``: the share of their sounding 50 ms blocks that hold the caller's and the seat's
tone; a step passes only when each checked one is at least 0.5). A rate is held when three
consecutive steps at that rate pass, with no retry: one failed step fails the rate, and the path
stops there. The paths alternate step by step (full, static, full, static, ...), so both see the
same machine. The highest rate held is the path's figure.

``route_p50_ms`` / ``route_max_ms`` per step: channel created (Newchannel, Asterisk's Timestamp)
-> the route's answer (CC_ROUTE_AT, Asterisk's clock too), Answer()'s wait for the caller's first
audio included.

The database is the shared benchmark data set (benchmarks/dataset.py: BENCH_RESIDENTS residents,
1,000,000, with households, elderly profiles, service archives, earlier calls and orders); every
call of the run comes from a different number, drawn from its residents, with BENCH_UNKNOWN_SHARE
(10 %) numbers no resident has, so at every rate the route finds the resident and the engine
builds a known caller's profile for about nine calls in ten.

Figures (each with its n):
- ``full_path_max_cps``, ``static_path_max_cps``: the highest rate held; ``*_max_cps_n``: the
  calls of the three steps that held it (``calls_per_step`` at that rate x ``steps_per_rate``).
- ``python_overhead_ratio``: full_path_max_cps / static_path_max_cps; ``_n``: the calls of the
  six steps behind the two rates.
- ``full_path_app_cpu_ms_per_call`` / ``static_path_app_cpu_ms_per_call``: the app process's CPU
  time (user + system) during that path's steps at ``cpu_rate_cps`` (the highest rate both paths
  held, so both figures come from the same rate), less its idle CPU over the same time (measured
  before and after the steps, the lower taken), divided by the calls of those steps (``*_n``).
  Not ``app_cpu_ms_per_call``, which bench_pop.py defines (fixed 20 calls/s).
  ``*_asterisk_cpu_ms_per_call`` is Asterisk's, the same way (idle not taken off). The machine
  has 2 cores shared by Asterisk, the app and both sipp: the ceiling of either path is where the
  machine runs out.
- ``production_prompts_*`` (see Prompts): the rate, whether each path held it, the calls each
  path placed at it (``*_n``: its steps stop at the first that fails).
- ``load_average_start`` / ``_end``: the machine's load (1, 5, 15 min) before and after.

Prints progress to stderr and one JSON line last on stdout:
{"bench": "full_path", "full_path_max_cps", "static_path_max_cps", "python_overhead_ratio",
 "full_path_app_cpu_ms_per_call", "static_path_app_cpu_ms_per_call", ..., "steps"}.

Sizes: BENCH_FULL_RATES (comma-separated calls/s, "16,24,32,40,48,52,56,60,64,68,72,80"),
BENCH_FULL_STEP_S (10), BENCH_FULL_SEATS (extra seats, 200), BENCH_FULL_HOLD_MS (1000),
BENCH_FULL_KEY_AT_MS (3000, short prompts), BENCH_FULL_PROMPTS (short), BENCH_FULL_PRODUCTION_RATE
(20), BENCH_FULL_PRODUCTION_PATHS (the paths run with the production prompts, "full,static"),
BENCH_FULL_STEPS_PER_RATE (3), BENCH_FULL_IDLE_S (5: each of the two idle measurements waits
twice this), BENCH_RESIDENTS, BENCH_UNKNOWN_SHARE. The smoke test (tests/benchmarks/test_smoke.py)
runs one step per rate, the production prompts on the full path only, and short idle waits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from asterisk_conf import ivr_sounds, process, sounds  # noqa: E402
from asterisk_conf.sipp import run_calls  # noqa: E402
from benchmarks import dataset  # noqa: E402
from benchmarks.common import (  # noqa: E402
    CACHE_ROOT,
    CALLER_TONE_HZ,
    PORT_OFFSET,
    SEAT_TONE_HZ,
    add_seats,
    cpu_ms,
    fresh_data_dir,
    load_average,
    log,
    looped_tone,
    on_stack,
    ports,
    ring_every_seat_at,
    speaking_seat_phone,
    two_way_share,
)
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, open_manager  # noqa: E402
from callcenter.callcontrol.recordings import recordings_dir  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import session_scope  # noqa: E402
from callcenter.ivr.service import option_prompt_name  # noqa: E402
from tests.e2e.conftest import App  # noqa: E402

DEFAULT_RATES = "16,24,32,40,48,52,56,60,64,68,72,80"
RATES = [float(r) for r in os.environ.get("BENCH_FULL_RATES", DEFAULT_RATES).split(",") if r]
STEP_S = float(os.environ.get("BENCH_FULL_STEP_S", "10"))
SEATS = int(os.environ.get("BENCH_FULL_SEATS", "200"))
HOLD_MS = int(os.environ.get("BENCH_FULL_HOLD_MS", "1000"))
RING_MS = 100
KEY_AT_MS = int(os.environ.get("BENCH_FULL_KEY_AT_MS", "3000"))  # during the menu (short prompts)
PROMPTS = os.environ.get("BENCH_FULL_PROMPTS", "short")
PRODUCTION_RATE = float(os.environ.get("BENCH_FULL_PRODUCTION_RATE", "20"))
# a rate is held when this many consecutive steps pass
STEPS_PER_RATE = int(os.environ.get("BENCH_FULL_STEPS_PER_RATE", "3"))
# Before the welcome in the short configuration the route had 1.4 s, Answer() waits up to 0.5 s
# for the caller's audio: the production key keeps both after the prompts the caller must hear.
PRODUCTION_KEY_SLACK_MS = 1900
MIN_RECORDING_BYTES = 44 + 1600  # the WAV header and 50 ms of 8 kHz 16-bit audio
MIN_TWO_WAY = 0.5
TWO_WAY_CHECKS = 3  # recordings per step checked for both tones
MENU_DID = "96346"
STATIC_DID = "96398"
KEY = "1"
IDLE_S = float(os.environ.get("BENCH_FULL_IDLE_S", "5"))
CLOCK = "2026-11-27T10:00:00"  # a working Friday morning: the menu's number is open
CACHE = CACHE_ROOT / "full_path"
PATHS = (("full", MENU_DID), ("static", STATIC_DID))
PRODUCTION_PATHS = os.environ.get("BENCH_FULL_PRODUCTION_PATHS", "full,static").split(",")
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


def calls_needed() -> int:
    per_path = sum(max(1, int(rate * STEP_S)) for rate in RATES)
    if PROMPTS == "short" and PRODUCTION_RATE > 0:
        per_path += max(1, int(PRODUCTION_RATE * STEP_S))
    return per_path * STEPS_PER_RATE * len(PATHS)


def prepare() -> tuple[Settings, str, list[str], dict[str, str]]:
    """A fresh data dir: the benchmark data set, SEATS extra seats in the menu's queue, every
    seat's phone on one sipp port, the prompts BENCH_FULL_PROMPTS asks for. Returns the settings,
    the menu key's queue, the callers and the menu's production prompt texts (digit -> text)."""
    settings = make_settings()
    fresh_data_dir(settings, CACHE, residents=dataset.RESIDENTS)
    if PROMPTS == "production":
        sounds.prompts_file(settings).unlink(missing_ok=True)  # the product's welcome
    elif PROMPTS != "short":
        raise SystemExit(f"BENCH_FULL_PROMPTS must be short or production, not {PROMPTS!r}")
    if not PRODUCTION_PATHS or not set(PRODUCTION_PATHS) <= {path for path, _ in PATHS}:
        raise SystemExit(
            f"BENCH_FULL_PRODUCTION_PATHS must name full and/or static, not {PRODUCTION_PATHS!r}"
        )

    from callcenter.directory.models import CallQueue
    from callcenter.ivr.models import IvrOption

    with session_scope(settings) as s:
        options = s.exec(select(IvrOption).where(IvrOption.number == MENU_DID)).all()
        production = {o.digit: o.prompt_text for o in options}
        if PROMPTS == "short":
            for o in options:
                o.prompt_text = f"按{o.digit}"
                s.add(o)
        queue = next(o.queue_name for o in options if o.digit == KEY)
        add_seats(s, SEATS, 3000, "压测坐席", queue)
        ring_every_seat_at(s, UAS_PORT)
        for q in s.exec(select(CallQueue)).all():
            q.wrapup = 0
            s.add(q)
        s.commit()
    # Each call of the run from a different number (a caller answered minutes ago would be
    # offered to that seat first, a different path).
    return settings, queue, dataset.callers(calls_needed()), production


def use_production_prompts(settings: Settings, production: dict[str, str]) -> None:
    """The product's welcome and menu prompts, made into the sound files Asterisk plays (it opens
    them at each Playback: no reload)."""
    from callcenter.ivr.models import IvrOption

    sounds.prompts_file(settings).unlink(missing_ok=True)
    with session_scope(settings) as s:
        for o in s.exec(select(IvrOption).where(IvrOption.number == MENU_DID)).all():
            o.prompt_text = production[o.digit]
            s.add(o)
        s.commit()
    ivr_sounds.generate_all(settings)


def prompt_ms(settings: Settings, name: str) -> float:
    with wave.open(str(sounds.sounds_dir(settings) / f"{name}.wav"), "rb") as w:
        return w.getnframes() * 1000 / w.getframerate()


def production_key_at_ms(settings: Settings) -> int:
    """When a caller of the production prompts presses 1: after the welcome, "人工服务请按0。" and
    "老年人服务请按1。" (the menu plays its keys in digit order), plus the slack."""
    heard = prompt_ms(settings, "welcome")
    for digit in ("0", KEY):
        heard += prompt_ms(settings, option_prompt_name(MENU_DID, digit))
    return int(heard + PRODUCTION_KEY_SLACK_MS)


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


def check_recordings(settings: Settings, linkedids: set[str]) -> dict:
    """Each answered call's recording (the caller's channel: <linkedid>.wav): how many hold audio,
    their median length, and both tones in up to TWO_WAY_CHECKS of them. The files are removed
    afterwards (thousands of calls)."""
    folder = recordings_dir(settings)
    sizes = {}
    for lid in linkedids:
        f = folder / f"{lid}.wav"
        sizes[lid] = f.stat().st_size if f.exists() else 0
    with_audio = sorted(lid for lid, size in sizes.items() if size >= MIN_RECORDING_BYTES)
    shares = [two_way_share(folder / f"{lid}.wav") for lid in with_audio[:TWO_WAY_CHECKS]]
    for lid in linkedids:
        (folder / f"{lid}.wav").unlink(missing_ok=True)
    seconds = sorted((size - 44) / 16000 for size in sizes.values())
    return {
        "recorded": len(with_audio),
        "recording_p50_s": round(seconds[len(seconds) // 2], 2) if seconds else None,
        "two_way_checked": len(shares),
        "two_way_min": min((s if s is not None else 0.0 for s in shares), default=None),
    }


async def step(
    settings: Settings,
    counter: Counter,
    did: str,
    rate: float,
    callers: list[str],
    key_at_ms: int,
    audio: Path,
) -> dict:
    n = max(1, int(rate * STEP_S))
    batch, callers[:] = callers[:n], callers[n:]
    counter.reset()
    result = await run_calls(
        settings,
        did,
        batch,
        rate=rate,
        hold_ms=HOLD_MS,  # counted from the key (the scenario pauses key_at_ms first)
        dtmf=[key_at_ms, KEY],
        timeout=STEP_S + 60 + key_at_ms / 1000,
        audio=audio,
    )
    await asyncio.sleep(1.0)  # the last events, MixMonitor closing its files
    delays = sorted(counter.route_ms)
    rec = await asyncio.to_thread(check_recordings, settings, set(counter.connected))
    two_way_ok = rec["two_way_checked"] > 0 and rec["two_way_min"] >= MIN_TWO_WAY
    ok = (
        result.returncode == 0
        and result.failed == 0
        and result.successful == n
        and len(counter.joined_ok) == n
        and not counter.joined_other
        and len(counter.connected) == n
        and rec["recorded"] == n
        and two_way_ok
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
        **rec,
        # how long after the call arrived the FastAGI route had answered (full path only)
        "route_p50_ms": round(delays[len(delays) // 2], 1) if delays else None,
        "route_max_ms": round(delays[-1], 1) if delays else None,
        "route_n": len(delays),
    }


class Runner:
    """Runs steps and keeps each one's outcome and CPU times."""

    def __init__(self, app: App, counter: Counter, callers: list[str], audio: Path, uas_pid: int) -> None:
        self.app = app
        self.counter = counter
        self.callers = callers
        self.audio = audio
        self.uas_pid = uas_pid
        self.asterisk_pid = int(process.pid_file(app.settings).read_text().split()[0])
        self.idles: list[float] = []  # the app's CPU ms per s with no call, before and after the steps
        self.steps: list[dict] = []

    @property
    def idle_ms_per_s(self) -> float:
        """The lower of the two idle measurements: on a busy machine the app's start-up work (re-sync,
        first snapshots) can run late into the first one."""
        return min(self.idles, default=0.0)

    async def measure_idle(self) -> None:
        # The app's CPU when no call comes (AMI keep-alive, wallboard timer): taken off each step.
        await asyncio.sleep(IDLE_S)  # the start-up's own work or the last calls are over
        idle0, t0 = cpu_ms(self.app.proc.pid), time.monotonic()
        await asyncio.sleep(IDLE_S)
        self.idles.append((cpu_ms(self.app.proc.pid) - idle0) / (time.monotonic() - t0))
        log(f"app idle: {self.idles[-1]:.1f} ms CPU per second")

    def take_idle_off(self) -> None:
        for s in self.steps:
            s["app_cpu_ms"] = round(s["app_cpu_raw_ms"] - self.idle_ms_per_s * s["wall_s"])

    async def run(self, path: str, did: str, rate: float, number: int, key_at_ms: int, prompts: str) -> bool:
        cpu0, ast0, uas0, t0 = (
            cpu_ms(self.app.proc.pid),
            cpu_ms(self.asterisk_pid),
            cpu_ms(self.uas_pid),
            time.monotonic(),
        )
        o = await step(self.app.settings, self.counter, did, rate, self.callers, key_at_ms, self.audio)
        wall = time.monotonic() - t0
        cpu = cpu_ms(self.app.proc.pid) - cpu0  # the idle CPU is taken off at the end
        ast = cpu_ms(self.asterisk_pid) - ast0
        uas = cpu_ms(self.uas_pid) - uas0
        o |= {
            "path": path,
            "step_of_rate": number,
            "prompts": prompts,
            "key_at_ms": key_at_ms,
            "app_cpu_raw_ms": round(cpu),
            "asterisk_cpu_ms": round(ast),
            "seat_sipp_cpu_ms": round(uas),
            "wall_s": round(wall, 1),
            "load_average": load_average(),
        }
        self.steps.append(o)
        log(
            f"{path:6} {rate:5g}/s {number}/{STEPS_PER_RATE} ({prompts}): {o['calls']} calls, sipp ok "
            f"{o['sipp_ok']} failed {o['sipp_failed']}, joined {o['joined']}, answered {o['answered']}, "
            f"recorded {o['recorded']} (p50 {o['recording_p50_s']} s, two-way min {o['two_way_min']}), "
            f"fallback/wrong {o['fallback_or_wrong_queue']}, route p50/max {o['route_p50_ms']}/"
            f"{o['route_max_ms']} ms, cpu app (idle in) {cpu:.0f} asterisk {ast:.0f} seat sipp {uas:.0f} ms "
            f"in {o['wall_s']} s, load {o['load_average'][0]} -> {'PASS' if o['ok'] else 'FAIL'}"
        )
        await asyncio.sleep(2)  # calls drain before the next step
        return bool(o["ok"])

    async def hold(
        self, rate: float, paths: list[tuple[str, str]], key_at_ms: int, prompts: str
    ) -> dict[str, bool]:
        """STEPS_PER_RATE consecutive steps at ``rate`` per path, alternating the paths; a path
        holds the rate when all of its steps pass (it runs no more steps after one fails)."""
        held = {path: True for path, _ in paths}
        for number in range(1, STEPS_PER_RATE + 1):
            for path, did in paths:
                if held[path]:
                    held[path] = await self.run(path, did, rate, number, key_at_ms, prompts)
        return held

    def cpu_per_call(self, path: str, rate: float, field: str) -> tuple[float | None, int]:
        steps = [s for s in self.steps if s["path"] == path and s["rate"] == rate and s["prompts"] == PROMPTS]
        calls = sum(s["calls"] for s in steps)
        if not calls:
            return None, 0
        return round(sum(s[field] for s in steps) / calls, 2), calls


async def measure(app: App, queue: str, callers: list[str], production: dict[str, str]) -> dict:
    settings = app.settings
    load_start = load_average()
    counter = Counter(queue)
    # As the engine's user: Asterisk sends only the engine's events (the counter reads four of
    # them), not every call event for this process to parse on the machine the calls share.
    manager = await open_manager(settings, counter.on_ami, username=settings.ami_engine_user)
    caller_audio = looped_tone(CACHE / "caller.ul", CALLER_TONE_HZ)
    seat_audio = looped_tone(CACHE / "seat.ul", SEAT_TONE_HZ)
    best = {"full": 0.0, "static": 0.0}
    production_held: dict[str, bool] = {}
    production_key_at: int | None = None
    try:
        with speaking_seat_phone(UAS_PORT, seat_audio, RING_MS) as uas:
            assert uas.proc is not None
            runner = Runner(app, counter, callers, caller_audio, uas.proc.pid)
            await runner.measure_idle()
            key_at = KEY_AT_MS if PROMPTS == "short" else production_key_at_ms(settings)
            live = list(PATHS)
            for rate in RATES:
                held = await runner.hold(rate, live, key_at, PROMPTS)
                for path, ok in held.items():
                    if ok:
                        best[path] = rate
                live = [p for p in live if held[p[0]]]
                if not live:
                    break
            if PROMPTS == "short" and PRODUCTION_RATE > 0:
                await asyncio.to_thread(use_production_prompts, settings, production)
                production_key_at = production_key_at_ms(settings)
                log(f"production prompts at {PRODUCTION_RATE:g}/s: the key at {production_key_at} ms")
                production_held = await runner.hold(
                    PRODUCTION_RATE,
                    [p for p in PATHS if p[0] in PRODUCTION_PATHS],
                    production_key_at,
                    "production",
                )
            await runner.measure_idle()  # again, the calls over
    finally:
        close_manager(manager)
    runner.take_idle_off()
    # The CPU per call of both paths at one rate: the highest both held
    cpu_rate = min(best.values())
    full_cpu, full_cpu_n = runner.cpu_per_call("full", cpu_rate, "app_cpu_ms")
    static_cpu, static_cpu_n = runner.cpu_per_call("static", cpu_rate, "app_cpu_ms")
    full_ast, _ = runner.cpu_per_call("full", cpu_rate, "asterisk_cpu_ms")
    static_ast, _ = runner.cpu_per_call("static", cpu_rate, "asterisk_cpu_ms")

    def held_n(rate: float) -> int:
        return max(1, int(rate * STEP_S)) * STEPS_PER_RATE if rate else 0

    ratio = round(best["full"] / best["static"], 3) if best["static"] else None

    def production_n(path: str) -> int:
        return sum(s["calls"] for s in runner.steps if s["path"] == path and s["prompts"] != PROMPTS)

    return {
        "bench": "full_path",
        "full_path_max_cps": best["full"],
        "full_path_max_cps_n": held_n(best["full"]),
        "static_path_max_cps": best["static"],
        "static_path_max_cps_n": held_n(best["static"]),
        "python_overhead_ratio": ratio,
        "python_overhead_ratio_n": held_n(best["full"]) + held_n(best["static"]),
        "steps_per_rate": STEPS_PER_RATE,
        "step_s": STEP_S,
        "cpu_rate_cps": cpu_rate or None,
        "full_path_app_cpu_ms_per_call": full_cpu,
        "full_path_app_cpu_ms_per_call_n": full_cpu_n,
        # the same without the FastAGI route (the engine still follows every call by AMI)
        "static_path_app_cpu_ms_per_call": static_cpu,
        "static_path_app_cpu_ms_per_call_n": static_cpu_n,
        "full_path_asterisk_cpu_ms_per_call": full_ast,
        "static_path_asterisk_cpu_ms_per_call": static_ast,
        "app_idle_cpu_ms_per_s": round(runner.idle_ms_per_s, 1),
        "app_idle_cpu_ms_per_s_measured": [round(x, 1) for x in runner.idles],
        "prompts": PROMPTS,
        "key_at_ms": KEY_AT_MS if PROMPTS == "short" else production_key_at_ms(settings),
        "production_prompts_rate": PRODUCTION_RATE if production_held else None,
        "production_prompts_full_path_held": production_held.get("full"),
        "production_prompts_static_path_held": production_held.get("static"),
        "production_prompts_full_path_n": production_n("full"),
        "production_prompts_static_path_n": production_n("static"),
        "production_prompts_key_at_ms": production_key_at,
        "audio": f"both ways: caller {CALLER_TONE_HZ} Hz, seat {SEAT_TONE_HZ} Hz, looped PCMU",
        "recording": "MixMonitor of every call a seat answers (the product's dialplan)",
        "residents": dataset.RESIDENTS,
        "unknown_share": dataset.UNKNOWN_SHARE,
        "rates_tried": RATES,
        "hold_ms": HOLD_MS,
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "steps": runner.steps,
    }


def main() -> None:
    started = time.monotonic()
    settings, queue, callers, production = prepare()
    took = time.monotonic() - started
    log(f"data dir ready ({SEATS} extra seats in {queue}, {PROMPTS} prompts) in {took:.1f} s")
    # The app's process reads the benchmark's clock and static number from its environment.
    os.environ.update({"CALLCENTER_CLOCK": CLOCK, "CALLCENTER_BENCH_STATIC_DID": STATIC_DID})
    result = on_stack(settings, measure, queue, callers, production)
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
