"""FastAGI incoming route with 1,000,000 residents, against a per-call pyst2 stdin script.

The engine's FastAGI server and incoming route run as in production (SQLite); a second
process plays Asterisk's side over TCP at full speed, BENCH_AGI_CONCURRENCY calls (default 4)
in progress at once. The stdin script is spawned once per call, as Asterisk does with
AGI(/path/script). Prints one JSON line:
{"bench": "agi", "agi_routes_per_s", "agi_p50_ms", "agi_p99_ms", "process_routes_per_s",
"agi_vs_process_ratio", "residents"}.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import shutil
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agi_scripts.testing import agi_env, answer_commands, run_agi_call  # noqa: E402
from benchmarks.common import dataset_dir, percentile  # noqa: E402
from callcenter import aio  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import get_engine, migrate, session_scope  # noqa: E402

RESIDENTS = int(os.environ.get("BENCH_RESIDENTS", "1000000"))
CALLS = int(os.environ.get("BENCH_AGI_CALLS", "20000"))
CONCURRENCY = int(os.environ.get("BENCH_AGI_CONCURRENCY", "4"))  # calls in progress at once
PROCESS_CALLS = int(os.environ.get("BENCH_AGI_PROCESS_CALLS", "40"))
CACHE = dataset_dir("agi", RESIDENTS, code=("hotline/demo.py",))


def prepare() -> Settings:
    """A database with RESIDENTS residents, made once and cached."""
    settings = set_settings(Settings(data_dir=CACHE, _env_file=None))
    done = CACHE / "ready"
    if not done.exists():
        shutil.rmtree(CACHE, ignore_errors=True)  # a run that died half-way
        CACHE.mkdir(parents=True)
        migrate(settings)
        from hotline.demo import bulk_residents, load_demo

        with session_scope(settings) as s:
            load_demo(s, residents=100, seat_contact_base_port=None)
        t0 = time.time()
        bulk_residents(get_engine(settings), RESIDENTS)
        print(f"# generated {RESIDENTS} residents in {time.time() - t0:.0f} s", file=sys.stderr)
        done.write_text("ok")
    return settings


def _client(port: int, n: int, concurrency: int, out, key: str) -> None:
    from hotline.demo import bulk_phone

    async def main():
        lat: list[float] = []
        counter = iter(range(n))

        async def worker():
            for i in counter:
                phone = bulk_phone((i * 7919) % RESIDENTS)
                t0 = time.perf_counter()
                got, _ = await run_agi_call(
                    "127.0.0.1",
                    port,
                    "incoming",
                    args=["carrier", "96345", "hotline", f"1800000000.{i}"],
                    env={"agi_callerid": phone.replace("+86", "")},
                    key=key,
                )
                lat.append(time.perf_counter() - t0)
                assert got.get("CC_RESIDENT_ID"), got

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        print(f"# client cpu {100 * (time.process_time() - c0) / elapsed:.0f} %", file=sys.stderr)
        return lat, elapsed

    out.put(asyncio.run(main()))


async def fastagi(settings: Settings) -> dict:
    from callcenter.bus import InProcessBus
    from hotline.engine import Engine

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.agi_port = port
    engine = Engine(settings, InProcessBus())
    # The route alone: the call service's consumer (pop profiles) is not started, so what the
    # route hands over just waits in its queue, as it would behind a busy consumer.
    await engine.start_agi()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # Warm-up, then the measured run, each in a client process of its own.
    for n in (500, CALLS):
        proc = ctx.Process(target=_client, args=(port, n, CONCURRENCY, out, settings.agi_secret))
        c0 = time.process_time()
        proc.start()
        while out.empty():
            if not proc.is_alive() and out.empty():
                raise SystemExit(f"the FastAGI client process died (exit code {proc.exitcode})")
            await asyncio.sleep(0.05)
        lat, elapsed = out.get()
        proc.join()
        print(f"# server cpu {100 * (time.process_time() - c0) / elapsed:.0f} %", file=sys.stderr)
    await engine.stop_agi()
    return {
        "agi_routes_per_s": round(len(lat) / elapsed, 1),
        "agi_p50_ms": round(percentile(lat, 50) * 1000, 3),
        "agi_p99_ms": round(percentile(lat, 99) * 1000, 3),
        "agi_calls": len(lat),
    }


async def per_call_process(settings: Settings) -> float:
    """Routes/s of the same lookup by a pyst2 stdin script spawned per call (2 at a time)."""
    from hotline.demo import bulk_phone

    env = dict(os.environ, CALLCENTER_DATA_DIR=str(settings.data_dir), PYTHONPATH=str(ROOT))
    script = ROOT / "agi_scripts" / "stdin_incoming.py"

    async def one(i: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        phone = bulk_phone(i)
        proc.stdin.write(agi_env("stdin_incoming.py", env={"agi_callerid": phone, "agi_network": "no"}))
        got, _ = await answer_commands(proc.stdout, proc.stdin, timeout=30)
        await proc.wait()
        assert got.get("CC_RESIDENT_ID"), got

    t0 = time.perf_counter()
    for i in range(0, PROCESS_CALLS, 2):
        await asyncio.gather(one(i), one(i + 1))
    return PROCESS_CALLS / (time.perf_counter() - t0)


def main() -> None:
    settings = prepare()
    result = aio.run(fastagi(settings))  # the engine's loop, as `callcenter serve` runs it
    proc_rate = asyncio.run(per_call_process(settings))
    result["process_routes_per_s"] = round(proc_rate, 2)
    result["agi_vs_process_ratio"] = round(result["agi_routes_per_s"] / proc_rate, 1)
    print(json.dumps({"bench": "agi", "residents": RESIDENTS, **result}))


if __name__ == "__main__":
    main()
