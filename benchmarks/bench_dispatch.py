"""Dispatch with 1,000,000 residents and 500,000 orders, and routing with 10,000 rules.

1. Orders created and dispatched per second [dispatch_per_s]: BENCH_DISPATCH_CONCURRENCY seats
   (default 4, threads) create orders back to back; each is 受理 + 派单 in one transaction with
   its SMS enqueued in it, and counts when the SMS provider receives the request — through the
   messaging outbox worker (on the event loop, as in the engine) and the real Twilio SDK to the
   local stand-in of Twilio's Messages API (in a process of its own, as a remote provider is).
   The p50/p99 of one order's path (start of the request → provider received it) is measured at
   a steady BENCH_DISPATCH_RATE orders/s (default 10, a busy hotline's peak), not in the
   saturated run, where it would only measure the queue the benchmark itself builds.
2. Routing rule evaluation (category tree × community / service area) with 10,000 rules.

The database (SQLite) is made once and cached under benchmarks/.cache. Prints one JSON line:
{"bench": "dispatch", "dispatch_per_s", "dispatch_p50_ms", "dispatch_p99_ms", "routing_p50_us",
"routing_p99_us", "residents", "orders", "rules"}.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import dataset_dir, percentile  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import get_engine, migrate, session_scope  # noqa: E402

RESIDENTS = int(os.environ.get("BENCH_RESIDENTS", "1000000"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "500000"))
RULES = int(os.environ.get("BENCH_RULES", "10000"))
DISPATCHES = int(os.environ.get("BENCH_DISPATCHES", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_DISPATCH_CONCURRENCY", "4"))
LATENCY_ORDERS = int(os.environ.get("BENCH_DISPATCH_LATENCY_ORDERS", "500"))
PACED_RATE = float(os.environ.get("BENCH_DISPATCH_RATE", "10"))  # orders/s for the latency run
LOOKUPS = int(os.environ.get("BENCH_ROUTING_LOOKUPS", "200000"))
CACHE = dataset_dir("dispatch", RESIDENTS, ORDERS, RULES, code=("hotline/demo.py",))


def _bulk_orders(settings: Settings, n: int) -> None:
    """n past orders: most closed, 10,000 still open (each with its own short code)."""
    from sqlmodel import select

    from callcenter.directory.models import Community, Outlet
    from dispatch.models import Category, Status, WorkOrder

    with session_scope(settings) as s:
        cats = [(c.id, c.name) for c in s.exec(select(Category))]
        communities = list(s.exec(select(Community.id)))
        outlets = list(s.exec(select(Outlet.id)))
    rng = random.Random(11)
    table = WorkOrder.__table__
    start = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
    per_day = 2000
    open_every = max(1, n // 10000)
    engine = get_engine(settings)
    batch = []
    for i in range(n):
        day, seq = divmod(i, per_day)
        created = start + timedelta(days=day, seconds=seq * 20)
        cat_id, cat_name = rng.choice(cats)
        is_open = i % open_every == 0
        code = f"{100000 + i // open_every}" if is_open else str(1000 + i % 9000)
        batch.append(
            {
                "number": f"GD{created:%Y%m%d}-{seq + 1:05d}",
                "resident_id": rng.randint(1, RESIDENTS),
                "call_linkedid": "",
                "order_type": rng.choice(("咨询", "求助", "投诉", "举报", "建议", "表扬")),
                "category": cat_name,
                "category_id": cat_id,
                "status": Status.DISPATCHED if is_open else Status.CLOSED,
                "summary": "历史工单",
                "created_at": created,
                "short_code": code,
                "open_code": code if is_open else None,
                "urgency": "normal",
                "caller_phone": "",
                "caller_name": "",
                "community_id": rng.choice(communities),
                "address": "",
                "outlet_id": rng.choice(outlets),
                "created_by": "bench",
                "extension_reason": "",
                "resolution": "",
                "return_reason": "",
                "satisfaction": "",
                "reviewed": False,
                "reopen_count": 0,
                "updated_at": created,
                "deadline_at": created + timedelta(days=3),
            }
        )
        if len(batch) == 20000:
            with engine.begin() as conn:
                conn.execute(table.insert(), batch)
            batch = []
    if batch:
        with engine.begin() as conn:
            conn.execute(table.insert(), batch)


def _bulk_rules(settings: Settings, n: int) -> None:
    """A category tree of ~500 nodes and n rules over categories × communities / areas."""
    from sqlmodel import select

    from callcenter.directory.models import Community, Outlet, ServiceArea
    from dispatch.models import Category, RoutingRule

    rng = random.Random(5)
    with session_scope(settings) as s:
        roots = list(s.exec(select(Category).where(Category.parent_id == None)))  # noqa: E711
        ids = []
        for r in roots:
            for k in range(12):
                mid = Category(code=f"B-{r.code}-{k}", name=f"{r.name}{k}", parent_id=r.id)
                s.add(mid)
                s.flush()
                ids.append(mid.id)
                for j in range(5):
                    leaf = Category(code=f"B-{r.code}-{k}-{j}", name=f"{r.name}{k}-{j}", parent_id=mid.id)
                    s.add(leaf)
                    s.flush()
                    ids.append(leaf.id)
        communities = list(s.exec(select(Community.id)))
        areas = list(s.exec(select(ServiceArea.id)))
        outlets = list(s.exec(select(Outlet.id)))
        rows = []
        seen = set()
        while len(rows) < n:
            cat = rng.choice(ids)
            if rng.random() < 0.8:
                key = (cat, rng.choice(communities), None)
            else:
                key = (cat, None, rng.choice(areas))
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {
                    "category_id": key[0],
                    "community_id": key[1],
                    "area_id": key[2],
                    "outlet_id": rng.choice(outlets),
                    "priority": rng.randint(1, 200),
                    "active": True,
                }
            )
        s.connection().execute(RoutingRule.__table__.insert(), rows)
        s.commit()


def prepare() -> Settings:
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
        t0 = time.time()
        _bulk_orders(settings, ORDERS)
        _bulk_rules(settings, RULES)
        with get_engine(settings).begin() as conn:
            from sqlalchemy import text

            conn.execute(text("ANALYZE"))
        print(f"# generated {ORDERS} orders and {RULES} rules in {time.time() - t0:.0f} s", file=sys.stderr)
        done.write_text("ok")
    return settings


def fake_twilio_process() -> None:
    """The Twilio stand-in in a process of its own (the provider is remote: it must not share the
    app's interpreter). Prints its settings, then one line per message received, when received."""
    from sms.testing import FakeTwilio

    out_lock = threading.Lock()

    class Announcing(list):
        def append(self, m) -> None:  # called by the stand-in as each request arrives
            super().append(m)
            with out_lock:
                sys.stdout.write(json.dumps({"t": m.created.timestamp(), "body": m.body}) + "\n")
                sys.stdout.flush()

    twilio = FakeTwilio()
    twilio.messages = Announcing()
    twilio.deliver_callbacks = False
    twilio.start()
    sys.stdout.write(json.dumps(twilio.settings_env()) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes the pipe


class Provider:
    """The parent's view of the stand-in: when each order's SMS reached it."""

    def __init__(self) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, __file__, "fake-twilio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        self.env = json.loads(self.proc.stdout.readline())
        self.received: dict[str, float] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            m = json.loads(line)
            found = re.search(r"GD\d{8}-\d{5}", m["body"])
            if found:
                self.received[found.group(0)] = m["t"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(10)


async def dispatch_bench(settings: Settings) -> dict:
    from sqlmodel import func, select

    from dispatch import service, transitions
    from dispatch.models import Category, RoutingRule, WorkOrder
    from hotline.messaging import MessagingWorkers

    provider = Provider()
    for key, value in provider.env.items():
        setattr(settings, key.removeprefix("CALLCENTER_").lower(), value)
    with session_scope(settings) as s:
        # Messages of an earlier run are not sent again.
        s.connection().exec_driver_sql("UPDATE sms_message SET status='sent' WHERE status != 'sent'")
        s.commit()
        n_orders = s.exec(select(func.count(WorkOrder.id))).one()
        n_rules = s.exec(select(func.count(RoutingRule.id))).one()
        leaves = [c.id for c in s.exec(select(Category).where(Category.code.like("B-%-%-%")))]
    workers = MessagingWorkers(settings, sms=True, webhooks=False, mail=False)
    await workers.start()
    seat = service.Actor("seat1001", "seat")
    started: dict[str, float] = {}
    rng = random.Random(3)

    def one(i: int) -> None:
        t0 = time.time()
        with session_scope(settings) as s:
            order = service.create_order(
                s,
                seat,
                order_type="求助",
                summary=f"压测工单 {i}",
                category_id=rng.choice(leaves),
                community_id=rng.randint(1, 50),
                resident_id=rng.randint(1, RESIDENTS),
                address=f"测试路{i}号",
            )
            transitions.transition(s, order, "派单", seat, outlet_id=order.suggested_outlet_id or 1)
            s.commit()
            started[order.number] = t0

    async def arrived(numbers: list[str]) -> list[float]:
        deadline = time.time() + 180
        while any(n not in provider.received for n in numbers) and time.time() < deadline:
            await asyncio.sleep(0.005)
        missing = [n for n in numbers if n not in provider.received]
        assert not missing, f"{len(missing)} SMS never reached the provider"
        return [provider.received[n] - started[n] for n in numbers]

    async def saturated(n: int, offset: int) -> float:
        """CONCURRENCY seats creating orders back to back: orders dispatched per second."""
        started.clear()
        t0 = time.time()

        def seat_worker(ids: list[int]) -> None:
            for i in ids:
                one(i)

        chunks = [list(range(offset + k, offset + n, CONCURRENCY)) for k in range(CONCURRENCY)]
        await asyncio.gather(*(asyncio.to_thread(seat_worker, c) for c in chunks))
        created = time.time() - t0
        numbers = list(started)
        await arrived(numbers)
        print(
            f"# {n} orders: created in {created:.2f} s, all SMS sent after "
            f"{max(provider.received[x] for x in numbers) - t0:.2f} s",
            file=sys.stderr,
        )
        return n / (max(provider.received[x] for x in numbers) - t0)

    async def paced(n: int, offset: int, rate: float) -> list[float]:
        """Orders arriving at ``rate`` per second (a busy hotline): each one's path latency."""
        started.clear()
        t0 = time.monotonic()
        for k in range(n):
            await asyncio.sleep(max(0.0, t0 + k / rate - time.monotonic()))
            await asyncio.to_thread(one, offset + k)
        return await arrived(list(started))

    await saturated(100, 0)  # warm-up
    per_s = await saturated(DISPATCHES, 100)
    lat = await paced(LATENCY_ORDERS, 100 + DISPATCHES, PACED_RATE)
    await workers.stop()
    provider.close()
    return {
        "dispatch_per_s": round(per_s, 1),
        "dispatch_p50_ms": round(percentile(lat, 50) * 1000, 2),
        "dispatch_p99_ms": round(percentile(lat, 99) * 1000, 2),
        "dispatch_paced_rate_per_s": PACED_RATE,
        "dispatches": DISPATCHES,
        "orders": n_orders,
        "rules": n_rules,
    }


def routing_bench(settings: Settings) -> dict:
    from sqlmodel import select

    from callcenter.directory.models import Community
    from dispatch.models import Category
    from dispatch.routing import RuleTable

    with session_scope(settings) as s:
        table = RuleTable.load(s)
        cats = list(s.exec(select(Category.id)))
        communities = list(s.exec(select(Community.id)))
    rng = random.Random(9)
    probes = [(rng.choice(cats), rng.choice(communities)) for _ in range(LOOKUPS)]
    lat = []
    hits = 0
    clock = time.perf_counter_ns
    for cat, com in probes:
        t0 = clock()
        found = table.evaluate(cat, com)
        lat.append(clock() - t0)
        hits += found is not None
    return {
        "routing_p50_us": round(percentile(lat, 50) / 1000, 2),
        "routing_p99_us": round(percentile(lat, 99) / 1000, 2),
        "routing_lookups": LOOKUPS,
        "routing_hit_rate": round(hits / LOOKUPS, 3),
        "routing_rules_loaded": len(table.rules),
    }


def main() -> None:
    settings = prepare()
    result = asyncio.run(dispatch_bench(settings))
    result.update(routing_bench(settings))
    print(json.dumps({"bench": "dispatch", "residents": RESIDENTS, **result}))


if __name__ == "__main__":
    if sys.argv[1:] == ["fake-twilio"]:
        fake_twilio_process()
    else:
        main()
