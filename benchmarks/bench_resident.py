"""The resident's side: how fast a seat rings, how soon a missed call is called back, and the
resident's page with half a million orders.

- ``answer_to_first_ring_p50_s``: real calls (sipp) through Asterisk and ``callcenter serve`` on
  the default service number with the default spoken welcome: from the caller's channel
  appearing (the dialplan answers at once) to the first seat's phone ringing (AMI AgentCalled),
  Asterisk's own timestamps. The database is the shared benchmark data set
  (benchmarks/dataset.py, BENCH_RESIDENTS residents), callers drawn from its residents with
  BENCH_UNKNOWN_SHARE unknown numbers. Target ≤ 6 s.
- ``missed_callback_p95_s``: the engine's callback worker as in production (its poll loop, the
  database, the dial-out policy) with a free seat in the live model and the AMI connection
  replaced by a recorder: from the abandoned call's record being published to the Originate of
  the seat-first callback being sent. Target ≤ 60 s.
- ``missed_callback_ratio_15min``: a busy hour simulated on an injected clock (a discrete-event
  model of the queue: Poisson arrivals, exponential talk and patience, seats taking queued calls
  first and missed calls, oldest first, when no caller waits): the share of abandoned calls whose
  callback was dialled within 15 minutes. Target ≥ 0.95.
- ``resident_page_p95_ms``: POST /q (order number + query code → the timeline page) through the
  whole web app in process (throttle, lookup, template) with BENCH_RESIDENT_ORDERS (500,000)
  orders in SQLite. Target ≤ 100 ms.

Prints progress to stderr and one JSON line last on stdout: {"bench": "resident", ...} with each
figure's sample size.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import dataset  # noqa: E402
from benchmarks.common import (  # noqa: E402
    CACHE_ROOT,
    PORT_OFFSET,
    dataset_dir,
    fresh_data_dir,
    log,
    on_stack,
    percentile,
    ports,
)
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import get_engine, migrate, session_scope  # noqa: E402

ORDERS = int(os.environ.get("BENCH_RESIDENT_ORDERS", "500000"))
PAGE_LOOKUPS = int(os.environ.get("BENCH_RESIDENT_LOOKUPS", "400"))
RING_CALLS = int(os.environ.get("BENCH_RESIDENT_CALLS", "20"))
MISSED = int(os.environ.get("BENCH_RESIDENT_MISSED", "40"))
SIM_RUNS = int(os.environ.get("BENCH_RESIDENT_SIM_RUNS", "20"))
CACHE = CACHE_ROOT
UAS_PORT = 21081 + PORT_OFFSET
PORTS = ports(
    ami_port=21038,
    sip_port=21060,
    agi_port=21573,
    web_port=21080,
    rtp_start=16000,
    rtp_end=16999,
    doctor_sip_port=21099,
    asterisk_http_port=21088,
)


# --- the resident's page with ORDERS orders ------------------------------------------------


def page_settings() -> Settings:
    # Named by the code that makes it (this script, the migrations): a new schema, a new data set.
    folder = dataset_dir("resident", ORDERS)
    settings = set_settings(Settings(data_dir=folder, _env_file=None, session_secret="b" * 40))
    migrate(settings)
    ready = folder / "ready"
    if not ready.exists():
        started = time.monotonic()
        bulk_orders(settings, ORDERS)
        ready.write_text("ok")
        log(f"generated {ORDERS} orders in {time.monotonic() - started:.0f} s")
    return settings


def order_number(i: int) -> str:
    day = datetime(2026, 1, 1) + timedelta(days=i // 2000)
    return f"GD{day:%Y%m%d}-{i % 2000 + 1:05d}"


def query_code(i: int) -> str:
    return f"{random.Random(i).randrange(10**6):06d}"


def bulk_orders(settings: Settings, n: int) -> None:
    """n orders with their 受理 and 派单 history, in batches (Core inserts, one transaction each)."""
    from dispatch.models import OrderHistory, WorkOrder

    engine = get_engine(settings)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 20000
    for start in range(0, n, batch):
        orders, history = [], []
        for i in range(start, min(n, start + batch)):
            at = base + timedelta(minutes=i)
            orders.append(
                {
                    "id": i + 1,
                    "number": order_number(i),
                    "order_type": "求助",
                    "status": "已派单",
                    "summary": "楼道灯不亮",
                    "created_at": at,
                    "updated_at": at,
                    "short_code": "",
                    "query_code": query_code(i),
                    "caller_phone": f"+86139{i:08d}",
                }
            )
            history.append({"order_id": i + 1, "at": at, "actor": "seat1001", "action": "受理", "detail": {}})
            history.append({"order_id": i + 1, "at": at, "actor": "seat1001", "action": "派单", "detail": {}})
        with engine.begin() as conn:
            conn.execute(WorkOrder.__table__.insert(), orders)  # type: ignore[attr-defined]
            conn.execute(OrderHistory.__table__.insert(), history)  # type: ignore[attr-defined]


async def measure_page(settings: Settings) -> dict:
    import httpx

    from callcenter.bus import InProcessBus
    from web_console.app import create_app

    app = create_app(settings, InProcessBus())
    rng = random.Random(7)
    picks = [rng.randrange(ORDERS) for _ in range(PAGE_LOOKUPS)]
    lat: list[float] = []
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for j, i in enumerate(picks):
            data = {"number": order_number(i), "code": query_code(i)}
            t0 = time.perf_counter()
            r = await client.post("/q", data=data)
            took = (time.perf_counter() - t0) * 1000
            if r.status_code != 200 or "q-timeline" not in r.text:
                raise RuntimeError(f"lookup {j} failed: {r.status_code}")
            if j >= 10:  # the first requests warm the templates and the connection pool
                lat.append(took)
    return {"resident_page_p95_ms": round(percentile(lat, 95), 2), "resident_page_n": len(lat)}


# --- missed calls: the worker's reaction with a seat free -----------------------------------


class _RecordingAmi:
    """The AMI connection replaced: every Originate is noted (when), the seat 'answers' and the
    resident's leg is reported answered at once."""

    def __init__(self) -> None:
        self.originated: list[tuple[float, dict]] = []
        self.worker = None

    async def held_action(self, action, timeout=45):
        from callcenter.ami.actions import Reply

        fields = dict(action.headers)
        self.originated.append((time.monotonic(), fields))
        asyncio.get_running_loop().call_later(0.01, self._answered, fields.get("Variable", ""))
        return Reply(ok=True, message="Originate successfully queued", raw={})

    def _answered(self, variables) -> None:
        for part in str(variables).split(","):
            if part.startswith("CC_CB_ID="):
                self.worker.dialled(part.split("=", 1)[1], "ANSWER")

    async def action(self, action, timeout=10.0, as_list=None):
        from callcenter.ami.actions import Reply

        return Reply(ok=True, message="", raw={})


class _Directory:
    async def caller_id(self) -> str:
        return "96345"


async def measure_missed() -> dict:
    from callcenter.bus import InProcessBus
    from callcenter.callcontrol.callbacks import CallbackWorker
    from callcenter.calls.state import LiveModel, SeatState
    from callcenter.messages import CallRecorded

    folder = CACHE / "resident-missed"
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    settings = Settings(
        data_dir=folder, _env_file=None, outbound_contact="sip:127.0.0.1:5999", dialout_daily_cap=1000
    )
    migrate(settings)
    bus = InProcessBus()
    model = LiveModel()
    model.seats["1001"] = SeatState(ext="1001", status=1, queues={"hotline"})
    ami = _RecordingAmi()
    worker = CallbackWorker(settings, bus, ami, model, _Directory())  # type: ignore[arg-type]
    ami.worker = worker
    await worker.start()
    delays: list[float] = []
    try:
        for i in range(MISSED):
            row = {
                "linkedid": f"1700000000.{i}",
                "caller": f"+86138{i:08d}",
                "did": "96345",
                "source": "carrier",
                "queue": "hotline",
                "seat": "",
                "outcome": "abandoned",
            }
            before = len(ami.originated)
            t0 = time.monotonic()
            await bus.publish(CallRecorded.topic, CallRecorded(row).to_json())
            while len(ami.originated) == before:
                if time.monotonic() - t0 > 120:
                    raise RuntimeError("no callback dialled in 120 s")
                await asyncio.sleep(0.01)
            delays.append(ami.originated[-1][0] - t0)
            await asyncio.sleep(random.Random(i).random())  # abandonments arrive at any moment
    finally:
        await worker.stop()
    return {"missed_callback_p95_s": round(percentile(delays, 95), 3), "missed_callback_n": len(delays)}


# --- a busy hour on an injected clock ---------------------------------------------------------


def simulate_hour(seed: int, seats: int = 12, calls_per_h: int = 300, talk_s: float = 150.0) -> list[float]:
    """One busy hour (then until every missed call is called back): the delays from each
    abandonment to its callback being dialled. Seats take a waiting caller first, else the
    oldest missed call (the worker's order); a callback holds its seat for the callback's talk."""
    rng = random.Random(seed)
    t, events = 0.0, []
    while t < 3600:
        t += rng.expovariate(calls_per_h / 3600)
        events.append((t, "arrive", rng.expovariate(1 / 60.0)))  # patience: 60 s on average
    heap = [(at, kind, patience, i) for i, (at, kind, patience) in enumerate(events)]
    heapq.heapify(heap)
    free = seats
    waiting: list[tuple[float, int, float]] = []  # (arrived, id, gives up at)
    missed: list[tuple[float, int]] = []  # (abandoned at, id)
    delays: list[float] = []
    seq = len(events)

    def take_work(now: float) -> None:
        nonlocal free, seq
        while free > 0 and (waiting or missed):
            free -= 1
            seq += 1
            if waiting:
                waiting.pop(0)
                heapq.heappush(heap, (now + rng.expovariate(1 / talk_s), "done", 0.0, seq))
            else:
                abandoned_at, _id = missed.pop(0)
                delays.append(now - abandoned_at)
                heapq.heappush(heap, (now + rng.expovariate(1 / (talk_s * 0.8)), "done", 0.0, seq))

    while heap:
        now, kind, patience, ident = heapq.heappop(heap)
        if kind == "arrive":
            waiting.append((now, ident, now + patience))
            heapq.heappush(heap, (now + patience, "abandon", 0.0, ident))
        elif kind == "abandon":
            for k, (_arrived, wid, _until) in enumerate(waiting):
                if wid == ident:
                    waiting.pop(k)
                    missed.append((now, ident))
                    break
        elif kind == "done":
            free += 1
        take_work(now)
    return delays


def measure_ratio() -> dict:
    delays: list[float] = []
    for run in range(SIM_RUNS):
        delays += simulate_hour(run)
    within = sum(1 for d in delays if d <= 15 * 60)
    return {
        "missed_callback_ratio_15min": round(within / len(delays), 4) if delays else None,
        "missed_callback_ratio_n": len(delays),
        "missed_callback_sim": {
            "hours": SIM_RUNS,
            "seats": 12,
            "calls_per_h": 300,
            "talk_s": 150,
            "patience_s": 60,
        },
    }


# --- answer to the first seat ringing, real calls ----------------------------------------------


def stack_settings() -> Settings:
    folder = CACHE / "resident-stack"
    settings = set_settings(Settings(data_dir=folder / "var", _env_file=None, **PORTS))
    fresh_data_dir(settings, folder, residents=dataset.RESIDENTS)
    (settings.data_dir / "prompts.json").write_text("{}")  # the default welcome, as residents hear it
    from sqlmodel import select

    from callcenter.accounts.models import Account
    from callcenter.directory.models import CallQueue

    with session_scope(settings) as s:
        for acc in s.exec(select(Account).where(Account.role == "seat")).all():
            if acc.extension:
                acc.sip_contact = f"sip:seat{acc.extension}@127.0.0.1:{UAS_PORT}"
                s.add(acc)
        for q in s.exec(select(CallQueue)).all():
            q.wrapup = 0
            s.add(q)
        s.commit()
    return settings


async def measure_ring(app) -> dict:
    from asterisk_conf.sipp import SippUAS, run_calls
    from callcenter.ami.client import close_manager, open_manager

    created: dict[str, float] = {}
    first_ring: dict[str, float] = {}

    def on_ami(_manager, msg) -> None:
        name = msg.get("Event")
        stamp = float(msg.get("Timestamp") or time.time())
        if name == "Newchannel" and msg.get("Uniqueid") == msg.get("Linkedid"):
            created.setdefault(msg.get("Linkedid"), stamp)
        elif name == "AgentCalled":
            first_ring.setdefault(msg.get("Linkedid"), stamp)

    manager = await open_manager(app.settings, on_ami)
    try:
        callers = dataset.callers(RING_CALLS)
        with SippUAS(port=UAS_PORT, ring_ms=300, talk_ms=500):
            result = await run_calls(app.settings, "96345", callers, rate=1.0, hold_ms=2500, timeout=120)
        await asyncio.sleep(1)
    finally:
        close_manager(manager)
    gaps = [first_ring[k] - created[k] for k in first_ring if k in created]
    if not gaps:
        raise RuntimeError(f"no seat rang: {result.output[-2000:]}")
    return {
        "answer_to_first_ring_p50_s": round(percentile(gaps, 50), 3),
        "answer_to_first_ring_max_s": round(max(gaps), 3),
        "answer_to_first_ring_n": len(gaps),
    }


def main() -> None:
    started = time.monotonic()
    result: dict = {"bench": "resident"}
    result.update(on_stack(stack_settings(), measure_ring))
    log(f"answer to first ring: {result['answer_to_first_ring_p50_s']} s")
    result.update(asyncio.run(measure_missed()))
    log(f"missed callback p95: {result['missed_callback_p95_s']} s")
    result.update(measure_ratio())
    result.update(asyncio.run(measure_page(page_settings())))
    result["orders"] = ORDERS
    log(f"total {time.monotonic() - started:.1f} s")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
