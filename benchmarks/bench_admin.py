"""Administrators' configuration at scale: 10,000 routing rules over 2,000 categories, 59
communities.

1. routing_change_visible_ms: two web workers in processes of their own (uvicorn, as deployed,
   one database); an administrator saves a rule on worker A (JSON API) and a seat on worker B
   creates the next order for that category and community; the time from the save's request to
   B's order answering with the new rule's outlet (median of BENCH_ADMIN_TRIALS trials; the
   number of orders B made before one used the rule is reported too: 0 means the very next one).
2. coverage_report_ms: the coverage report (every community × every active leaf category) over
   the API of worker A.
3. config_roundtrip_ok: the whole configuration exported from A, imported into a fresh database
   with the same basic data, exported again: 1 when the two files are the same.

Prints one JSON line: {"bench": "admin", "routing_change_visible_ms", "routing_change_p99_ms",
"orders_before_visible", "coverage_report_ms", "coverage_pairs", "config_roundtrip_ok",
"config_bytes", "rules", "categories", "communities", "trials"}.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import re
import shutil
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.common import CACHE_ROOT, log, percentile  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import migrate, session_scope  # noqa: E402

RULES = int(os.environ.get("BENCH_RULES", "10000"))
CATEGORIES = int(os.environ.get("BENCH_CATEGORIES", "2000"))
COMMUNITIES = int(os.environ.get("BENCH_COMMUNITIES", "59"))
OUTLETS = int(os.environ.get("BENCH_ADMIN_OUTLETS", "200"))
TRIALS = int(os.environ.get("BENCH_ADMIN_TRIALS", "20"))
CACHE = CACHE_ROOT / "admin"
PASSWORD = "bench-Admin-pass-1!"
SECRET = "bench-admin-session-secret-" + "x" * 24


def _settings(path: Path) -> Settings:
    return Settings(data_dir=path, _env_file=None, session_secret=SECRET, production=False)


def _basic_data(settings: Settings) -> None:
    """Jurisdictions, communities, service areas, outlets and the two accounts (names fixed, so
    a second database gets the same basic data)."""
    from callcenter.accounts.models import Account
    from callcenter.accounts.service import hash_password
    from callcenter.directory.models import Community, Jurisdiction, Outlet, ServiceArea, ServiceAreaCommunity

    pw = hash_password(PASSWORD)
    with session_scope(settings) as s:
        juris = [Jurisdiction(name=f"街道{i}") for i in range(8)]
        s.add_all(juris)
        s.flush()
        communities = [
            Community(jurisdiction_id=juris[i % 8].id or 0, name=f"社区{i:02d}") for i in range(COMMUNITIES)
        ]
        areas = [ServiceArea(name=f"片区{i}") for i in range(10)]
        outlets = [Outlet(name=f"网点{i:03d}", phone=f"+86139{i:08d}") for i in range(OUTLETS)]
        s.add_all([*communities, *areas, *outlets])
        s.flush()
        for i, c in enumerate(communities):
            s.add(ServiceAreaCommunity(area_id=areas[i % 10].id or 0, community_id=c.id or 0))
        s.add(Account(username="admin", display_name="管理员", password_hash=pw, role="admin"))
        s.add(Account(username="seat", display_name="座席", password_hash=pw, role="seat", extension="1001"))
        s.commit()


def _configuration(settings: Settings) -> None:
    """CATEGORIES categories (roots of 19 children) and RULES rules, inserted in bulk."""
    from sqlmodel import select

    from callcenter.directory.models import Community, Outlet, ServiceArea
    from dispatch import routing
    from dispatch.models import Category, RoutingRule

    rng = random.Random(15)
    with session_scope(settings) as s:
        roots = [Category(code=f"R{i:04d}", name=f"大类{i}") for i in range(CATEGORIES // 20)]
        s.add_all(roots)
        s.flush()
        leaves = [
            Category(code=f"R{i:04d}-{j:02d}", name=f"小类{i}-{j}", parent_id=r.id)
            for i, r in enumerate(roots)
            for j in range(19)
        ]
        s.add_all(leaves)
        s.flush()
        cats = [c.id for c in [*roots, *leaves]]
        communities = list(s.exec(select(Community.id)))
        areas = list(s.exec(select(ServiceArea.id)))
        outlets = list(s.exec(select(Outlet.id)))
        for _ in range(RULES):
            place = rng.random()
            s.add(
                RoutingRule(
                    category_id=rng.choice(cats),
                    community_id=rng.choice(communities) if place < 0.6 else None,
                    area_id=rng.choice(areas) if 0.6 <= place < 0.95 else None,
                    outlet_id=rng.choice(outlets),
                    priority=rng.randint(1, 200),
                )
            )
        routing.invalidate(s)
        s.commit()


def _serve(data_dir: str, port: int) -> None:
    """One web worker (its own process, its own in-process bus: it learns of changes from the
    database's configuration stamp, as a worker on another machine would)."""
    import uvicorn

    from callcenter.bus import InProcessBus
    from web_console.app import create_app

    settings = set_settings(_settings(Path(data_dir)))
    uvicorn.run(create_app(settings, InProcessBus()), host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _login(base: str, username: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=base, trust_env=False, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text
    page = c.get("/password").text
    return c, re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def _wait_up(base: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", trust_env=False, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not start")


def main() -> None:
    shutil.rmtree(CACHE, ignore_errors=True)
    settings = set_settings(_settings(CACHE / "a"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings)
    t0 = time.perf_counter()
    _basic_data(settings)
    _configuration(settings)
    log(
        f"{CATEGORIES} categories, {RULES} rules, {COMMUNITIES} communities"
        f" in {time.perf_counter() - t0:.1f} s"
    )

    ctx = mp.get_context("spawn")
    ports = [_free_port(), _free_port()]
    workers = [ctx.Process(target=_serve, args=(str(settings.data_dir), p), daemon=True) for p in ports]
    for w in workers:
        w.start()
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for b in bases:
            _wait_up(b)
        admin, admin_csrf = _login(bases[0], "admin")
        seat, seat_csrf = _login(bases[1], "seat")
        leaves = [c for c in admin.get("/api/categories").json() if c["leaf"]]
        communities = [c["id"] for c in seat.get("/api/dispatch/options").json()["communities"]]
        outlets = [o["id"] for o in seat.get("/api/dispatch/options").json()["outlets"]]
        rng = random.Random(16)
        visible: list[float] = []
        late_orders = 0
        for _ in range(TRIALS):
            cat, com = rng.choice(leaves)["id"], rng.choice(communities)
            order = {"order_type": "求助", "category_id": cat, "community_id": com, "summary": "基准测试工单"}
            before = seat.post("/api/orders", json=order, headers={"X-CSRF-Token": seat_csrf}).json()
            was = (before.get("suggested_outlet") or {}).get("id")
            target = rng.choice([o for o in outlets if o != was])
            start = time.perf_counter()
            r = admin.post(
                "/api/routing/rules",
                json={"category_id": cat, "community_id": com, "outlet_id": target, "priority": 0},
                headers={"X-CSRF-Token": admin_csrf},
            )
            assert r.status_code == 201, r.text
            for n in range(1000):
                got = seat.post("/api/orders", json=order, headers={"X-CSRF-Token": seat_csrf}).json()
                if (got.get("suggested_outlet") or {}).get("id") == target:
                    late_orders += n
                    break
            else:
                raise AssertionError("the new rule never reached worker B")
            visible.append((time.perf_counter() - start) * 1000)

        t0 = time.perf_counter()
        report = admin.get("/api/routing/coverage").json()
        coverage_ms = (time.perf_counter() - t0) * 1000

        exported = admin.get("/api/config").json()
    finally:
        for w in workers:
            w.terminate()
            w.join(10)

    from dispatch import config_file
    from dispatch.categories import Editor

    fresh = _settings(CACHE / "b")
    fresh.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(fresh)
    _basic_data(fresh)
    first = config_file.dumps(exported)
    t0 = time.perf_counter()
    with session_scope(fresh) as s:
        config_file.apply(s, fresh, Editor("bench", "admin"), config_file.check(json.loads(first)))
        s.commit()
    with session_scope(fresh) as s:
        second = config_file.dumps(config_file.export(s))
    log(f"configuration imported into a fresh database in {time.perf_counter() - t0:.1f} s")

    print(
        json.dumps(
            {
                "bench": "admin",
                "routing_change_visible_ms": round(percentile(visible, 50), 1),
                "routing_change_p99_ms": round(percentile(visible, 99), 1),
                "orders_before_visible": late_orders,
                "coverage_report_ms": round(coverage_ms, 1),
                "coverage_pairs": report["pairs"],
                "config_roundtrip_ok": int(first == second),
                "config_bytes": len(first.encode()),
                "rules": RULES,
                "categories": CATEGORIES,
                "communities": COMMUNITIES,
                "trials": TRIALS,
            }
        )
    )


if __name__ == "__main__":
    main()
