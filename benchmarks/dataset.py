"""The residents every telephony benchmark shares, and the callers drawn from them.

The data set: the district's demo data (communities, grids, outlets, categories, queues, menus,
accounts, the knowledge base, 100 demo residents) and BENCH_RESIDENTS residents (1,000,000) made
in bulk, a fifth of them elderly (60 and over), with what a known caller's pop reads:

- household members: half of the residents who do not live alone, one or two each;
- an elderly profile (health notes, caregiver, emergency phone) for every elderly resident;
- earlier calls (call records): about a quarter of the residents, one to three each, over
  2024-2025 (before the demo's own history), each order below taken on one of them;
- earlier orders (work orders, all closed: nothing for the app's timers to chase): 15 % of the
  residents under 60 and 40 % of the elderly, one to three each;
- service archives: one per closed order of an elderly resident, and one to three home-care
  visits without an order for about half the elderly.

Bulk resident ``i`` calls from ``hotline.demo.bulk_phone(i)`` (+86199…); unknown callers from
+86170… numbers, which no resident has. Everything but the demo part (which dates its history
from today) follows fixed seeds. Rows go in by Core ``executemany`` in batches, one transaction
per batch, not through the ORM.

The SQLite database is made once into a template file under benchmarks/.cache, named by the
size and a hash of this file, the generators in hotline/ and dispatch/ and the migrations
(``common.dataset_dir``), and copied into each benchmark's data dir (``install``). A benchmark
on PostgreSQL gets the same rows: ``install`` migrates its database and COPYs every table of the
template into it (in foreign-key order), then moves the id sequences past the copied ids.

Environment: BENCH_RESIDENTS (1000000), BENCH_UNKNOWN_SHARE (0.1: the share of callers whose
number no resident has).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import dataset_dir, log  # noqa: E402

RESIDENTS = int(os.environ.get("BENCH_RESIDENTS", "1000000"))
UNKNOWN_SHARE = float(os.environ.get("BENCH_UNKNOWN_SHARE", "0.1"))
ELDERLY_SHARE = 0.2
DEMO_RESIDENTS = 100
SEED = 17
BATCH = 20000
DB_NAME = "callcenter.db"
# The generating code: a change to any of these makes a new template (this file is hashed too).
CODE = (
    "hotline/demo.py",
    "dispatch/demo.py",
    "callcenter/ivr/demo.py",
    "callcenter/knowledge/demo.py",
    "callcenter/statistics/demo.py",
    "callcenter/residents/models.py",
    "callcenter/calls/models.py",
    "dispatch/models.py",
)
# Earlier calls and orders fall in these two years (the demo's own history is in the last weeks).
HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 730
UNKNOWN_PREFIX = "170"  # national mobile numbers no resident has (residents: 13x/15x/18x, 199)

# A household member's relation, and the least and most of their age less the resident's
_RELATIONS = (
    ("配偶", -5, 5),
    ("儿子", -38, -22),
    ("女儿", -38, -22),
    ("儿媳", -38, -22),
    ("孙子", -65, -45),
    ("孙女", -65, -45),
    ("父亲", 22, 38),
    ("母亲", 22, 38),
)
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
_HEALTH = (
    "高血压,按时服药",
    "糖尿病,需定期测血糖",
    "行动不便,使用轮椅",
    "听力下降,来电请大声慢说",
    "慢性心脏病",
    "术后康复中",
    "轻度认知障碍",
    "身体健康",
)
_CARE = ("助餐服务", "助洁服务", "助浴服务", "健康巡诊", "上门理发", "代购代办", "陪同就医")
_SUMMARIES = (
    "楼道灯不亮,请求维修",
    "咨询高龄补贴办理",
    "家中水管漏水",
    "小区垃圾清运不及时",
    "申请居家养老助餐",
    "噪音扰民",
    "咨询医保报销",
    "暖气不热",
)
_OUTCOMES = ("已完成,居民满意", "已上门服务", "已处理完毕", "已回访,问题解决")
_SATISFACTION = ("满意", "满意", "满意", "基本满意", "不满意")
_TYPES = ("咨询", "求助", "投诉", "举报", "建议", "表扬")


def known_phone(i: int) -> str:
    """The national number (as a carrier sends it) of bulk resident ``i``."""
    from hotline.demo import bulk_phone

    return bulk_phone(i)[3:]


def is_known(number: str) -> bool:
    """A caller drawn by ``callers`` from the data set's residents (not an unknown number)."""
    return not number.startswith(UNKNOWN_PREFIX)


def callers(
    count: int, *, residents: int = RESIDENTS, unknown_share: float = UNKNOWN_SHARE, seed: int = 1
) -> list[str]:
    """``count`` national caller numbers: ``unknown_share`` of them (rounded) numbers no resident
    has, the rest residents of the data set, each number once while the residents last, in a
    seeded random order. Benchmarks that run several passes give each pass its own ``seed``."""
    rng = random.Random(seed)
    unknown = round(count * unknown_share)
    known = count - unknown
    if known <= residents:
        picks = rng.sample(range(residents), known)
    else:
        picks = [rng.randrange(residents) for _ in range(known)]
    first_unknown = rng.randrange(10**8 - unknown) if unknown else 0
    numbers = [known_phone(i) for i in picks]
    numbers += [f"{UNKNOWN_PREFIX}{first_unknown + j:08d}" for j in range(unknown)]
    rng.shuffle(numbers)
    return numbers


def template(residents: int = RESIDENTS) -> Path:
    """The SQLite template database with ``residents`` residents, made once and cached."""
    folder = dataset_dir("residents", residents, code=CODE)
    db = folder / DB_NAME
    ready = folder / "ready"
    if ready.exists() and db.exists():
        return db
    shutil.rmtree(folder, ignore_errors=True)  # a run that died half-way
    folder.mkdir(parents=True)
    from callcenter.config import Settings

    settings = Settings(data_dir=folder, _env_file=None)
    started = time.monotonic()
    counts = generate(settings, residents)
    # One file to copy: the WAL folded in, the engine closed.
    from callcenter.database import get_engine

    get_engine(settings).dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    seconds = time.monotonic() - started
    size_mb = db.stat().st_size / 1e6
    ready.write_text(f"{seconds:.1f} s\n{counts}\n")
    log(f"data set: generated {counts} in {seconds:.1f} s ({size_mb:.0f} MB) into {db}")
    return db


def install(settings, residents: int = RESIDENTS) -> None:
    """The data set in ``settings``' database, which must be fresh (empty or just migrated): on
    SQLite the cached template is copied over it, on PostgreSQL the template's rows are COPYed
    into it."""
    url = settings.resolved_database_url()
    started = time.monotonic()
    if url.startswith("sqlite"):
        from callcenter.database import get_engine

        get_engine(settings).dispose()
        target = settings.data_dir / DB_NAME
        for extra in (target.with_name(DB_NAME + "-wal"), target.with_name(DB_NAME + "-shm")):
            extra.unlink(missing_ok=True)
        shutil.copyfile(template(residents), target)
        log(f"data set: {residents} residents copied in {time.monotonic() - started:.1f} s")
    else:
        rows = _copy_to_postgres(template(residents), settings)
        log(f"data set: {rows} rows copied to PostgreSQL in {time.monotonic() - started:.1f} s")


def _copy_field(value) -> str:
    """One value in COPY's text format (SQLite keeps booleans as 0/1, which PostgreSQL reads)."""
    if value is None:
        return "\\N"
    text = str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_to_postgres(db: Path, settings) -> int:
    """Every row of the SQLite template ``db`` into ``settings``' PostgreSQL database, migrated
    here; tables in foreign-key order, rows in id order, by COPY. Returns the rows copied."""
    import io

    from sqlalchemy import Integer, MetaData, text

    from callcenter.database import get_engine, migrate

    migrate(settings)
    engine = get_engine(settings)
    meta = MetaData()
    meta.reflect(bind=engine)
    total = 0
    source = sqlite3.connect(db)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")  # the template's datetimes are naive UTC
            # Rows a migration seeded (the template has them too) go first.
            seeded = []
            for table in meta.sorted_tables:
                cur.execute(f'SELECT EXISTS (SELECT 1 FROM "{table.name}")')
                if table.name != "alembic_version" and cur.fetchone()[0]:
                    seeded.append(f'"{table.name}"')
            if seeded:
                cur.execute(f"TRUNCATE {', '.join(seeded)} CASCADE")
            for table in meta.sorted_tables:
                if table.name == "alembic_version":
                    continue
                exists = source.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
                ).fetchone()
                if not exists:
                    continue
                cols = [c[1] for c in source.execute(f'PRAGMA table_info("{table.name}")')]
                cols = [c for c in cols if c in table.c]
                order = " ORDER BY id" if "id" in cols else ""
                quoted = ", ".join(f'"{c}"' for c in cols)
                rows = source.execute(f'SELECT {quoted} FROM "{table.name}"{order}')
                while chunk := rows.fetchmany(BATCH * 5):
                    buf = io.StringIO("".join("\t".join(map(_copy_field, row)) + "\n" for row in chunk))
                    cur.copy_expert(f'COPY "{table.name}" ({quoted}) FROM STDIN', buf)
                    total += len(chunk)
                id_col = table.c.get("id")
                if id_col is not None and id_col.primary_key and isinstance(id_col.type, Integer):
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                        f'COALESCE((SELECT max(id) FROM "{table.name}"), 0) + 1, false) '
                        f"WHERE pg_get_serial_sequence('\"{table.name}\"', 'id') IS NOT NULL"
                    )
        raw.commit()
    finally:
        raw.close()
        source.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return total


def generate(settings, residents: int) -> dict[str, int]:
    """Migrate ``settings``' database and fill it: the demo data, then the bulk rows."""
    from callcenter.database import get_engine, migrate, session_scope
    from hotline.demo import bulk_residents, load_demo

    migrate(settings)
    with session_scope(settings) as s:
        load_demo(s, residents=DEMO_RESIDENTS, seat_contact_base_port=None, must_change_password=False)
    engine = get_engine(settings)
    t0 = time.monotonic()
    bulk_residents(engine, residents, seed=SEED, elderly_share=ELDERLY_SHARE)
    log(f"data set: {residents} residents in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    counts = _histories(engine)
    log(f"data set: their histories {counts} in {time.monotonic() - t0:.1f} s")
    return {"residents": residents, **counts}


def _resident_batches(engine) -> Iterator[list[tuple]]:
    """The bulk residents (phones +86199…), BATCH at a time, in id order."""
    from sqlalchemy import text

    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, name, phone, elderly, lives_alone, birth_year, community_id, grid_id, address"
                    " FROM resident WHERE id > :last AND phone LIKE '+86199%' ORDER BY id LIMIT :n"
                ),
                {"last": last, "n": BATCH},
            ).all()
        if not rows:
            return
        last = rows[-1][0]
        yield [tuple(r) for r in rows]


def _histories(engine) -> dict[str, int]:
    """Household members, elderly profiles, earlier calls, orders and service archives of the
    bulk residents, in one transaction per batch of residents."""
    from sqlalchemy import func, select

    from callcenter.calls.models import CallRecord
    from callcenter.database import table_of
    from callcenter.directory.models import Outlet
    from callcenter.residents.models import ElderlyProfile, HouseholdMember, ServiceArchive
    from dispatch.models import Category, Status, WorkOrder
    from hotline.demo import HOTLINE_DID, HOTLINE_QUEUE, SEAT_EXTENSIONS

    rng = random.Random(SEED + 1)
    rand = rng.random
    with engine.connect() as conn:
        categories = [(cid, name) for cid, name in conn.execute(select(Category.id, Category.name))]
        outlets = [(oid, name) for oid, name in conn.execute(select(Outlet.id, Outlet.name))]
        next_order = (conn.execute(select(func.max(WorkOrder.id))).scalar() or 0) + 1
    tables = {
        "household_members": table_of(HouseholdMember),
        "elderly_profiles": table_of(ElderlyProfile),
        "calls": table_of(CallRecord),
        "orders": table_of(WorkOrder),
        "service_archives": table_of(ServiceArchive),
    }
    counts = dict.fromkeys(tables, 0)
    per_day: dict[str, int] = {}
    call_seq = 0

    def pick(seq):
        return seq[int(rand() * len(seq))]

    def mobile() -> str:
        return f"+86138{int(rand() * 10**8):08d}"

    def moment() -> datetime:
        return HISTORY_START + timedelta(seconds=int(rand() * HISTORY_DAYS * 86400))

    for batch in _resident_batches(engine):
        rows: dict[str, list[dict]] = {name: [] for name in tables}
        for rid, name, phone, elderly, alone, birth_year, community_id, grid_id, address in batch:
            surname = name[0]
            if not alone and rand() < 0.5:
                for _ in range(1 + (rand() < 0.5)):
                    relation, lo, hi = pick(_RELATIONS)
                    if elderly and lo > 0:  # the parents of someone over 60: a son instead
                        relation, lo, hi = _RELATIONS[1]
                    age_gap = lo + int(rand() * (hi - lo + 1))
                    rows["household_members"].append(
                        {
                            "resident_id": rid,
                            "name": surname + pick(_GIVEN) + (pick(_GIVEN) if rand() < 0.7 else ""),
                            "relation": relation,
                            "phone": mobile() if rand() < 0.6 else "",
                            "birth_year": (birth_year or 1970) - age_gap,
                        }
                    )
            if elderly:
                rows["elderly_profiles"].append(
                    {
                        "resident_id": rid,
                        "health_notes": pick(_HEALTH),
                        "emergency_phone": mobile(),
                        "caregiver": surname + pick(_GIVEN) + pick(_GIVEN),
                        "caregiver_phone": mobile(),
                    }
                )
                for _ in range(int(rand() * 4) if rand() < 0.5 else 0):  # home care without an order
                    outlet_id, outlet_name = pick(outlets)
                    rows["service_archives"].append(
                        {
                            "resident_id": rid,
                            "order_id": None,
                            "service": pick(_CARE),
                            "outlet_id": outlet_id,
                            "outlet_name": outlet_name,
                            "delivered_at": moment(),
                            "outcome": pick(_OUTCOMES),
                        }
                    )
            orders = 1 + int(rand() * 3) if rand() < (0.4 if elderly else 0.15) else 0
            calls = orders + (1 + int(rand() * 2) if rand() < 0.12 else 0)
            for k in range(calls):
                started = moment()
                call_seq += 1
                linkedid = f"{int(started.timestamp())}.{call_seq}"
                answered = k < orders or rand() < 0.85
                wait = round(3 + rand() * 40, 3)
                talk = round(60 + rand() * 240, 3) if answered else None
                rows["calls"].append(
                    {
                        "linkedid": linkedid,
                        "caller": phone,
                        "caller_raw": phone[3:],
                        "caller_name": "",
                        "did": HOTLINE_DID,
                        "source": "carrier",
                        "order_12345": "",
                        "summary_12345": "",
                        "resident_id": rid,
                        "queue": HOTLINE_QUEUE,
                        "seat": pick(SEAT_EXTENSIONS) if answered else "",
                        "started_at": started,
                        "ended_at": started + timedelta(seconds=wait + (talk or 0)),
                        "wait_s": wait,
                        "ring_s": round(1 + rand() * 5, 3) if answered else None,
                        "first_ring_s": round(rand() * 3, 3),
                        "talk_s": talk,
                        "outcome": "answered" if answered else "abandoned",
                        "ivr_choice": "",
                        "ivr_category": "",
                        "recording": "",
                    }
                )
                if k >= orders:
                    continue
                order_id = next_order
                next_order += 1
                created = started + timedelta(seconds=wait + 30)
                day = f"{created:%Y%m%d}"
                per_day[day] = seq = per_day.get(day, 0) + 1
                category_id, category = pick(categories)
                outlet_id, outlet_name = pick(outlets)
                resolved = created + timedelta(hours=4 + int(rand() * 100))
                rows["orders"].append(
                    {
                        "id": order_id,
                        "number": f"GD{day}-{seq:05d}",
                        "resident_id": rid,
                        "call_linkedid": linkedid,
                        "order_type": pick(_TYPES),
                        "category": category,
                        "category_id": category_id,
                        "status": Status.CLOSED.value,
                        "summary": pick(_SUMMARIES),
                        "created_at": created,
                        "short_code": "",
                        "open_code": None,
                        "urgency": "normal",
                        "caller_phone": phone,
                        "caller_name": name,
                        "community_id": community_id,
                        "grid_id": grid_id,
                        "address": address,
                        "outlet_id": outlet_id,
                        "suggested_outlet_id": outlet_id,
                        "created_by": "seat" + pick(SEAT_EXTENSIONS),
                        "dispatched_at": created + timedelta(minutes=5),
                        "accepted_at": created + timedelta(minutes=40),
                        "resolved_at": resolved,
                        "closed_at": resolved + timedelta(days=2),
                        "deadline_at": created + timedelta(days=5),
                        "extension_reason": "",
                        "resolution": pick(_OUTCOMES),
                        "return_reason": "",
                        "satisfaction": pick(_SATISFACTION),
                        "reviewed": False,
                        "public": False,
                        "reopen_count": 0,
                        "return_count": 0,
                        "updated_at": resolved + timedelta(days=2),
                        "query_code": f"{int(rand() * 10**6):06d}",
                        "resident_comment": "",
                    }
                )
                if elderly:
                    rows["service_archives"].append(
                        {
                            "resident_id": rid,
                            "order_id": order_id,
                            "service": f"{category}({rows['orders'][-1]['order_type']})",
                            "outlet_id": outlet_id,
                            "outlet_name": outlet_name,
                            "delivered_at": resolved,
                            "outcome": rows["orders"][-1]["resolution"],
                        }
                    )
        with engine.begin() as conn:
            for name, table in tables.items():  # orders before the archives that name them
                if rows[name]:
                    conn.execute(table.insert(), rows[name])
                    counts[name] += len(rows[name])
    return counts


def main() -> None:
    """Make (or find) the template: ``python benchmarks/dataset.py``."""
    started = time.monotonic()
    db = template(RESIDENTS)
    log(f"template {db} ready in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
