"""How many bridged, recorded calls with audio both ways the machine holds at once
(``max_concurrent_recorded_calls``), through the FastAGI route and through the static
dialplan, and which part runs out first.

The stack runs as in production: Asterisk (asterisk_conf.process), ``callcenter serve`` in its own
process on the shared benchmark data set (benchmarks/dataset.py: BENCH_RESIDENTS residents,
1,000,000; callers drawn from them with BENCH_UNKNOWN_SHARE, 10 %, unknown numbers), one sipp
answering machine as every seat's phone. Residents call the menu number 96346 with the product's
own prompts (welcome and menu, not shortened), press 1 when they have heard "老年人服务请按1。"
(SIP INFO), wait in the skill queue and are answered by a seat (ring RING_MS), and then stay on
the line: calls are never hung up by the caller during a path's ramp. Audio flows both ways for
the whole call (the resident's sipp streams a looped 1 kHz µ-law tone from Asterisk's answer on,
the seats' sipp answers in PCMU and streams a looped 440 Hz tone) and every answered call is
recorded by the product's dialplan (MixMonitor, spool/monitor/<linkedid>.wav).

A path's ramp adds STEP_CALLS calls per step (placed at STEP_CALLS / STEP_S calls/s by a sipp of
their own), waits until they are answered (at most the key's time + SETTLE_S), then watches every
call up for WINDOW_S. A step passes when:
- answered: every call placed so far was answered by a seat (AgentConnect), none hung up
  (Hangup of the caller's channel) and sipp reports no failed call;
- audio: Asterisk lost no RTP it was sent (``pjsip show channelstats``: the receive-lost counts of
  all channels did not grow in the window, and every channel's receive count grew by at least
  90 % of 50 packets/s x WINDOW_S), and no UDP datagram was dropped by a full socket buffer on
  Asterisk's RTP ports (the ``drops`` column of /proc/net/udp). What Asterisk sends the phones is
  not checked at the phones: sipp's ``rtp_stream`` never reads what it receives, so its sockets
  drop by design (``udp_drops_sipp`` is printed, not judged);
- recording: every call's recording grew by at least 80 % of 16,000 bytes/s x WINDOW_S (8 kHz
  16-bit) in the window;
- AMI on time: no event of the step's calls on this benchmark's AMI connection (the engine's
  user: the same event filter as the engine) came more than AMI_LATE_MS (1000) after Asterisk's
  own Timestamp.
The path's figure is the number of calls up in the last step that passed. When a step fails,
``*_limit_part`` names which part ran out, from what was measured in that step (in this order):
``rtp_ports`` (Asterisk's RTP sockets fill its port range, or it said no RTP port was left),
``asterisk_fds`` (open files at 95 % of its limit), ``cpu:<process>`` (the machine's two cores at
least 90 % busy; the part using most of them: asterisk, app, sipp, or ``other``, what else ran on
the shared machine), ``recording_write``
(recordings behind while the CPU was not out), ``ami_events`` (only the AMI events late), else
``unknown`` with the failed checks. The CPU of each process (% of one core) in the last window that
passed and in the failed step is reported (``*_cpu_pct_at_limit``, ``*_cpu_pct_failed_step``).

RTP ports: each call is two channels (the resident's and the seat's), each an RTP and an RTCP
port, so a range of P ports holds P / 4 calls. By default the range has the product's default
size (Settings.rtp_start..rtp_end: 10,000 ports, 2,500 calls; it was 1,000 ports, which stopped
this benchmark at 250 calls); BENCH_CAPACITY_RTP_PORTS sets another size.
``rtp_ports_ceiling_calls`` is printed with the figures.

The two paths run one after the other (full path first); between them every call is hung up
(``channel request hangup all``) and the stack idles DRAIN_S.

Prints progress to stderr and one JSON line last on stdout:
{"bench": "capacity", "max_concurrent_recorded_calls", "max_concurrent_recorded_calls_static",
 "capacity_limit_part", "capacity_limit_part_static", "*_cpu_pct_at_limit", "steps", ...}; each
figure's n is the calls up (the figure itself) and ``steps_*`` (steps run).

Sizes: BENCH_CAPACITY_STEP_CALLS (50), BENCH_CAPACITY_STEP_S (10), BENCH_CAPACITY_WINDOW_S (10),
BENCH_CAPACITY_SETTLE_S (20), BENCH_CAPACITY_MAX_CALLS (600: the ramp stops there, seats are made
for it), BENCH_CAPACITY_RTP_PORTS (1000), BENCH_CAPACITY_PATHS (full,static),
BENCH_CAPACITY_DRAIN_S (10: the idle between the paths), BENCH_RESIDENTS, BENCH_UNKNOWN_SHARE.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from asterisk_conf import process, sounds  # noqa: E402
from asterisk_conf.sipp import SippResult, run_calls  # noqa: E402
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
)
from callcenter.ami import events as ev  # noqa: E402
from callcenter.ami.client import close_manager, open_manager  # noqa: E402
from callcenter.callcontrol.recordings import recordings_dir  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import session_scope  # noqa: E402
from callcenter.ivr.service import option_prompt_name  # noqa: E402
from tests.e2e.conftest import App  # noqa: E402

STEP_CALLS = int(os.environ.get("BENCH_CAPACITY_STEP_CALLS", "50"))
STEP_S = float(os.environ.get("BENCH_CAPACITY_STEP_S", "10"))
WINDOW_S = float(os.environ.get("BENCH_CAPACITY_WINDOW_S", "10"))
SETTLE_S = float(os.environ.get("BENCH_CAPACITY_SETTLE_S", "20"))
MAX_CALLS = int(os.environ.get("BENCH_CAPACITY_MAX_CALLS", "600"))
_DEFAULT = Settings(_env_file=None)
RTP_PORTS = int(os.environ.get("BENCH_CAPACITY_RTP_PORTS", str(_DEFAULT.rtp_end - _DEFAULT.rtp_start + 1)))
PATH_NAMES = [p for p in os.environ.get("BENCH_CAPACITY_PATHS", "full,static").split(",") if p]
DRAIN_S = float(os.environ.get("BENCH_CAPACITY_DRAIN_S", "10"))
RING_MS = 300
HOLD_MS = 3_600_000  # callers stay until the ramp ends and Asterisk hangs up
KEY_SLACK_MS = 1900  # after the prompts: the route's time and Answer()'s wait (as bench_full_path)
RTP_PPS = 50  # 20 ms packets
RECORDING_BYTES_PER_S = 16000  # MixMonitor's WAV: 8 kHz, 16-bit
MIN_RX_SHARE = 0.9
MIN_RECORDING_SHARE = 0.8
AMI_LATE_MS = 1000.0
CPU_OUT_PCT = 90.0  # of the machine's cores together
MENU_DID = "96346"
STATIC_DID = "96398"
KEY = "1"
CLOCK = "2026-11-27T10:00:00"  # a working Friday morning: the menu's number is open
CACHE = CACHE_ROOT / "capacity"
DIDS = {"full": MENU_DID, "static": STATIC_DID}
UAS_PORT = 24081 + PORT_OFFSET
RTP_START = 40000  # the product's range (10,000 ports) clear of the stack's other ports
PORTS = ports(
    ami_port=24038,
    sip_port=24060,
    agi_port=24573,
    web_port=24080,
    rtp_start=RTP_START,
    rtp_end=RTP_START + RTP_PORTS - 1,
    doctor_sip_port=24099,
    asterisk_http_port=24088,
)


def make_settings() -> Settings:
    return set_settings(
        Settings(data_dir=CACHE / "var", _env_file=None, clock=CLOCK, bench_static_did=STATIC_DID, **PORTS)
    )


def prepare() -> tuple[Settings, str, list[str]]:
    """A fresh data dir with the data set and the product's prompts, MAX_CALLS extra seats in the
    menu key's queue, every seat's phone on one sipp port. Returns the settings, the queue and the
    callers (each number once)."""
    settings = make_settings()
    fresh_data_dir(settings, CACHE, residents=dataset.RESIDENTS)
    sounds.prompts_file(settings).unlink(missing_ok=True)  # the product's welcome, not the short one

    from callcenter.directory.models import CallQueue
    from callcenter.ivr.models import IvrOption

    with session_scope(settings) as s:
        options = s.exec(select(IvrOption).where(IvrOption.number == MENU_DID)).all()
        queue = next(o.queue_name for o in options if o.digit == KEY)
        add_seats(s, MAX_CALLS, 4000, "容量坐席", queue)
        ring_every_seat_at(s, UAS_PORT)
        for q in s.exec(select(CallQueue)).all():
            q.wrapup = 0
            s.add(q)
        s.commit()
    return settings, queue, dataset.callers(MAX_CALLS * len(PATH_NAMES) + STEP_CALLS)


def key_at_ms(settings: Settings) -> int:
    """After the welcome, "人工服务请按0。" and "老年人服务请按1。" (their generated lengths), plus slack."""
    heard = 0.0
    for name in ("welcome", option_prompt_name(MENU_DID, "0"), option_prompt_name(MENU_DID, KEY)):
        with wave.open(str(sounds.sounds_dir(settings) / f"{name}.wav"), "rb") as w:
            heard += w.getnframes() * 1000 / w.getframerate()
    return int(heard + KEY_SLACK_MS)


@dataclass
class Calls:
    """The residents' calls as Asterisk reports them (the caller's channel: uniqueid == linkedid)."""

    created: dict[str, float] = field(default_factory=dict)  # linkedid -> Newchannel (Asterisk's clock)
    connected: set[str] = field(default_factory=set)
    hung_up: dict[str, str] = field(default_factory=dict)  # linkedid -> cause
    lag_ms: list[float] = field(default_factory=list)  # event received - Asterisk's Timestamp
    ending = False  # the ramp is over: hang-ups are ours

    def on_ami(self, _manager, msg) -> None:
        event = ev.parse_event(msg)
        if event is None:
            return
        if event.emitted:
            self.lag_ms.append((event.received - event.emitted) * 1000)
        if isinstance(event, ev.Newchannel) and event.uniqueid == event.linkedid:
            self.created[event.linkedid] = event.emitted or event.received
        elif isinstance(event, ev.AgentConnect) and event.linkedid in self.created:
            self.connected.add(event.linkedid)
        elif isinstance(event, ev.Hangup) and event.uniqueid == event.linkedid and not self.ending:
            if event.linkedid in self.created:
                self.hung_up[event.linkedid] = f"{event.cause} {msg.get('Cause-txt', '')}".strip()

    def up(self) -> list[str]:
        return [lid for lid in self.connected if lid not in self.hung_up]


# --- what each part is doing ---------------------------------------------------------------------


def children_sipp() -> list[int]:
    """This benchmark's sipp processes (its children): the seat phone and the callers' sipps."""
    me = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if comm == "sipp" and ppid == me:
            pids.append(int(entry.name))
    return pids


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs (/proc/stat)."""
    parts = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return sum(parts) - idle, sum(parts)


def udp_drops(sipp_pids: list[int], rtp: tuple[int, int]) -> dict[str, int]:
    """Datagrams dropped by full socket buffers (/proc/net/udp ``drops``): on Asterisk's RTP
    ports, and on the sipps' sockets (by socket inode)."""
    inodes: set[str] = set()
    for pid in sipp_pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    drops = {"asterisk": 0, "sipp": 0, "asterisk_rtp_sockets": 0}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        port = int(cols[1].split(":")[1], 16)
        # A sipp's socket first: its media ports come from the kernel's ephemeral range, which
        # may overlap Asterisk's RTP range.
        if cols[9] in inodes:
            drops["sipp"] += int(cols[-1])
        elif rtp[0] <= port <= rtp[1]:
            drops["asterisk"] += int(cols[-1])
            drops["asterisk_rtp_sockets"] += 1
    return drops


def open_fds(pid: int) -> tuple[int, int]:
    """(open files, soft limit) of a process."""
    count = len(os.listdir(f"/proc/{pid}/fd"))
    limit = 0
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            limit = int(line.split()[3])
    return count, limit


_STATS_ROW = re.compile(
    r"^\s*\S+\s+(?P<chan>\S+)\s+\d+:\d+:\d+\s+\S+\s+(?P<rx>\d+)\s+(?P<rx_lost>-?\d+)\s+\S+\s+\S+\s+(?P<tx>\d+)"
)


def channel_stats(settings: Settings) -> tuple[dict[str, int], int, int]:
    """Per channel (as ``pjsip show channelstats`` names it) its receive count; the sum of the
    receive-lost counts; the rows read."""
    text = process.cli_command(settings, "pjsip show channelstats", timeout=60)
    rx: dict[str, int] = {}
    lost = rows = 0
    for line in text.splitlines():
        m = _STATS_ROW.match(line)
        if not m:
            continue
        rows += 1
        rx[m["chan"]] = int(m["rx"])
        lost += max(0, int(m["rx_lost"]))
    return rx, lost, rows


def recording_sizes(settings: Settings, linkedids: list[str]) -> dict[str, int]:
    folder = recordings_dir(settings)
    sizes = {}
    for lid in linkedids:
        f = folder / f"{lid}.wav"
        sizes[lid] = f.stat().st_size if f.exists() else 0
    return sizes


class Watch:
    """CPU of each part and the machine between two points."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.cpu0 = {name: self._cpu(p) for name, p in pids.items()}
        self.busy0 = machine_busy()

    @staticmethod
    def _cpu(pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                total += cpu_ms(pid)
        return total

    def read(self) -> dict[str, float]:
        wall_ms = (time.monotonic() - self.t0) * 1000
        out = {
            f"{name}_cpu_pct": round((self._cpu(p) - self.cpu0[name]) / wall_ms * 100, 1)
            for name, p in self.pids.items()
        }
        busy, total = machine_busy()
        out["machine_busy_pct"] = round((busy - self.busy0[0]) / max(1.0, total - self.busy0[1]) * 100, 1)
        return out


# --- one path's ramp ----------------------------------------------------------------------------


async def ramp(
    app: App, path: str, callers: list[str], key_at: int, caller_audio: Path, uas_pid: int
) -> dict:
    settings = app.settings
    calls = Calls()
    manager = await open_manager(settings, calls.on_ami, username=settings.ami_engine_user)
    asterisk_pid = int(process.pid_file(settings).read_text().split()[0])
    rtp = (settings.rtp_start, settings.rtp_end)
    sipps: list[asyncio.Task[SippResult]] = []
    steps: list[dict] = []
    held = 0
    limit_part = f"none up to BENCH_CAPACITY_MAX_CALLS ({MAX_CALLS})"
    at_limit: dict = {}
    failed_step: dict = {}
    messages = settings.asterisk_instance_dir() / "log" / "messages"  # logger.conf: notice and up
    log_start = messages.stat().st_size if messages.exists() else 0
    try:
        while held + STEP_CALLS <= MAX_CALLS:
            target = held + STEP_CALLS
            batch, callers[:] = callers[:STEP_CALLS], callers[STEP_CALLS:]
            lag_from = len(calls.lag_ms)
            placed_at = time.monotonic()
            sipps.append(
                asyncio.create_task(
                    run_calls(
                        settings,
                        DIDS[path],
                        batch,
                        rate=STEP_CALLS / STEP_S,
                        hold_ms=HOLD_MS,
                        dtmf=[key_at, KEY],
                        timeout=HOLD_MS / 1000 + 60,
                        audio=caller_audio,
                    )
                )
            )
            # Answered: every call placed so far, within the placing, the menu and SETTLE_S
            deadline = placed_at + STEP_S + key_at / 1000 + SETTLE_S
            while time.monotonic() < deadline and (
                len(calls.connected) < target or len(calls.created) < target
            ):
                if any(t.done() for t in sipps):
                    break  # a sipp ended early: its calls failed
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # the recordings have started
            # The window: every part's CPU, RTP, recordings
            up = calls.up()
            sipp_pids = children_sipp()
            assert app.proc is not None
            pids = {"asterisk": [asterisk_pid], "app": [app.proc.pid], "sipp": sipp_pids}
            drops0 = udp_drops(sipp_pids, rtp)
            rx0, lost0, rows0 = await asyncio.to_thread(channel_stats, settings)
            sizes0 = await asyncio.to_thread(recording_sizes, settings, up)
            watch = Watch(pids)
            t0 = time.monotonic()
            await asyncio.sleep(WINDOW_S)
            cpu = watch.read()
            rx1, lost1, rows1 = await asyncio.to_thread(channel_stats, settings)
            window = time.monotonic() - t0
            sizes1 = await asyncio.to_thread(recording_sizes, settings, up)
            drops1 = udp_drops(children_sipp(), rtp)
            fds, fd_limit = open_fds(asterisk_pid)
            # Channels up through the whole window: their receive count must have grown
            both = [c for c in rx0 if c in rx1]
            rx_short = sum(1 for c in both if rx1[c] - rx0[c] < MIN_RX_SHARE * RTP_PPS * (window - 1))
            rec_short = sum(
                1
                for lid in up
                if sizes1.get(lid, 0) - sizes0.get(lid, 0)
                < MIN_RECORDING_SHARE * RECORDING_BYTES_PER_S * (window - 1)
            )
            lags = sorted(calls.lag_ms[lag_from:])
            failed_sipps = [t for t in sipps if t.done()]  # a caller's sipp ends only when its calls do
            log_text = ""
            with contextlib.suppress(OSError):
                with open(messages, "rb") as f:
                    f.seek(log_start)
                    log_text = f.read().decode(errors="replace")
            no_rtp_port = "couldn't allocate a port for RTP" in log_text  # res_rtp_asterisk's words
            checks = {
                "answered": len(calls.connected) >= target and len(calls.created) >= target,
                "none_hung_up": not calls.hung_up,
                "sipp_running": not failed_sipps,
                "rtp_received": rx_short == 0 and rows1 >= 2 * len(up),
                "rtp_not_lost": lost1 - lost0 <= 0,
                "udp_not_dropped": drops1["asterisk"] == drops0["asterisk"],
                "recording_growing": rec_short == 0 and len(up) >= target,
                "ami_on_time": not lags or lags[-1] <= AMI_LATE_MS,
            }
            ok = all(checks.values())
            step: dict[str, Any] = {
                "path": path,
                "target_calls": target,
                "created": len(calls.created),
                "answered": len(calls.connected),
                "up": len(up),
                "hung_up": len(calls.hung_up),
                "hangup_causes": sorted(set(calls.hung_up.values()))[:5],
                "channels_in_stats": rows1,
                "channels_rx_short": rx_short,
                "rx_lost_in_window": lost1 - lost0,
                "udp_drops_asterisk": drops1["asterisk"] - drops0["asterisk"],
                "udp_drops_sipp": max(0, drops1["sipp"] - drops0["sipp"]),
                "asterisk_rtp_sockets": drops1["asterisk_rtp_sockets"],
                "asterisk_fds": fds,
                "asterisk_fd_limit": fd_limit,
                "recordings_behind": rec_short,
                "ami_lag_max_ms": round(lags[-1], 1) if lags else None,
                "ami_lag_n": len(lags),
                "no_rtp_port_logged": no_rtp_port,
                "window_s": round(window, 1),
                **cpu,
                "load_average": load_average(),
                "checks": checks,
                "ok": ok,
            }
            steps.append(step)
            st = step
            log(
                f"{path:6} {target} calls: created {st['created']}, answered {st['answered']}, "
                f"up {st['up']}, hung up {st['hung_up']}, rx short {rx_short}/{len(both)}, "
                f"rx lost {st['rx_lost_in_window']}, udp drops asterisk/sipp {st['udp_drops_asterisk']}/"
                f"{st['udp_drops_sipp']}, recordings behind {rec_short}, "
                f"ami lag max {st['ami_lag_max_ms']} ms, rtp sockets {st['asterisk_rtp_sockets']}, "
                f"fds {fds}, cpu asterisk {cpu['asterisk_cpu_pct']} "
                f"app {cpu['app_cpu_pct']} sipp {cpu['sipp_cpu_pct']} machine {cpu['machine_busy_pct']} %, "
                f"load {st['load_average'][0]} -> {'PASS' if ok else 'FAIL'}"
            )
            if not ok:
                failed_step = step
                limit_part = limit_part_of(step, RTP_PORTS)
                break
            held, at_limit = len(up), step
    finally:
        calls.ending = True
        with contextlib.suppress(Exception):
            await asyncio.to_thread(process.cli_command, settings, "channel request hangup all")
        if sipps:
            _, pending = await asyncio.wait(sipps, timeout=60)  # Asterisk's BYEs end them
            for t in pending:
                t.cancel()  # a call Asterisk forgot: run_calls kills its sipp
        results = await asyncio.gather(*sipps, return_exceptions=True)
        close_manager(manager)
    sipp_failed = sum(r.failed for r in results if isinstance(r, SippResult))
    return {
        "held": held,
        "limit_part": limit_part,
        "at_limit": at_limit,
        "failed_step": failed_step,
        "steps": steps,
        "sipp_failed_calls": sipp_failed,
    }


def limit_part_of(step: dict, rtp_ports: int) -> str:
    """Which part ran out in a failed step (see the docstring for the order)."""
    checks = step["checks"]
    # A channel's RTP socket takes an even port and leaves the odd one for RTCP: P / 2 sockets fit
    if step["no_rtp_port_logged"] or step["asterisk_rtp_sockets"] >= 0.95 * rtp_ports / 2:
        return "rtp_ports"
    if step["asterisk_fd_limit"] and step["asterisk_fds"] >= 0.95 * step["asterisk_fd_limit"]:
        return "asterisk_fds"
    if step["machine_busy_pct"] >= CPU_OUT_PCT:
        # The machine is shared: what the other work used counts as a part too
        used = {name: step[f"{name}_cpu_pct"] for name in ("asterisk", "app", "sipp")}
        used["other"] = step["machine_busy_pct"] * (os.cpu_count() or 1) - sum(used.values())
        return "cpu:" + max(used, key=lambda name: used[name])
    if not checks["recording_growing"] and checks["answered"]:
        return "recording_write"
    if [name for name, ok in checks.items() if not ok] == ["ami_on_time"]:
        return "ami_events"
    return "unknown: " + ",".join(name for name, ok in checks.items() if not ok)


async def measure(app: App, queue: str, callers: list[str]) -> dict:
    settings = app.settings
    load_start = load_average()
    key_at = key_at_ms(settings)
    caller_audio = looped_tone(CACHE / "caller.ul", CALLER_TONE_HZ)
    seat_audio = looped_tone(CACHE / "seat.ul", SEAT_TONE_HZ)
    log(f"callers press {KEY} at {key_at} ms; RTP range {RTP_PORTS} ports ({RTP_PORTS // 4} calls)")
    results: dict[str, dict] = {}
    with speaking_seat_phone(UAS_PORT, seat_audio, RING_MS) as uas:
        assert uas.proc is not None
        await asyncio.sleep(5)  # the app's start-up work is over
        for i, path in enumerate(PATH_NAMES):
            if i:
                await asyncio.sleep(DRAIN_S)  # the previous path's calls are gone, ports freed
            results[path] = await ramp(app, path, callers, key_at, caller_audio, uas.proc.pid)
            r = results[path]
            log(f"{path}: {r['held']} calls held; ran out: {r['limit_part']}")
            # Recordings of the ramp: gigabytes at the limit
            for f in recordings_dir(settings).glob("*.wav"):
                f.unlink(missing_ok=True)

    def cpu(r: dict | None, step_key: str) -> dict | None:
        step = (r or {}).get(step_key) or {}
        names = ("asterisk_cpu_pct", "app_cpu_pct", "sipp_cpu_pct", "machine_busy_pct")
        return {k: step[k] for k in names} if step else None

    full, static = results.get("full"), results.get("static")
    return {
        "bench": "capacity",
        "max_concurrent_recorded_calls": full["held"] if full else None,
        "max_concurrent_recorded_calls_steps": len(full["steps"]) if full else 0,
        "capacity_limit_part": full["limit_part"] if full else None,
        "full_path_cpu_pct_at_limit": cpu(full, "at_limit"),
        "full_path_cpu_pct_failed_step": cpu(full, "failed_step"),
        "max_concurrent_recorded_calls_static": static["held"] if static else None,
        "max_concurrent_recorded_calls_static_steps": len(static["steps"]) if static else 0,
        "capacity_limit_part_static": static["limit_part"] if static else None,
        "static_path_cpu_pct_at_limit": cpu(static, "at_limit"),
        "static_path_cpu_pct_failed_step": cpu(static, "failed_step"),
        "rtp_ports": RTP_PORTS,
        "rtp_ports_ceiling_calls": RTP_PORTS // 4,
        "step_calls": STEP_CALLS,
        "step_s": STEP_S,
        "window_s": WINDOW_S,
        "key_at_ms": key_at,
        "prompts": "production",
        "audio": f"both ways: caller {CALLER_TONE_HZ} Hz, seat {SEAT_TONE_HZ} Hz, looped PCMU",
        "recording": "MixMonitor of every call a seat answers (the product's dialplan)",
        "residents": dataset.RESIDENTS,
        "unknown_share": dataset.UNKNOWN_SHARE,
        "sipp_failed_calls": {p: r["sipp_failed_calls"] for p, r in results.items()},
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "steps": [s for r in results.values() for s in r["steps"]],
    }


def main() -> None:
    started = time.monotonic()
    settings, queue, callers = prepare()
    took = time.monotonic() - started
    log(f"data dir ready ({MAX_CALLS} extra seats in {queue}) in {took:.1f} s")
    os.environ.update({"CALLCENTER_CLOCK": CLOCK, "CALLCENTER_BENCH_STATIC_DID": STATIC_DID})
    result = on_stack(settings, measure, queue, callers)
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
