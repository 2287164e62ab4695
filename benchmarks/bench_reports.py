"""Statistics at a district's scale: a year of calls and orders, reports, exports, ingestion.

Generates (once, cached in benchmarks/.cache/reports-<calls>-<orders>-<code hash>/) a year's queue_log for
BENCH_CALLS calls (default 1,000,000: about 3.9 million lines with the DID line the dialplan
writes, ring-no-answers, seats' logins and pauses) and BENCH_ORDERS work orders (300,000), and
ingests the log through the real follower. Then measures:

- queue_log_lines_per_s: the follower (parse, reconcile, write, cursor) on a fresh database;
- report_p99_ms_sqlite / report_p99_ms_postgres: a set of typical reports (today, a week by
  day, a month by seat / number, a quarter by week, the year by month / queue / seat, order
  statistics, the scorecard), each run BENCH_REPEAT times; report_max_ms_* is the slowest;
- excel_month_s: a month's report and its ~83,000 calls to an Excel file;
- follow_rss_growth_mb: RSS growth while following a live log written at 20,000 lines/s.

PostgreSQL is the throwaway local server of tests/conftest.py (Debian's postgresql); without it
the PostgreSQL figure is null (with CI=true the run fails instead). The order columns of
callcenter/statistics/orders.py that the dispatch schema does not have yet are added to the
benchmark's own copy of the table.
Prints one JSON line.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import shutil
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import dataset_dir, missing_part  # noqa: E402
from callcenter.config import CHINA_TZ, Settings, set_settings  # noqa: E402
from callcenter.database import get_engine, migrate  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "1000000"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "300000"))
INGEST_LINES = int(os.environ.get("BENCH_INGEST_LINES", "600000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
FOLLOW_S = float(os.environ.get("BENCH_FOLLOW_S", "20"))
GENERATORS = ("follower", "queue_log", "orders", "models")
CACHE = dataset_dir("reports", CALLS, ORDERS, code=tuple(f"callcenter/statistics/{m}.py" for m in GENERATORS))
SEATS = 40
YEAR_START = datetime(2025, 1, 1, tzinfo=CHINA_TZ)
END_DAY = date(2025, 12, 31)


def note(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def seat_name(i: int) -> str:
    return f"座席{i:02d}"


def generate_log(path: Path, calls: int, seed: int = 7) -> int:
    """A year of queue_log in time order: calls busier by day, seats' shifts and lunch pauses."""
    rnd = random.Random(seed)
    start = YEAR_START.timestamp()
    span = 365 * 86400
    pending: list[tuple[float, int, str]] = []
    seq = 0
    n = 0
    # Calls cluster in the working day: draw a time of day from a day-shaped distribution.
    weights = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 10, 12, 14, 14, 12, 10, 8, 6, 4, 3, 2, 1]
    hours = [h for h, w in enumerate(weights) for _ in range(w)]
    per_day = calls / 365
    with open(path, "w", encoding="utf-8") as out:

        def push(ts: float, line: str) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(pending, (ts, seq, line))

        def flush(upto: float) -> None:
            nonlocal n
            while pending and pending[0][0] <= upto:
                ts, _, line = heapq.heappop(pending)
                out.write(f"{int(ts)}|{line}\n")
                n += 1

        push(start, "NONE|NONE|NONE|QUEUESTART|")
        made = 0
        for day in range(365):
            day0 = start + day * 86400
            for s in range(SEATS):
                name = seat_name(s)
                push(day0 + 8 * 3600 + s, f"NONE|hotline|PJSIP/seat{2000 + s}|ADDMEMBER|")
                push(day0 + 12 * 3600 + s * 30, f"NONE|hotline|{name}|PAUSE|用餐")
                push(day0 + 13 * 3600 + s * 30, f"NONE|hotline|{name}|UNPAUSE|")
                push(day0 + 18 * 3600 + s, f"NONE|hotline|PJSIP/seat{2000 + s}|REMOVEMEMBER|")
            todays = int(per_day * (day + 1)) - made
            times = sorted(day0 + rnd.choice(hours) * 3600 + rnd.random() * 3600 for _ in range(todays))
            for t in times:
                i = made
                made += 1
                cid = f"{int(t)}.{i}"
                queue = "hotline" if i % 5 else "elderly"
                did = "96345" if i % 7 else "12345"
                caller = f"139{rnd.randrange(10**8):08d}"
                push(t - 1, f"{cid}|{queue}|NONE|DID|{did}")
                push(t, f"{cid}|{queue}|NONE|ENTERQUEUE||{caller}|1")
                r = rnd.random()
                wait = int(rnd.expovariate(1 / 12)) + 1
                if r < 0.04:  # a seat's phone rang out first
                    push(t + 15, f"{cid}|{queue}|{seat_name(rnd.randrange(SEATS))}|RINGNOANSWER|15000")
                    wait += 15
                if r < 0.85:
                    agent = seat_name(rnd.randrange(SEATS))
                    talk = int(rnd.expovariate(1 / 150)) + 10
                    push(t + wait, f"{cid}|{queue}|{agent}|CONNECT|{wait}|{cid}9|3")
                    end = "COMPLETECALLER" if rnd.random() < 0.6 else "COMPLETEAGENT"
                    if rnd.random() < 0.03:
                        push(
                            t + wait + talk,
                            f"{cid}|{queue}|{agent}|BLINDTRANSFER|1002|cc-seats|{wait}|{talk}|1",
                        )
                    else:
                        push(t + wait + talk, f"{cid}|{queue}|{agent}|{end}|{wait}|{talk}|1")
                elif r < 0.97:
                    push(t + wait, f"{cid}|{queue}|NONE|ABANDON|1|1|{wait}")
                else:
                    push(t + 300, f"{cid}|{queue}|NONE|EXITWITHTIMEOUT|1|1|300")
                flush(t - 1)
        flush(start + span + 86400 * 2)
    return n


def seed_db(settings: Settings) -> None:
    """Queues, seats (so member names map to extensions) and the orders."""
    from callcenter.accounts.models import Account
    from callcenter.directory.models import CallQueue
    from dispatch.models import WorkOrder

    eng = get_engine(settings)
    from sqlmodel import Session

    with Session(eng) as s:
        s.add(CallQueue(name="hotline", title="热线", wrapup=5))
        s.add(CallQueue(name="elderly", title="老人", wrapup=10))
        for i in range(SEATS):
            s.add(
                Account(
                    username=f"seat{2000 + i}",
                    display_name=seat_name(i),
                    password_hash="x",
                    role="seat",
                    extension=str(2000 + i),
                )
            )
        s.commit()
    # The places the orders point at (foreign keys): 59 communities and 120 outlets.
    with eng.begin() as c:
        c.exec_driver_sql("INSERT INTO jurisdiction (id, name, code) VALUES (1, '压测街道', '620105999')")
        c.exec_driver_sql(
            "INSERT INTO community (id, jurisdiction_id, name, urban, demo) VALUES (?, 1, ?, 1, 1)",
            [(i, f"压测社区{i:02d}") for i in range(1, 60)],
        )
        c.exec_driver_sql(
            "INSERT INTO outlet (id, name, kind, categories, phone, email) "
            "VALUES (?, ?, 'outlet', '', '', '')",
            [(i, f"压测服务站{i:03d}") for i in range(1, 121)],
        )
    rnd = random.Random(3)
    types = ["咨询", "求助", "投诉", "举报", "建议", "表扬"]
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    rows = []
    t0 = YEAR_START.timestamp()
    for i in range(ORDERS):
        created = datetime.fromtimestamp(t0 + rnd.random() * 365 * 86400, UTC)
        acc_due = created + timedelta(hours=2)
        accepted = created + timedelta(minutes=rnd.expovariate(1 / 60)) if rnd.random() < 0.97 else None
        due = created + timedelta(days=5)
        resolved = created + timedelta(hours=rnd.expovariate(1 / 80)) if rnd.random() < 0.9 else None
        rows.append(
            (
                f"WO{i:08d}",
                "",
                types[i % 6],
                f"类别{i % 23}",
                "办结",
                "",
                created.strftime(fmt),
                rnd.randrange(59) + 1,
                rnd.randrange(120) + 1,
                str(2000 + rnd.randrange(SEATS)),
                acc_due.strftime(fmt),
                accepted.strftime(fmt) if accepted else None,
                due.strftime(fmt),
                resolved.strftime(fmt) if resolved else None,
                int(rnd.random() < 0.05),
                int(rnd.random() < 0.03),
                rnd.choice(["满意", "满意", "满意", "基本满意", "不满意", ""]),
            )
        )
    with eng.begin() as c:
        c.exec_driver_sql(
            # The real columns the order statistics read (callcenter/statistics/orders.py COLUMNS).
            "INSERT INTO workorder (number, call_linkedid, order_type, category, status, summary, "
            "created_at, community_id, outlet_id, created_by, accept_due_at, accepted_at, deadline_at, "
            "resolved_at, return_count, reopen_count, satisfaction) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    del WorkOrder


def ingest(settings: Settings, path: Path, limit_bytes: int | None = None) -> tuple[int, float]:
    from callcenter.statistics.follower import StatsFollower

    f = StatsFollower(settings, path=path)
    t0 = time.perf_counter()
    f.step(1)  # opens the cursor; reads nothing useful yet
    while True:
        days = f.step()
        if not days:
            break
    dt = time.perf_counter() - t0
    return f.ingest.lines, dt


def prepare() -> tuple[Settings, Path]:
    settings = set_settings(Settings(data_dir=CACHE, _env_file=None))
    log = CACHE / "queue_log"
    if not (CACHE / "ready").exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.mkdir(parents=True)
        migrate(settings)
        t0 = time.time()
        n = generate_log(log, CALLS)
        note(f"generated {n} queue_log lines in {time.time() - t0:.0f} s")
        t0 = time.time()
        seed_db(settings)
        note(f"generated {ORDERS} orders in {time.time() - t0:.0f} s")
        lines, dt = ingest(settings, log)
        note(f"ingested {lines} lines in {dt:.0f} s ({lines / dt:.0f} lines/s)")
        from callcenter.statistics import orders

        t0 = time.time()
        with get_engine(settings).begin() as c:
            n = orders.refresh_rollup(c)
        note(f"order roll-up: {n} rows in {time.time() - t0:.1f} s (the engine recounts 60 days every 5 min)")
        with get_engine(settings).begin() as c:
            c.exec_driver_sql("ANALYZE")
        (CACHE / "ready").write_text("ok")
    return settings, log


def typical_reports():
    """(name, function(settings, conn)) — what managers open every day."""
    from callcenter.statistics import orders, service

    end = END_DAY
    d = end.isoformat()
    wk = (end - timedelta(days=6)).isoformat()
    mo = (end - timedelta(days=29)).isoformat()
    qt = (end - timedelta(days=90)).isoformat()
    yr = date(2025, 1, 1).isoformat()
    rnd = random.Random(5)
    a = date(2025, 1, 1) + timedelta(days=rnd.randrange(200))
    b = a + timedelta(days=rnd.randrange(30, 150))

    def rep(s, e, by, q=""):
        return lambda settings, conn: service.report(settings, s, e, by, q, conn=conn)

    return [
        ("today_by_queue", rep(d, d, "queue")),
        ("today_by_hour", rep(d, d, "hour")),
        ("week_by_day", rep(wk, d, "day")),
        ("month_by_seat", rep(mo, d, "seat")),
        ("month_by_did", rep(mo, d, "did")),
        ("quarter_by_week", rep(qt, d, "week")),
        ("year_by_month", rep(yr, d, "month")),
        ("year_by_queue", rep(yr, d, "queue")),
        ("year_by_hour", rep(yr, d, "hour")),
        ("year_by_seat", rep(yr, d, "seat")),
        ("range_by_day_hotline", rep(a.isoformat(), b.isoformat(), "day", "hotline")),
        ("orders_year_by_type", lambda settings, conn: orders.order_report(conn, yr, d, "type")),
        ("orders_month_by_community", lambda settings, conn: orders.order_report(conn, mo, d, "community")),
        ("orders_year_by_outlet", lambda settings, conn: orders.order_report(conn, yr, d, "outlet")),
        ("scorecard_month", lambda settings, conn: service.scorecard(settings, mo, d)),
    ]


def run_reports(settings: Settings) -> tuple[list[float], dict[str, float]]:
    lat: list[float] = []
    worst: dict[str, float] = {}
    eng = get_engine(settings)
    for name, fn in typical_reports():
        for _ in range(REPEAT):
            with eng.connect() as conn:
                t0 = time.perf_counter()
                fn(settings, conn)
                ms = (time.perf_counter() - t0) * 1000
            lat.append(ms)
            worst[name] = max(worst.get(name, 0.0), ms)
    return lat, worst


def p99(values: list[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]


def copy_to_postgres(src: Settings, url: str) -> Settings:
    """The roll-ups, seats, queues and orders into a fresh PostgreSQL database."""
    pg = Settings(data_dir=CACHE / "pg", database_url=url, _env_file=None)
    migrate(pg)
    seng, peng = get_engine(src), get_engine(pg)
    import io

    tables = (
        "callqueue",
        "account",
        "jurisdiction",
        "community",
        "outlet",
        "stat_agg_hour",
        "stat_agg_seat",
        "stat_seat_time",
        "workorder",
        "stat_order_day",
        "stat_cursor",
    )
    for table in tables:
        where = " WHERE name = 'order-rollup'" if table == "stat_cursor" else ""  # only the marker
        with seng.connect() as s:
            res = s.exec_driver_sql(f"SELECT * FROM {table}{where}")
            cols = list(res.keys())
            buf = io.StringIO()
            for row in res:
                buf.write("\t".join("\\N" if v is None else str(v).replace("\t", " ") for v in row) + "\n")
        buf.seek(0)
        raw = peng.raw_connection()
        try:
            with raw.cursor() as cur:
                quoted = ", ".join(f'"{c}"' for c in cols)
                cur.copy_expert(f"COPY {table} ({quoted}) FROM STDIN", buf)
            raw.commit()
        finally:
            raw.close()
    with peng.begin() as c:
        c.exec_driver_sql("ANALYZE")
    return pg


def postgres_figures(src: Settings) -> tuple[float | None, float | None]:
    from tests.conftest import postgres_url

    gen = postgres_url._get_wrapped_function()()
    try:
        url = next(gen)
    except BaseException as exc:  # pytest's skip outside pytest: no PostgreSQL server here
        missing_part(f"PostgreSQL ({exc})")
        return None, None
    try:
        t0 = time.time()
        pg = copy_to_postgres(src, url)
        note(f"copied roll-ups and orders to PostgreSQL in {time.time() - t0:.0f} s")
        lat, worst = run_reports(pg)
        note(
            "postgres slowest: "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(worst.items(), key=lambda x: -x[1])[:4])
        )
        get_engine(pg).dispose()
        return round(p99(lat), 1), round(max(lat), 1)
    finally:
        next(gen, None)


def ingestion_rate(src_log: Path) -> float:
    """The follower on a fresh database, on the first INGEST_LINES lines of the year."""
    work = CACHE / "ingest"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    part = work / "queue_log"
    with open(src_log, encoding="utf-8") as src, open(part, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= INGEST_LINES:
                break
            dst.write(line)
    s = Settings(data_dir=work / "var", _env_file=None)
    migrate(s)
    seed_small(s)
    lines, dt = ingest(s, part)
    get_engine(s).dispose()
    shutil.rmtree(work, ignore_errors=True)
    return lines / dt


def seed_small(settings: Settings) -> None:
    from sqlmodel import Session

    from callcenter.accounts.models import Account
    from callcenter.directory.models import CallQueue

    with Session(get_engine(settings)) as s:
        s.add(CallQueue(name="hotline", title="热线", wrapup=5))
        s.add(CallQueue(name="elderly", title="老人", wrapup=10))
        for i in range(SEATS):
            s.add(
                Account(
                    username=f"seat{2000 + i}",
                    display_name=seat_name(i),
                    password_hash="x",
                    role="seat",
                    extension=str(2000 + i),
                )
            )
        s.commit()


def follow_growth(src_log: Path) -> float:
    """RSS growth while the follower follows a log written live (after a warm-up)."""
    from callcenter.statistics.follower import StatsFollower

    work = CACHE / "follow"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    s = Settings(data_dir=work / "var", _env_file=None)
    migrate(s)
    seed_small(s)
    live = work / "queue_log"
    live.write_text("")
    stop = threading.Event()
    rate = 20000

    def writer() -> None:
        with open(src_log, encoding="utf-8") as src, open(live, "a", encoding="utf-8") as out:
            while not stop.is_set():
                t0 = time.perf_counter()
                for _ in range(rate // 10):
                    line = src.readline()
                    if not line:
                        return
                    out.write(line)
                out.flush()
                time.sleep(max(0.0, 0.1 - (time.perf_counter() - t0)))

    f = StatsFollower(s, path=live)
    th = threading.Thread(target=writer, daemon=True)
    th.start()
    t_end = time.time() + FOLLOW_S
    warm_at = time.time() + FOLLOW_S / 4
    warm = None
    peak = 0.0
    while time.time() < t_end:
        if not f.step():
            time.sleep(0.05)
        if warm is None and time.time() >= warm_at:
            warm = rss_mb()
        if warm is not None:
            peak = max(peak, rss_mb())
    stop.set()
    th.join()
    note(f"followed {f.ingest.lines} lines live; RSS after warm-up {warm:.1f} MB, peak {peak:.1f} MB")
    get_engine(s).dispose()
    shutil.rmtree(work, ignore_errors=True)
    return round(peak - (warm or peak), 1)


def main() -> None:
    settings, log = prepare()
    from callcenter.statistics import exports, service
    from web_console.i18n import translator

    lat, worst = run_reports(settings)
    note(
        "sqlite slowest: "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(worst.items(), key=lambda x: -x[1])[:4])
    )
    result: dict[str, object] = {"bench": "reports", "calls": CALLS, "orders": ORDERS}
    result["report_p99_ms_sqlite"] = round(p99(lat), 1)
    result["report_max_ms_sqlite"] = round(max(lat), 1)
    mo = ((END_DAY - timedelta(days=29)).isoformat(), END_DAY.isoformat())
    t0 = time.perf_counter()
    with get_engine(settings).connect() as conn:
        rep = service.report(settings, mo[0], mo[1], "day", conn=conn)
        data = exports.to_xlsx(rep, translator("zh"), conn)
    result["excel_month_s"] = round(time.perf_counter() - t0, 2)
    note(f"Excel month: {len(data) / 1e6:.1f} MB")
    pg_p99, pg_max = postgres_figures(settings)
    result["report_p99_ms_postgres"] = pg_p99
    result["report_max_ms_postgres"] = pg_max
    result["queue_log_lines_per_s"] = round(ingestion_rate(log))
    result["follow_rss_growth_mb"] = follow_growth(log)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
