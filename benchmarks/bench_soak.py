"""The soak: a long steady load of multi-minute calls with audio and recording,
and whether anything grows or slows over time: every process's memory, open file descriptors,
threads and asyncio tasks, and the screen pop's latency.

The stack is the scale-out configuration, so the engine and the web worker are measured apart:
Asterisk (asterisk_conf.process), one engine (``callcenter serve --no-web``) and one web worker
(``callcenter serve --no-engine``) joined by Redis, on SQLite (the product's default database, as
tests/e2e/test_scale_out.py runs it). The database is the shared benchmark data set
(benchmarks/dataset.py: BENCH_RESIDENTS residents, 1,000,000). One sipp answering machine is
every seat's phone: it answers after RING_MS in G.711 mu-law (the residents' codec: no
transcoding) and speaks the whole call (a looped 500 Hz tone, sipp's ``rtp_stream``).
Residents' calls come from one sipp stream per hold in BENCH_SOAK_HOLDS_S (60, 120, 180 s after
Asterisk answers), the rate shared between them, each resident speaking the whole call (a looped
1 kHz mu-law tone), so calls last 60-180 s evenly
spread. Callers: ``dataset.callers`` (each number once, 10 % numbers no resident has). Every call
a seat answers is recorded by the product's dialplan (MixMonitor). Recordings are checked and
then removed once their call has ended (size, and for the first RECORDINGS_CHECKED files that
both voices are in them), so that a long run does not fill the disk; Asterisk writes them in full
as in production. Every seat is logged in to the console over its own WebSocket on the web
worker, so pops flow as in production.

Rate and seats: the target is 5 calls/s, which with holds of 60/120/180 s is ~600 bridged,
recorded calls with audio both ways at once. On this project's shared 2-core machine it is not
held: in two short trials (2026-12-07, 670 and 280 seats) Asterisk took over a core with ~1,800
threads and the load average passed 50 beyond ~150 such calls, sipp reported overload and pops
took seconds. So the rate defaults to 1 call/s (~120 calls up, Asterisk ~85 % of a core), and the
JSON line says which rate ran and why (``load.rate_per_s``, ``load.rate_note``).

The pop's samples: at 1 call/s a 5-minute window has ~270 known callers, too few for a p99. So
short calls run beside the long ones, BENCH_SOAK_PROBE_RATE (3 calls/s) held
BENCH_SOAK_PROBE_HOLD_S (6 s) after Asterisk answers, with the same audio and recording: ~1 s of
welcome and route, the ring, then ~4 s with the seat (in a first run with 2 s holds, 17 callers
left before a seat answered and 24 answered calls' recordings were not written). They add ~20
calls up at once, and a call's set-up (the part of a call the engine works on) three times a
second: with them a window has ~1,080 known callers, and the pop's p99 and its drift are
measured. The pop is every call's (long and short), in the window its AgentCalled falls in; the
short calls' own count is ``soak_probe_calls_placed``. The seats default to enough for the
steady state ((rate x mean hold + probe rate x probe hold) x 1.1 + 10: 161 at the defaults).

Windows (times from the first call placed; the load lasts BENCH_SOAK_S):
  first window  [WARMUP_S, WARMUP_S + WINDOW_S): after the warm-up (by default 300 s, longer than
                the longest hold, so the number of calls up has reached its steady state);
  last window   [SOAK_S - WINDOW_S, SOAK_S): the last WINDOW_S of the load.
Every SAMPLE_S (10 s) this benchmark reads /proc for the engine, the web worker, Asterisk and
Redis: RSS (VmRSS), open file descriptors (entries of /proc/PID/fd), threads, CPU time. The
engine and the web worker count their own asyncio tasks every SAMPLE_S, over every event loop
they make (the main one; the engine's FastAGI server has its own): they run from this file
(``--serve-with-task-probe``), which wraps ``callcenter.aio.new_event_loop`` so that a thread
asks each loop for ``len(asyncio.all_tasks())`` (the product exposes no task count; the probe
adds one thread and one short callback per loop and sample). A window's value is the median of
its samples.

Figures (one JSON line last on stdout, every figure with its n):
  soak_rss_growth_mb          max over the engine and the web worker of (RSS in the last window
                              minus RSS in the first window), MB; each process's own too
                              (soak_rss_growth_mb_engine, _web, _asterisk, _redis), with the
                              samples per window (soak_rss_growth_n: the fewer of the two).
  soak_fd_growth              the same for open file descriptors (engine and web worker; each
                              process's own too); soak_thread_growth, soak_task_growth likewise.
  soak_pop_ready_{first,last}_*  pop_ready as bench_pop measures it (its code): AgentCalled
                              (Asterisk's own Timestamp) -> the first pop with the resident's
                              profile on that seat's WebSocket, known callers, by the window the
                              AgentCalled falls in: p50, p95 (from >= 100 samples, else null),
                              p99 (only from >= 1,000 samples, else null), max, n.
  soak_pop_p99_drift_ms       last window's p99 minus the first's (null unless both have n >=
                              1,000); soak_pop_p95_drift_ms (p95 only from >= 100 samples)
                              and soak_pop_p50_drift_ms likewise.
  soak_calls_placed / _answered / _failed   sipp's created, successful and failed calls;
  soak_calls_seen             calls Asterisk reported on this benchmark's AMI connection (a
                              Newchannel in from-carrier, Uniqueid == Linkedid);
  soak_calls_at_seat          of those, the ones a seat answered (AgentConnect);
  soak_records_lost           calls seen without a call record after the drain;
  soak_records_unsettled      their records still unsettled;
  soak_recordings_missing     answered calls whose record names no recording, or names a file
                              never written (or empty);
  soak_recordings_two_way     of the first RECORDINGS_CHECKED recordings, the ones in which both
                              tones (the resident's 1 kHz and the seat's 500 Hz) are heard;
  soak_bridged_calls_*        calls at a seat (AgentConnect, not yet hung up) in the last window.
Per process (``processes``): RSS, fds, threads, tasks per window and CPU share over the load;
``series``: per SERIES_S the processes' RSS (median), fds, threads and tasks (max), the calls at
a seat and the pop's p50/max/n;
``load``: sizes, the load average during the run (min, median, max).

The run fails (exit 1, after its JSON line) when the engine or the web worker exits during it.
A missing part (sipp, redis-server) fails it in CI mode (CI=true).

Sizes: BENCH_SOAK_S (1800), BENCH_SOAK_RATE (1 call/s; the target 5 where a machine holds
it), BENCH_SOAK_HOLDS_S (60,120,180), BENCH_SOAK_SEATS (default: rate x mean hold x 1.1 + 10),
BENCH_SOAK_WINDOW_S (300), BENCH_SOAK_WARMUP_S (300), BENCH_SOAK_SAMPLE_S (10),
BENCH_SOAK_SERIES_S (60), BENCH_SOAK_DRAIN_S (90), BENCH_RESIDENTS, BENCH_UNKNOWN_SHARE.
A full run takes the load's time plus ~6 minutes (seats' logins, the last calls' holds, the
drain): ~36 minutes at the defaults.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE_FLAG = "--serve-with-task-probe"
PROBE_FILE_ENV = "BENCH_SOAK_PROBE_FILE"
PROBE_EVERY_ENV = "BENCH_SOAK_PROBE_S"


def serve_with_task_probe(argv: list[str]) -> int:
    """``callcenter`` with ``argv`` (``serve ...``), the asyncio tasks of every event loop it makes
    (the main one, the FastAGI server's) counted every PROBE_EVERY_ENV seconds into
    PROBE_FILE_ENV, one "tick-time loop tasks" line per loop: the product has no task count of its
    own, and counting must happen inside its process."""
    import asyncio
    import os

    from callcenter import aio

    out = Path(os.environ[PROBE_FILE_ENV])
    every = float(os.environ.get(PROBE_EVERY_ENV, "10"))
    make_loop = aio.new_event_loop
    loops: list[asyncio.AbstractEventLoop] = []

    def count(tick: float, index: int, loop: asyncio.AbstractEventLoop) -> None:
        # On the loop itself: all_tasks is not thread-safe.
        with out.open("a") as f:
            f.write(f"{tick:.3f} {index} {len(asyncio.all_tasks(loop))}\n")

    def sample() -> None:
        while True:
            time.sleep(every)
            tick = time.time()
            for index, loop in enumerate(list(loops)):
                if loop.is_closed():
                    continue
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(count, tick, index, loop)

    def new_loop() -> asyncio.AbstractEventLoop:
        loop = make_loop()
        loops.append(loop)
        if len(loops) == 1:
            threading.Thread(target=sample, daemon=True, name="soak-task-probe").start()
        return loop

    # Read when serve starts its loop (aio.run) and imported by name by the FastAGI server,
    # which hotline.cli imports after this.
    aio.new_event_loop = new_loop
    from hotline.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__" and sys.argv[1:2] == [PROBE_FLAG]:
    sys.exit(serve_with_task_probe(sys.argv[2:]))

import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from sqlmodel import col, select  # noqa: E402

from asterisk_conf import process  # noqa: E402
from asterisk_conf.sipp import run_calls  # noqa: E402
from asterisk_conf.sipp_media import MediaUAS  # noqa: E402
from asterisk_conf.tones import goertzel_power, read_wav, tone_samples, ulaw_bytes  # noqa: E402
from benchmarks import dataset  # noqa: E402
from benchmarks.bench_pop import Recorder, read_console  # noqa: E402
from benchmarks.common import (  # noqa: E402
    CACHE_ROOT,
    PORT_OFFSET,
    add_seats,
    fresh_data_dir,
    log,
    missing_part,
    percentile,
    ports,
    ring_every_seat_at,
)
from callcenter.ami.client import close_manager, open_manager  # noqa: E402
from callcenter.calls.models import UNSETTLED, CallRecord  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import session_scope  # noqa: E402
from tests.e2e.conftest import App, env_for  # noqa: E402

SOAK_S = float(os.environ.get("BENCH_SOAK_S", "1800"))
# Issue 17 asks 5 calls/s (~600 recorded calls up at once with 60-180 s holds); on the 2-core
# machine Asterisk runs out at ~150 (see the docstring): 1 call/s (~120 up) unless told.
RATE = float(os.environ.get("BENCH_SOAK_RATE", "1"))
# One sipp stream per hold (seconds after Asterisk answers), sharing the rate: holds evenly spread
HOLDS_S = [float(h) for h in os.environ.get("BENCH_SOAK_HOLDS_S", "60,120,180").split(",") if h.strip()]
# Short calls beside the long ones: enough pops for a p99 in each window (see the docstring)
PROBE_RATE = float(os.environ.get("BENCH_SOAK_PROBE_RATE", "3"))
PROBE_HOLD_S = float(os.environ.get("BENCH_SOAK_PROBE_HOLD_S", "6"))
PROBE_CALLS = int(PROBE_RATE * SOAK_S)
# calls up at once once the load is steady (holds count from Asterisk's answer)
_STEADY_CALLS = RATE * sum(HOLDS_S) / len(HOLDS_S) + PROBE_RATE * PROBE_HOLD_S
SEATS = int(os.environ.get("BENCH_SOAK_SEATS", "0")) or int(_STEADY_CALLS * 1.1) + 10
WINDOW_S = float(os.environ.get("BENCH_SOAK_WINDOW_S", "300"))
WARMUP_S = float(os.environ.get("BENCH_SOAK_WARMUP_S", "300"))
SAMPLE_S = float(os.environ.get("BENCH_SOAK_SAMPLE_S", "10"))
SERIES_S = float(os.environ.get("BENCH_SOAK_SERIES_S", "60"))
DRAIN_S = float(os.environ.get("BENCH_SOAK_DRAIN_S", "90"))
MIN_P99_SAMPLES = 1000  # fewer: p99 is printed as null, the max with n stands instead
MIN_P95_SAMPLES = 100  # the p95 (the 5th-worst of 100 at the least) beside it
RECORDINGS_CHECKED = 20  # recordings whose sound is checked (the rest: their size)
RING_MS = 300
DID = "96345"
CALLER_HZ, SEAT_HZ = 1000, 500  # the resident's and the seat's tones
CACHE = CACHE_ROOT / "soak"
UAS_PORT = 31182 + PORT_OFFSET
REDIS_PORT = 31179 + PORT_OFFSET
PORTS = ports(
    ami_port=31138,
    sip_port=31160,
    agi_port=31673,
    web_port=31180,
    # Two RTP legs (resident, seat) of two ports each per call: 1,000 calls at once
    rtp_start=34000,
    rtp_end=37999,
    doctor_sip_port=31199,
    asterisk_http_port=31188,
)
RATE_NOTE = (
    "the target is 5 calls/s (~600 recorded calls up with 60-180 s holds); in trials on this "
    "shared 2-core machine Asterisk used over a core and the load average passed 50 beyond "
    "~150 bridged, recorded calls with audio both ways (pops then took seconds), so the soak "
    "runs at a rate the machine holds"
)
MEASURED = ("engine", "web")  # the processes soak_*_growth is the max over


def make_settings(redis_url: str) -> Settings:
    return set_settings(Settings(data_dir=CACHE / "var", redis_url=redis_url, _env_file=None, **PORTS))


def prepare(redis_url: str) -> tuple[Settings, list[str], list[str]]:
    """A fresh data dir with the benchmark data set and seats up to SEATS, every seat's phone on
    one sipp port. Returns the settings, the seat extensions and the callers."""
    settings = make_settings(redis_url)
    fresh_data_dir(settings, CACHE, residents=dataset.RESIDENTS)

    from callcenter.accounts.models import Account
    from callcenter.directory.models import CallQueue
    from hotline.demo import HOTLINE_QUEUE

    with session_scope(settings) as s:
        have = [a for a in s.exec(select(Account).where(Account.role == "seat")).all() if a.extension]
        add_seats(s, max(0, SEATS - len(have)), 3000, "长稳坐席", HOTLINE_QUEUE)
        exts = ring_every_seat_at(s, UAS_PORT)
        hotline = s.exec(select(CallQueue).where(CallQueue.name == HOTLINE_QUEUE)).one()
        hotline.wrapup = 0  # seats take the next call at once: the load stays steady
        s.add(hotline)
        s.commit()
    calls = max(len(HOLDS_S), int(RATE * SOAK_S)) + PROBE_CALLS
    return settings, sorted(exts), dataset.callers(calls)


# --- the processes under test --------------------------------------------------------------------


class ProbedApp(App):
    """``callcenter serve`` as App runs it, from this file so its asyncio tasks are counted."""

    def __init__(self, settings: Settings, *options: str, name: str) -> None:
        self.probe_file = settings.data_dir / f"{name}.tasks"
        super().__init__(
            settings,
            *options,
            name=name,
            env={PROBE_FILE_ENV: str(self.probe_file), PROBE_EVERY_ENV: f"{SAMPLE_S:g}"},
        )

    def start(self) -> None:
        import httpx

        self.probe_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), PROBE_FLAG, "serve", *self.options],
            env={**env_for(self.settings), **self.env},
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the child's, closed with it
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        if "--no-web" in self.options:
            return  # its readiness shows on the bus (calls.resync)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the web worker exited:\n" + self.log.read_text()[-3000:])
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the web worker did not become ready:\n" + self.log.read_text()[-3000:])

    def tasks(self) -> list[tuple[float, int]]:
        """(wall-clock time, asyncio tasks of all its event loops) as the probe counted them."""
        if not self.probe_file.exists():
            return []
        ticks: dict[float, int] = {}
        for line in self.probe_file.read_text().splitlines():
            with contextlib.suppress(ValueError):
                t, _loop, n = line.split()
                ticks[float(t)] = ticks.get(float(t), 0) + int(n)
        return sorted(ticks.items())


@dataclass
class Sample:
    t: float  # seconds since the first call was placed
    rss_kb: int
    fds: int
    threads: int
    cpu_s: float


def read_proc(pid: int) -> tuple[int, int, int, float] | None:
    """(VmRSS kB, open fds, threads, user+system CPU s) of ``pid``, or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields.get("VmRSS", "0 kB").split()[0])
    threads = int(fields.get("Threads", "0").strip())
    after = stat.rsplit(")", 1)[1].split()  # past the command's name, which may hold spaces
    cpu = (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")
    return rss, fds, threads, cpu


# --- what Asterisk says ------------------------------------------------------------------------


@dataclass
class Truth:
    """Calls as this benchmark's AMI connection (the engine's event filter) sees them, beside the
    pop recorder of bench_pop (AgentCalled by Asterisk's Timestamp). Times: time.time()."""

    rec: Recorder = field(default_factory=Recorder)
    started: dict[str, float] = field(default_factory=dict)  # linkedid -> Newchannel
    hangup: dict[str, float] = field(default_factory=dict)  # linkedid -> the caller's Hangup
    connected: dict[str, float] = field(default_factory=dict)  # linkedid -> AgentConnect

    def on_ami(self, manager: Any, msg: Any) -> None:
        name = msg.get("Event")
        uid, lid = msg.get("Uniqueid", ""), msg.get("Linkedid", "")
        now = time.time()
        if name == "Newchannel":
            if msg.get("Context") == "from-carrier" and uid and uid == lid:
                self.started.setdefault(lid, now)
        elif name == "Hangup":
            if uid and uid == lid:
                self.hangup.setdefault(lid, now)
        elif name in ("AgentCalled", "AgentConnect"):
            self.rec.on_ami(manager, msg)
            if name == "AgentConnect" and lid:
                self.connected.setdefault(lid, now)

    def at_seat(self) -> int:
        return sum(1 for lid in self.connected if lid not in self.hangup)


# --- the phones --------------------------------------------------------------------------------


class SpeakingSeatPhone(MediaUAS):
    """Every seat's phone: answers after ``ring_ms`` with G.711 mu-law (the caller's codec, the
    first Asterisk offers seats: no transcoding; MediaUAS answers A-law, which would add a
    transcoding per frame in each direction) and speaks a looped tone (``rtp_stream``) for the
    whole call, instead of MediaUAS's few seconds of speech pcap."""

    def __init__(self, port: int, audio: Path, **options: Any) -> None:
        super().__init__(port, audio=False, **options)
        self.stream = audio

    def render_scenario(self, workdir: Path) -> Path:
        out = super().render_scenario(workdir)
        text = out.read_text()
        changes = (
            ("m=audio [media_port] RTP/AVP 8 101", "m=audio [media_port] RTP/AVP 0 101"),
            ("a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000"),
            # The stream starts once the call is up
            (
                '<recv request="ACK" rtd="true" crlf="true"/>\n',
                '<recv request="ACK" rtd="true" crlf="true"/>\n'
                f'  <nop><action><exec rtp_stream="{self.stream},-1,0"/></action></nop>\n',
            ),
        )
        for before, after in changes:
            if before not in text:
                raise RuntimeError(f"uas_media.xml changed: no {before!r}")
            text = text.replace(before, after, 1)
        out.write_text(text)
        return out


@dataclass
class Recordings:
    """MixMonitor's files as the calls end: size, whether both voices are in (the first few),
    then removed (a 30-minute run would otherwise write ~15 GB)."""

    folder: Path
    sizes: dict[str, int] = field(default_factory=dict)
    two_way: dict[str, bool] = field(default_factory=dict)

    def sweep(self, hangups: dict[str, float] | None, before: float) -> None:
        """Files of calls that hung up before ``before`` (a file is named by the caller's
        uniqueid, the call's linkedid); every file when ``hangups`` is None (the run is over)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.wav"):
            if hangups is not None and hangups.get(path.stem, before) >= before:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            self.sizes[path.name] = st.st_size
            # 3 s of 16-bit 8 kHz at least: both_voices reads 2 s from the middle
            if len(self.two_way) < RECORDINGS_CHECKED and st.st_size > 44 + 3 * 16000:
                self.two_way[path.name] = both_voices(path)
            path.unlink(missing_ok=True)


def both_voices(path: Path) -> bool:
    """Whether a recording holds the resident's and the seat's tones: in 2 s from its middle,
    each tone carries at least a tenth of the energy."""
    try:
        samples, rate = read_wav(path)
    except Exception:
        return False
    mid = len(samples) // 2
    chunk = samples[mid - rate : mid + rate]
    if not chunk:
        return False
    energy = sum(x * x for x in chunk) / len(chunk)
    if energy < 1000:
        return False
    return all(goertzel_power(chunk, rate, hz) * 2 >= 0.1 * energy for hz in (CALLER_HZ, SEAT_HZ))


# --- the run -----------------------------------------------------------------------------------


async def login_seats(base_url: str, exts: list[str], rec: Recorder) -> tuple[list[Any], list[Any]]:
    """Every seat's console WebSocket on the web worker (10 logins at a time)."""
    from hotline.demo import DEMO_PASSWORD
    from hotline.doctor import console_login, open_console_ws

    sockets: list[Any] = []
    readers: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(10)

    async def one(ext: str) -> None:
        async with gate:
            client = await console_login(base_url, f"seat{ext}", DEMO_PASSWORD)
            try:
                ws = await open_console_ws(base_url, client)
            finally:
                await client.aclose()  # the socket carries the session from here
            sockets.append(ws)
            readers.append(asyncio.create_task(read_console(ws, ext, rec)))

    await asyncio.gather(*(one(ext) for ext in exts))
    return sockets, readers


def read_records(settings: Settings, linkedids: list[str]) -> dict[str, CallRecord]:
    out: dict[str, CallRecord] = {}
    with session_scope(settings) as s:
        for i in range(0, len(linkedids), 500):
            rows = s.exec(
                select(CallRecord).where(col(CallRecord.linkedid).in_(linkedids[i : i + 500]))
            ).all()
            for r in rows:
                s.expunge(r)
                out[r.linkedid] = r
    return out


async def measure(settings: Settings, exts: list[str], callers: list[str], redis_pid: int) -> dict[str, Any]:
    from callcenter.bus import make_bus
    from callcenter.callcontrol.recordings import recordings_dir

    engine = ProbedApp(settings, "--no-web", name="engine-soak")
    web = ProbedApp(settings, "--no-engine", name="web-soak")
    truth = Truth()
    samples: dict[str, list[Sample]] = {"engine": [], "web": [], "asterisk": [], "redis": []}
    loadavg: list[tuple[float, float]] = []  # (t, 1-min load average)
    at_seat: list[tuple[float, int]] = []
    exits: dict[str, int | None] = {}
    recordings = Recordings(recordings_dir(settings))
    tasks: list[asyncio.Task[Any]] = []
    sockets: list[Any] = []
    manager: Any = None
    sipp_results: list[Any] = []
    uas_answered: str = "?"
    bus = make_bus(settings.redis_url)
    load0 = time.time()  # replaced when the first call is placed
    try:
        await bus.start()
        resynced = bus.subscribe("calls.resync")
        await asyncio.wait_for(resynced.ready.wait(), 10)
        await asyncio.to_thread(process.start, settings)
        log("Asterisk up")
        await asyncio.to_thread(engine.start)
        await resynced.get(90)  # logged in to AMI and in step with Asterisk
        await resynced.close()
        log("engine up")
        await asyncio.to_thread(web.start)
        log(f"web worker up: {web.base_url}")
        asterisk_pid = int(process.status(settings)["pid"])
        assert engine.proc is not None and web.proc is not None
        pids = {"engine": engine.proc.pid, "web": web.proc.pid, "asterisk": asterisk_pid, "redis": redis_pid}
        # As the engine's user: Asterisk sends the events the engine reads (calls' starts, ends,
        # AgentCalled/Connect), not every event for this process to parse beside the calls.
        manager = await open_manager(settings, truth.on_ami, username=settings.ami_engine_user)
        started = time.monotonic()
        sockets, readers = await login_seats(web.base_url, exts, truth.rec)
        tasks += readers
        deadline = time.monotonic() + 60
        while len(truth.rec.ready) < len(exts) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        log(
            f"{len(sockets)} seats logged in to the console in {time.monotonic() - started:.1f} s "
            f"({len(truth.rec.ready)} said console.ready)"
        )

        async def sample_processes() -> None:
            while True:
                t = time.time() - load0
                for name, pid in pids.items():
                    got = await asyncio.to_thread(read_proc, pid)
                    if got is not None:
                        samples[name].append(Sample(t, *got))
                loadavg.append((t, os.getloadavg()[0]))
                at_seat.append((t, truth.at_seat()))
                await asyncio.sleep(SAMPLE_S)

        async def sweep_recordings() -> None:
            while True:
                await asyncio.sleep(15)
                await asyncio.to_thread(recordings.sweep, dict(truth.hangup), time.time() - 10)

        caller_audio = CACHE / "resident.ul"  # 8 kHz mu-law, looped by sipp
        caller_audio.write_bytes(ulaw_bytes(tone_samples(CALLER_HZ, 10)))
        seat_audio = CACHE / "seat.ul"  # 8 kHz mu-law, looped by the seat's phone
        seat_audio.write_bytes(ulaw_bytes(tone_samples(SEAT_HZ, 10)))
        long_calls = callers[: len(callers) - PROBE_CALLS]
        streams = [long_calls[k :: len(HOLDS_S)] for k in range(len(HOLDS_S))]
        rates_holds = [(RATE / len(HOLDS_S), hold) for hold in HOLDS_S]
        if PROBE_CALLS:
            streams.append(callers[len(callers) - PROBE_CALLS :])
            rates_holds.append((PROBE_RATE, PROBE_HOLD_S))
        with SpeakingSeatPhone(UAS_PORT, seat_audio, ring_ms=RING_MS, talk_ms=0) as uas:
            known = sum(dataset.is_known(c) for c in callers)
            log(
                f"placing {len(callers)} calls ({known} known residents) at {RATE:g}/s for {SOAK_S:.0f} s, "
                f"holds {', '.join(f'{h:g}' for h in HOLDS_S)} s, and {PROBE_CALLS} short ones at "
                f"{PROBE_RATE:g}/s held {PROBE_HOLD_S:g} s, {len(exts)} seats, audio both ways, recording on"
            )
            load0 = time.time()
            tasks.append(asyncio.create_task(sample_processes()))
            tasks.append(asyncio.create_task(sweep_recordings()))
            sipps = [
                asyncio.create_task(
                    run_calls(
                        settings,
                        DID,
                        stream,
                        rate=rate,
                        hold_ms=int(hold * 1000),
                        timeout=SOAK_S + hold + 300,
                        audio=caller_audio,
                    )
                )
                for stream, (rate, hold) in zip(streams, rates_holds, strict=True)
            ]
            next_log = 0.0
            while not all(s.done() for s in sipps):
                for name, app in (("engine", engine), ("web", web)):
                    if app.proc is not None and app.proc.poll() is not None and name not in exits:
                        exits[name] = app.proc.returncode
                        log(
                            f"FAILED: the {name} exited ({app.proc.returncode}) "
                            f"at {time.time() - load0:.0f} s"
                        )
                if exits:
                    for s in sipps:
                        s.cancel()
                    break
                t = time.time() - load0
                if t >= next_log:
                    eng = samples["engine"][-1] if samples["engine"] else None
                    wb = samples["web"][-1] if samples["web"] else None
                    log(
                        f"t={t:.0f} s: {len(truth.started)} calls, {truth.at_seat()} at a seat, "
                        f"engine {eng.rss_kb / 1024 if eng else 0:.1f} MB, "
                        f"web {wb.rss_kb / 1024 if wb else 0:.1f} MB, "
                        f"load {os.getloadavg()[0]:.2f}"
                    )
                    next_log = t + max(10.0, SOAK_S / 30)
                await asyncio.sleep(1)
            for s in sipps:
                if not s.cancelled():  # cancelled when a process under test exited
                    sipp_results.append(await s)
            for r in sipp_results:
                log(
                    f"sipp: created {r.calls}, successful {r.successful}, failed {r.failed}, "
                    f"rc {r.returncode}"
                )
                if r.failed or r.returncode:
                    log("sipp errors: " + (r.errors or r.output).strip()[-800:])
            uas_answered = uas.stats().get("SuccessfulCall(C)", "?")
            log(f"seat phone: {uas_answered} calls answered")
        load_end = time.time() - load0

        # Drain: every call seen has its record, none unsettled, or DRAIN_S passed.
        deadline = time.monotonic() + DRAIN_S
        while True:
            records = await asyncio.to_thread(read_records, settings, list(truth.started))
            waiting = [lid for lid in truth.started if lid not in records]
            unsettled = [r for r in records.values() if r.outcome == UNSETTLED]
            if (not waiting and not unsettled) or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        await asyncio.sleep(5)  # the last recordings' files closed
        await asyncio.to_thread(recordings.sweep, None, time.time())
        engine_tasks, web_tasks = engine.tasks(), web.tasks()
    finally:
        for task in tasks:
            task.cancel()
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        if manager is not None:
            close_manager(manager)
        for app in (web, engine):
            await asyncio.to_thread(app.stop)
        await asyncio.to_thread(process.stop, settings)
        with contextlib.suppress(Exception):
            await bus.close()

    return analyse(
        truth,
        samples,
        {"engine": engine_tasks, "web": web_tasks},
        loadavg,
        at_seat,
        sipp_results,
        sipp_results[-1].calls if PROBE_CALLS and len(sipp_results) == len(HOLDS_S) + 1 else None,
        uas_answered,
        records,
        recordings,
        exits,
        load0,
        load_end,
        len(exts),
    )


# --- the figures -------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _diff(last: float | None, first: float | None, digits: int = 2) -> float | None:
    return round(last - first, digits) if last is not None and first is not None else None


def _pops(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": round(percentile(values, 50), 2) if values else None,
        "p95_ms": round(percentile(values, 95), 2) if len(values) >= MIN_P95_SAMPLES else None,
        "p99_ms": round(percentile(values, 99), 2) if len(values) >= MIN_P99_SAMPLES else None,
        "max_ms": round(max(values), 2) if values else None,
        "n": len(values),
    }


def analyse(
    truth: Truth,
    samples: dict[str, list[Sample]],
    probe: dict[str, list[tuple[float, int]]],
    loadavg: list[tuple[float, float]],
    at_seat: list[tuple[float, int]],
    sipp_results: list[Any],
    probe_placed: int | None,
    uas_answered: str,
    records: dict[str, CallRecord],
    recordings: Recordings,
    exits: dict[str, int | None],
    load0: float,
    load_end: float,
    seats: int,
) -> dict[str, Any]:
    first = (WARMUP_S, WARMUP_S + WINDOW_S)
    last = (SOAK_S - WINDOW_S, SOAK_S)

    def within(t: float, window: tuple[float, float]) -> bool:
        return window[0] <= t < window[1]

    processes: dict[str, Any] = {}
    for name, rows in samples.items():
        d: dict[str, Any] = {}
        for label, window in (("first", first), ("last", last)):
            inside = [s for s in rows if within(s.t, window)]
            rss = _median([s.rss_kb / 1024 for s in inside])
            d[f"rss_{label}_mb"] = round(rss, 2) if rss is not None else None
            d[f"fds_{label}"] = _median([s.fds for s in inside])
            d[f"threads_{label}"] = _median([s.threads for s in inside])
            d[f"samples_{label}"] = len(inside)
            if name in probe:
                counts = [n for t, n in probe[name] if within(t - load0, window)]
                d[f"tasks_{label}"] = _median([float(n) for n in counts])
                d[f"task_samples_{label}"] = len(counts)
        d["rss_growth_mb"] = _diff(d["rss_last_mb"], d["rss_first_mb"])
        d["fd_growth"] = _diff(d["fds_last"], d["fds_first"], 1)
        d["thread_growth"] = _diff(d["threads_last"], d["threads_first"], 1)
        if name in probe:
            d["task_growth"] = _diff(d["tasks_last"], d["tasks_first"], 1)
        during = [s for s in rows if s.t < SOAK_S]
        if len(during) >= 2 and during[-1].t > during[0].t:
            d["cpu_pct"] = round(100 * (during[-1].cpu_s - during[0].cpu_s) / (during[-1].t - during[0].t), 1)
        d["rss_max_mb"] = round(max(s.rss_kb for s in rows) / 1024, 2) if rows else None
        processes[name] = d

    def worst(key: str) -> float | None:
        values = [processes[p].get(key) for p in MEASURED]
        return max(v for v in values if v is not None) if all(v is not None for v in values) else None

    # Pops: bench_pop's pairing, by the window AgentCalled (Asterisk's clock) falls in
    by_window: dict[str, list[float]] = {"first": [], "last": []}
    series_pops: dict[int, list[float]] = {}
    without_profile = never_ready = unidentified = no_pop = 0
    for key, called_at in truth.rec.called.items():
        pops = truth.rec.pops.get(key)
        if pops is None:
            no_pop += 1
            continue
        if not pops.first_ready:
            without_profile += 1
        if pops.ready is None:
            never_ready += 1
            continue
        if not dataset.is_known(pops.caller.removeprefix("+86")):
            continue
        if not pops.resident:
            unidentified += 1
            continue
        lag = (pops.ready - called_at) * 1000
        t = called_at - load0
        for label, window in (("first", first), ("last", last)):
            if within(t, window):
                by_window[label].append(lag)
        series_pops.setdefault(int(t // SERIES_S), []).append(lag)
    pf, pl = _pops(by_window["first"]), _pops(by_window["last"])

    # Records and recordings of the calls Asterisk reported
    seen = list(truth.started)
    lost = [lid for lid in seen if lid not in records]
    unsettled = sum(1 for lid in seen if lid in records and records[lid].outcome == UNSETTLED)
    answered = [lid for lid in seen if lid in truth.connected]
    no_name = [lid for lid in answered if lid in records and not records[lid].recording]
    named = [records[lid].recording for lid in answered if lid in records and records[lid].recording]
    not_written = [n for n in named if recordings.sizes.get(n, 0) <= 44]  # a WAV header at most
    bridged_last = [n for t, n in at_seat if within(t, last)]
    loads = [v for t, v in loadavg if t < SOAK_S]

    series = []
    for b in range(int(max(SOAK_S, load_end) // SERIES_S) + 1):
        span = (b * SERIES_S, (b + 1) * SERIES_S)
        row: dict[str, Any] = {"t_s": int(span[0])}
        for name in ("engine", "web", "asterisk"):
            inside = [s for s in samples[name] if within(s.t, span)]
            rss = _median([s.rss_kb / 1024 for s in inside])
            row[f"{name}_rss_mb"] = round(rss, 1) if rss is not None else None
            row[f"{name}_fds"] = max((s.fds for s in inside), default=None)
            row[f"{name}_threads"] = max((s.threads for s in inside), default=None)
            if name in probe:
                row[f"{name}_tasks"] = max(
                    (n for t, n in probe[name] if within(t - load0, span)), default=None
                )
        seated = [n for t, n in at_seat if within(t, span)]
        row["at_seat"] = max(seated) if seated else None
        lags = series_pops.get(b, [])
        row["pop_p50_ms"] = round(percentile(lags, 50), 1) if lags else None
        row["pop_max_ms"] = round(max(lags), 1) if lags else None
        row["pop_n"] = len(lags)
        series.append(row)

    log(f"windows: first {first[0]:.0f}-{first[1]:.0f} s, last {last[0]:.0f}-{last[1]:.0f} s of the load")
    for name, d in processes.items():
        log(f"{name}: {json.dumps(d)}")
    log(f"pop_ready first window {pf}, last window {pl}")
    log(
        f"calls: {len(seen)} seen, {len(answered)} at a seat, {len(lost)} without a record, {unsettled} "
        f"unsettled; recordings: {len(recordings.sizes)} files, {len(no_name)} answered calls without "
        f"one named, {len(not_written)} named but not written; two-way "
        f"{sum(recordings.two_way.values())}/{len(recordings.two_way)}"
    )
    created = sum(r.calls for r in sipp_results) if sipp_results else None
    return {
        "bench": "soak",
        "soak_rss_growth_mb": worst("rss_growth_mb"),
        "soak_rss_growth_mb_engine": processes["engine"]["rss_growth_mb"],
        "soak_rss_growth_mb_web": processes["web"]["rss_growth_mb"],
        "soak_rss_growth_mb_asterisk": processes["asterisk"]["rss_growth_mb"],
        "soak_rss_growth_mb_redis": processes["redis"]["rss_growth_mb"],
        "soak_rss_growth_n": min(
            min(processes[p]["samples_first"], processes[p]["samples_last"]) for p in MEASURED
        ),
        "soak_fd_growth": worst("fd_growth"),
        "soak_fd_growth_engine": processes["engine"]["fd_growth"],
        "soak_fd_growth_web": processes["web"]["fd_growth"],
        "soak_fd_growth_asterisk": processes["asterisk"]["fd_growth"],
        "soak_thread_growth": worst("thread_growth"),
        "soak_task_growth": worst("task_growth"),
        "soak_task_growth_engine": processes["engine"].get("task_growth"),
        "soak_task_growth_web": processes["web"].get("task_growth"),
        "soak_task_growth_n": min(
            min(processes[p].get("task_samples_first", 0), processes[p].get("task_samples_last", 0))
            for p in MEASURED
        ),
        "soak_pop_ready_first_p50_ms": pf["p50_ms"],
        "soak_pop_ready_first_p95_ms": pf["p95_ms"],
        "soak_pop_ready_first_p99_ms": pf["p99_ms"],
        "soak_pop_ready_first_max_ms": pf["max_ms"],
        "soak_pop_ready_first_n": pf["n"],
        "soak_pop_ready_last_p50_ms": pl["p50_ms"],
        "soak_pop_ready_last_p95_ms": pl["p95_ms"],
        "soak_pop_ready_last_p99_ms": pl["p99_ms"],
        "soak_pop_ready_last_max_ms": pl["max_ms"],
        "soak_pop_ready_last_n": pl["n"],
        "soak_pop_p99_drift_ms": _diff(pl["p99_ms"], pf["p99_ms"]),
        "soak_pop_p95_drift_ms": _diff(pl["p95_ms"], pf["p95_ms"]),
        "soak_pop_p50_drift_ms": _diff(pl["p50_ms"], pf["p50_ms"]),
        "soak_pop_without_profile_n": without_profile,
        "soak_pop_never_ready_n": never_ready,
        "soak_pop_known_unidentified_n": unidentified,
        "soak_pop_missing_n": no_pop,
        "soak_calls_placed": created,
        "soak_probe_calls_placed": probe_placed,
        "soak_calls_answered": sum(r.successful for r in sipp_results) if sipp_results else None,
        "soak_calls_failed": sum(r.failed for r in sipp_results) if sipp_results else None,
        "soak_calls_seen": len(seen),
        "soak_calls_at_seat": len(answered),
        "soak_seat_phone_answered": uas_answered,
        "soak_records": sum(1 for lid in seen if lid in records),
        "soak_records_lost": len(lost),
        "soak_records_unsettled": unsettled,
        "soak_recordings": len(named),
        "soak_recordings_missing": len(no_name) + len(not_written),
        "soak_recordings_two_way": sum(recordings.two_way.values()),
        "soak_recordings_two_way_n": len(recordings.two_way),
        "soak_bridged_calls_median": _median([float(n) for n in bridged_last]),
        "soak_bridged_calls_max": max(bridged_last) if bridged_last else None,
        "soak_bridged_calls_n": len(bridged_last),
        "soak_asterisk_rss_last_mb": processes["asterisk"]["rss_last_mb"],
        "soak_process_exits": exits,
        "soak_rate_per_s": RATE if RATE != int(RATE) else int(RATE),
        "processes": processes,
        "series": series,
        "load": {
            "soak_s": SOAK_S,
            "rate_per_s": RATE if RATE != int(RATE) else int(RATE),
            "rate_target_per_s": 5,
            "rate_note": RATE_NOTE,
            "holds_s": HOLDS_S,
            "probe_rate_per_s": PROBE_RATE,
            "probe_hold_s": PROBE_HOLD_S,
            "steady_calls_expected": round(_STEADY_CALLS),
            "seats": seats,
            "seat_ring_ms": RING_MS,
            "window_s": WINDOW_S,
            "warmup_s": WARMUP_S,
            "sample_s": SAMPLE_S,
            "windows_s": [list(first), list(last)],
            "load_s": round(load_end, 1),
            "audio": "both ways, G.711 mu-law, looped tones the whole call (resident 1 kHz, seat 500 Hz)",
            "recording": "MixMonitor of every call a seat answers (the product's dialplan)",
            "topology": "Asterisk, one engine, one web worker, Redis, SQLite",
            "residents": dataset.RESIDENTS,
            "unknown_share": dataset.UNKNOWN_SHARE,
            "loadavg_1min": {
                "min": min(loads) if loads else None,
                "median": round(statistics.median(loads), 2) if loads else None,
                "max": max(loads) if loads else None,
                "n": len(loads),
            },
        },
    }


def main() -> None:
    started = time.monotonic()
    if not (WARMUP_S + WINDOW_S <= SOAK_S - WINDOW_S):
        raise SystemExit(
            f"the windows overlap: warm-up {WARMUP_S:g} s + window {WINDOW_S:g} s > "
            f"BENCH_SOAK_S {SOAK_S:g} s - window"
        )
    missing = [
        what
        for what, here in (
            ("sipp (apt-get install sip-tester)", shutil.which("sipp")),
            ("redis-server (apt-get install redis-server)", shutil.which("redis-server")),
        )
        if not here
    ]
    if missing:
        # The engine and the web worker are apart only with Redis: without it nothing runs.
        missing_part(", ".join(missing))
        print(json.dumps({"bench": "soak", "soak_rss_growth_mb": None, "soak_pop_p99_drift_ms": None}))
        return
    from tests.conftest import RedisServer

    process.stop(make_settings(""))  # an Asterisk a previous run left (its pid file in the data dir)
    redis = RedisServer(CACHE / "redis", port=REDIS_PORT).start()
    try:
        assert redis.proc is not None
        settings, exts, callers = prepare(redis.url)
        log(
            f"data dir ready ({len(exts)} seats, {dataset.RESIDENTS} residents) "
            f"in {time.monotonic() - started:.1f} s"
        )
        result = asyncio.run(measure(settings, exts, callers, redis.proc.pid))
    finally:
        redis.stop()
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result, ensure_ascii=False))
    if result["soak_process_exits"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
