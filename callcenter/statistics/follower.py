"""Following Asterisk's live queue_log into the statistics tables, resuming where it stopped.

``QueueLogTail`` reads complete lines from a saved position (file identity: device, inode and a
hash of the first line; byte offset). It notices rotation (the name now points at another inode:
the old file is read to its end first, then the new one from the start), truncation (the file
is shorter than the offset: read again from the start) and, on resume, a rotated file found by
its inode next to the live one. Reading goes in bounded chunks, so memory stays flat.

``StatsIngest`` feeds the lines to the ``Reconciler`` and writes, in ONE transaction, the finished
calls, the roll-up counters, seat time, and the cursor (position + the reconciler's open calls):
after a crash or restart the app resumes exactly there — nothing counted twice, nothing lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col

from callcenter import ids
from callcenter.accounts.models import Account
from callcenter.calls.models import UNSETTLED, CallRecord
from callcenter.config import Settings
from callcenter.database import get_engine, table_of
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ids import DIAGNOSTICS_QUEUE
from callcenter.phone import normalize
from callcenter.statistics import definitions as defs
from callcenter.statistics import models
from callcenter.statistics.models import StatAggHour, StatAggSeat, StatCall, StatCursor, StatSeatTime
from callcenter.statistics.queue_log import parse_line
from callcenter.statistics.reconcile import Reconciler
from callcenter.text import clean_name

log = logging.getLogger(__name__)

WHO_REFRESH_S = 60.0
ALIVE_EVERY_S = 20.0  # an idle follower still saves its cursor this often (a sign of life)
CHUNK = 4 << 20  # bytes read per batch: bounded, so memory stays flat


def queue_log_path(settings: Settings) -> Path:
    return settings.asterisk_instance_dir() / "log" / "queue_log"


@dataclass
class Position:
    device: int = 0
    inode: int = 0
    head: str = ""
    offset: int = 0


def _head_of(path: Path | str) -> str:
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        line = fh.readline()
        if line.endswith(b"\n"):
            return hashlib.sha1(line).hexdigest()
    return ""


class QueueLogTail:
    def __init__(self, path: Path, pos: Position | None = None) -> None:
        self.path = Path(path)
        self.pos = pos or Position()
        self._fh: BinaryIO | None = None
        self._draining = False  # reading a rotated file to its end before the live one

    @property
    def is_open(self) -> bool:
        """False until the file exists and has been opened."""
        return self._fh is not None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _open(self, path: Path, offset: int) -> None:
        self.close()
        self._fh = open(path, "rb")  # noqa: SIM115 - kept open while following
        st = os.fstat(self._fh.fileno())
        self._fh.seek(offset)
        self.pos = Position(st.st_dev, st.st_ino, _head_of(path), offset)

    def _rotated_sibling(self, inode: int) -> Path | None:
        with contextlib.suppress(OSError):
            for p in self.path.parent.iterdir():
                if p.name.startswith(self.path.name + ".") and p.stat().st_ino == inode:
                    return p
        return None

    def _start(self) -> bool:
        """Open the file where the saved position says; False while there is no file yet."""
        want = self.pos
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False
        same = (st.st_dev, st.st_ino) == (want.device, want.inode)
        if want.inode and same and (not want.head or _head_of(self.path) == want.head):
            self._open(self.path, want.offset if st.st_size >= want.offset else 0)
            return True
        if want.inode and not same:
            old = self._rotated_sibling(want.inode)
            if old is not None and (not want.head or _head_of(old) == want.head):
                self._open(old, want.offset)
                self._draining = True
                return True
        self._open(self.path, 0)
        return True

    def read(self, max_bytes: int = CHUNK) -> list[str]:
        """The next complete lines (none when there are none yet)."""
        if self._fh is None and not self._start():
            return []
        fh = self._fh
        if fh is None:  # _start opened it; said again for the type checker
            return []
        data = fh.read(max_bytes)
        end = data.rfind(b"\n")
        if end >= 0:
            used = data[: end + 1]
            if end + 1 < len(data):
                fh.seek(self.pos.offset + end + 1)
            if self.pos.offset == 0 and not self.pos.head:
                self.pos.head = hashlib.sha1(used[: used.find(b"\n") + 1]).hexdigest()
            self.pos.offset += end + 1
            return used.decode("utf-8", errors="replace").splitlines()
        if data:  # a line still being written, or one longer than the chunk
            fh.seek(self.pos.offset)
            if len(data) < max_bytes:
                return []
            return self.read(max_bytes * 2)
        # At the end: has the file been rotated or truncated under us?
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        if (st.st_dev, st.st_ino) != (self.pos.device, self.pos.inode):
            self._draining = False
            self._open(self.path, 0)
            return self.read(max_bytes)
        if st.st_size < self.pos.offset:
            log.warning("queue_log was truncated: reading it again from the start")
            self._open(self.path, 0)
            return self.read(max_bytes)
        return []


# -- writing ------------------------------------------------------------------------------------
_HOUR_KEY = ("day", "hour", "queue", "did")
_SEAT_KEY = ("day", "queue", "seat")


def _insert(engine: Engine) -> Callable[[Table], Any]:
    """The dialect's own INSERT, which has ON CONFLICT (the same form on PostgreSQL and SQLite)."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def _upsert_counters(
    conn: Connection, table: type[SQLModel], key: tuple[str, ...], rows: dict[tuple, dict]
) -> None:
    if not rows:
        return
    cols = (*defs.COUNTERS, *defs.MAX_COUNTERS)
    params = []
    for k, c in rows.items():
        p = dict(zip(key, k, strict=True))
        for name in cols:
            p[name] = c.get(name, 0)
        params.append(p)
    conn.execute(_upsert_statement(conn.engine.dialect.name, table, key), params)


@functools.cache
def _upsert_statement(dialect: str, table: type[SQLModel], key: tuple[str, ...]) -> Any:
    """Add the counters to a row, made once per table (building it cost more than running it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    greatest = func.greatest if dialect == "postgresql" else func.max
    t = table_of(table)
    stmt = insert(t)
    set_ = {name: t.c[name] + stmt.excluded[name] for name in defs.COUNTERS}
    set_["max_wait_s"] = greatest(t.c.max_wait_s, stmt.excluded.max_wait_s)
    return stmt.on_conflict_do_update(index_elements=list(key), set_=set_)


_CALL_COLS = tuple(c.name for c in table_of(StatCall).columns if c.name != "id")


_DT = frozenset(c.name for c in table_of(StatCall).columns if c.name in ("entered_at", "ended_at"))


def _sqlite_dt(v: datetime | None) -> str | None:
    # As SQLAlchemy stores UTCDateTime in SQLite (isoformat is several times faster than strftime).
    if v is None:
        return None
    if v.tzinfo is not UTC:
        v = v.astimezone(UTC)
    return v.replace(tzinfo=None).isoformat(" ", "microseconds")


def _insert_calls(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Finished calls. On SQLite straight to the driver: the type layer cost more than the insert."""
    if conn.engine.dialect.name == "sqlite":
        plain = [c for c in _CALL_COLS if c not in _DT]
        order = plain + sorted(_DT)
        sql = (
            f"INSERT INTO stat_call ({', '.join(order)}) VALUES ({', '.join('?' * len(order))}) "
            "ON CONFLICT DO NOTHING"
        )
        conn.exec_driver_sql(
            sql,
            [(*[r[c] for c in plain], _sqlite_dt(r["ended_at"]), _sqlite_dt(r["entered_at"])) for r in rows],
        )
    else:
        conn.execute(_insert(conn.engine)(table_of(StatCall)).on_conflict_do_nothing(), rows)


def write_batch(
    conn: Connection,
    sl: float,
    closed,
    seat_time,
    marks,
    levels: dict[str, float] | None = None,
    diagnostic_seats: frozenset[str] = frozenset(),
) -> set[str]:
    """Finished calls, marks, roll-ups and seat time of one batch, on the caller's transaction.

    ``marks`` change calls written earlier: (callid, seq, called_back | connected | failed).
    ``levels`` are the queues' own service-level thresholds (queues.conf ``servicelevel``);
    ``sl`` is for queues without one. Returns the days of the earlier calls that changed.
    The diagnostics queue's calls are written as calls (the doctor's page lists them) but never
    rolled up, and the time of ``diagnostic_seats`` is not kept: tests are not service."""
    levels = levels or {}
    hours: dict[tuple, dict] = {}
    seats: dict[tuple, dict] = {}
    if closed:
        _fill_from_call_records(conn, closed)
        _insert_calls(conn, closed)
        for row in closed:
            if row["queue"] == DIAGNOSTICS_QUEUE:
                continue
            c = defs.counters(row, levels.get(row["queue"], sl))
            defs.add(hours.setdefault((row["day"], row["hour"], row["queue"], row["did"]), {}), c)
            if row["seat"]:
                sc = defs.seat_counters(row, levels.get(row["queue"], sl))
                defs.add(seats.setdefault((row["day"], row["queue"], row["seat"]), {}), sc)
    t = table_of(StatCall)
    days: set[str] = set()
    for callid, seq, kind in marks:
        where: tuple[Any, ...] = (t.c.callid == callid, t.c.seq == seq)
        if kind == "called_back":
            where += (t.c.called_back.is_(False), t.c.callback != "call")
        else:  # a booked callback's outcome, once
            where += (t.c.callback == "requested",)
        hit = conn.execute(select(t.c.day, t.c.hour, t.c.queue, t.c.did, t.c.wait_s).where(*where)).first()
        if hit is None:
            continue
        key = (hit.day, hit.hour, hit.queue, hit.did)
        days.add(hit.day)
        counted = hit.queue != DIAGNOSTICS_QUEUE
        if kind == "called_back":
            conn.execute(update(t).where(*where).values(called_back=True))
            if counted and (hit.wait_s or 0) >= defs.SHORT_ABANDON_S:
                defs.add(hours.setdefault(key, {}), {"callbacks": 1})
        else:
            conn.execute(update(t).where(*where).values(callback=kind))
            if counted:
                defs.add(hours.setdefault(key, {}), {f"callbacks_{kind}": 1})
    _upsert_counters(conn, StatAggHour, _HOUR_KEY, hours)
    _upsert_counters(conn, StatAggSeat, _SEAT_KEY, seats)
    seat_time = {k: v for k, v in seat_time.items() if k[1] not in diagnostic_seats}
    if seat_time:
        insert = _insert(conn.engine)
        stmt = insert(table_of(StatSeatTime))
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["day", "seat", "kind", "reason"],
                set_={"seconds": table_of(StatSeatTime).c.seconds + stmt.excluded.seconds},
            ),
            [
                {"day": d, "seat": s, "kind": k, "reason": r, "seconds": v}
                for (d, s, k, r), v in seat_time.items()
            ],
        )
    return days


def _fill_from_call_records(conn: Connection, closed: list[dict[str, Any]]) -> None:
    """The AMI call record (same linkedid) supplies the DID when queue_log had no DID line."""
    missing = [r["linkedid"] for r in closed if not r["did"]]
    if not missing:
        return
    found: dict[str, str] = {}
    for i in range(0, len(missing), 500):
        part = missing[i : i + 500]
        for linkedid, did in conn.execute(
            select(col(CallRecord.linkedid), col(CallRecord.did)).where(col(CallRecord.linkedid).in_(part))
        ):
            found[linkedid] = did or ""
    for r in closed:
        if not r["did"]:
            r["did"] = found.get(r["linkedid"], "")


# queue_log's outcome → the call record's (a caller who left the queue without hanging up, by a
# key, an empty queue or its timeout, is a timeout there; lost: Asterisk restarted under it).
RECORD_OUTCOMES = {"answered": "answered", "abandoned": "abandoned", "lost": "failed"}


def record_fields(row: Any) -> dict[str, Any]:
    """A call record's outcome and times as queue_log tells them (``row``: a stat_call row)."""
    return {
        "outcome": RECORD_OUTCOMES.get(row["outcome"], "timeout"),
        "seat": (row["seat"] or "")[:16],
        "queue": row["queue"],
        "ended_at": row["ended_at"],
        "wait_s": row["wait_s"],
        "ring_s": row["ring_s"],
        "talk_s": row["talk_s"],
    }


def settle_call_records(conn: Connection, closed: list[dict[str, Any]]) -> list[str]:
    """Call records the engine wrote as unsettled (it lost sight of the call while Asterisk ran on)
    take their outcome from the calls queue_log closed now. Returns the linkedids settled."""
    first = {r["linkedid"]: r for r in closed if r["seq"] == 0 and r["linkedid"]}
    if not first:
        return []
    t = table_of(CallRecord)
    settled: list[str] = []
    ids_ = list(first)
    for i in range(0, len(ids_), 500):
        part = ids_[i : i + 500]
        waiting = conn.execute(select(t.c.linkedid).where(t.c.linkedid.in_(part), t.c.outcome == UNSETTLED))
        for (linkedid,) in list(waiting):
            conn.execute(
                update(t)
                .where(t.c.linkedid == linkedid, t.c.outcome == UNSETTLED)
                .values(**record_fields(first[linkedid]))
            )
            settled.append(linkedid)
    if settled:
        log.info("%d call record(s) the engine lost sight of settled from queue_log", len(settled))
    return settled


def record_unseen_calls(
    conn: Connection, closed: list[dict[str, Any]], settings: Settings, seen: Callable[[float], bool]
) -> list[str]:
    """Call records for calls the engine never saw end (they ended while it was down or without
    its AMI session), made from queue_log: none is missing from the records. A record the engine
    wrote is kept (the insert does nothing on its linkedid). Returns the linkedids written."""
    rows = [
        r
        for r in closed
        if r["seq"] == 0
        and r["linkedid"]
        and r["ended_at"] is not None
        and not seen(r["ended_at"].timestamp())
    ]
    if not rows:
        return []
    numbers = {n for (n,) in conn.execute(select(col(ServiceNumber.number)))}
    t = table_of(CallRecord)
    have = {
        linkedid
        for (linkedid,) in conn.execute(
            select(t.c.linkedid).where(t.c.linkedid.in_([r["linkedid"] for r in rows]))
        )
    }
    new = [
        {
            "linkedid": r["linkedid"],
            "caller": normalize(r["caller"], settings.default_region, settings.default_area_code)
            or r["caller"][:40],
            "caller_raw": r["caller"][:80],
            "did": r["did"],
            # A call to a service number came from a carrier; 12345 transfers arrive on its trunk.
            "source": "carrier" if r["did"] in numbers else "12345",
            "started_at": r["entered_at"],
            # What only the engine learns (the route, the menu, the recording) stays empty.
            "caller_name": "",
            "order_12345": "",
            "summary_12345": "",
            "resident_id": None,
            "first_ring_s": None,
            "ivr_choice": "",
            "ivr_category": "",
            "recording": "",
            **record_fields(r),
        }
        for r in rows
        if r["linkedid"] not in have
    ]
    if new:
        conn.execute(_insert(conn.engine)(t).on_conflict_do_nothing(index_elements=["linkedid"]), new)
        log.warning(
            "%d call record(s) made from queue_log: the calls ended while the engine did not see them",
            len(new),
        )
    return [r["linkedid"] for r in new]


def settled_call_records(conn: Connection, linkedids: list[str]) -> dict[str, dict[str, Any]]:
    """What queue_log already says of these calls (first queue), as call-record fields: the
    engine asks when it writes records it could not settle itself."""
    t = table_of(StatCall)
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(linkedids), 500):
        rows = conn.execute(
            select(t.c.linkedid, t.c.outcome, t.c.seat, t.c.queue, t.c.ended_at)
            .add_columns(t.c.wait_s, t.c.ring_s, t.c.talk_s)
            .where(t.c.linkedid.in_(linkedids[i : i + 500]), t.c.seq == 0)
        )
        for r in rows.mappings():
            found[r["linkedid"]] = record_fields(r)
    return found


class StatsIngest:
    """queue_log lines → the statistics tables, with the cursor in the same transaction."""

    def __init__(
        self,
        settings: Settings,
        name: str | None = None,
        seat_of: Callable[[str], str] | None = None,
        seen: Callable[[float], bool] | None = None,
    ):
        self.settings = settings
        self.seen = seen  # whether the engine saw a call that ended then (None: not asked)
        self.levels: dict[str, float] = {}  # queue → service-level threshold, with the wrap-ups
        self.name = name or settings.stats_source
        self.engine = get_engine(settings)
        self.seat_of = seat_of
        self.reconciler = Reconciler(
            seat_of=seat_of or self._seat_of,
            wrapup=self._wrapups(),
            callback_window_h=settings.stats_callback_window_h,
        )
        self._seats: dict[str, str] | None = None
        self._who_at = time.monotonic()
        self._alive_at = 0.0
        self._names_at = 0.0
        self.lines = 0
        self.settled: list[str] = []  # call records settled from queue_log, not yet announced

    # -- who is who ---------------------------------------------------------------------------
    def _wrapups(self) -> dict[str, float]:
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(select(col(CallQueue.name), col(CallQueue.wrapup), col(CallQueue.service_level)))
            )
        self.levels = {n: float(sl or self.settings.service_level_s) for n, _w, sl in rows}
        return {n: float(w or 0) for n, w, _sl in rows}

    def refresh_seats(self) -> dict[str, str]:
        """queue_log names a member by its member name (or interface): map both to the extension."""
        seats: dict[str, str] = {}
        with self.engine.connect() as conn:
            for username, display, ext in conn.execute(
                select(col(Account.username), col(Account.display_name), col(Account.extension)).where(
                    col(Account.extension).is_not(None)
                )
            ):
                if ext is None:  # excluded by the query; said again for the type checker
                    continue
                seats[f"PJSIP/seat{ext}"] = ext  # queue_log lines written before members were Local
                seats[ids.seat_interface(ext)] = ext
                seats[clean_name(display, fallback=clean_name(username, fallback=ext))] = ext
        self._seats = seats
        return seats

    def _seat_of(self, agent: str) -> str:
        seats = self._seats if self._seats is not None else self.refresh_seats()
        ext = seats.get(agent)
        if ext is None and agent not in ("NONE", "") and time.monotonic() - self._names_at > 5:
            # A member name not seen yet (a seat added since): look again, at most every 5 s.
            self._names_at = time.monotonic()
            ext = self.refresh_seats().get(agent)
        if ext is None:
            ext = ids.seat_of(agent)
        return (ext or agent)[:64]

    # -- cursor -------------------------------------------------------------------------------
    def load(self) -> Position:
        with self.engine.connect() as conn:
            row = conn.execute(select(StatCursor).where(col(StatCursor.name) == self.name)).first()
        if row is None:
            return Position()
        if row.state:
            self.reconciler.load_state(json.loads(row.state))
        self.lines = row.lines
        return Position(row.device, row.inode, row.head, row.offset)

    def ingest(self, lines: list[str], pos: Position) -> set[str]:
        """Parse, reconcile and write one batch; returns the days whose figures changed."""
        r = self.reconciler
        if time.monotonic() - self._who_at > WHO_REFRESH_S:
            # Seats and queues are edited while the engine runs: names and wrap-up times again.
            self._who_at = time.monotonic()
            self._seats = None
            r.wrapup = self._wrapups()
        feed = r.feed
        for line in lines:
            e = parse_line(line)
            if e is not None:
                feed(e)
        self.lines += len(lines)
        return self._write(pos)

    def _write(self, pos: Position) -> set[str]:
        closed, seat_time, marks = self.reconciler.take()
        with self.engine.begin() as conn:
            settled = settle_call_records(conn, closed) if closed else []
            if closed and self.seen is not None:
                settled += record_unseen_calls(conn, closed, self.settings, self.seen)
            days = write_batch(
                conn,
                self.settings.service_level_s,
                closed,
                seat_time,
                marks,
                self.levels,
                frozenset({self.settings.doctor_extension}),
            )
            self._save(conn, pos)
        self.settled += settled  # once committed
        return days | {row["day"] for row in closed} | {k[0] for k in seat_time}

    def idle(self, pos: Position, now: float) -> set[str]:
        """Nothing new in the log: exits by key left waiting count now, and the cursor notes the
        follower is alive (open login and pause intervals count up to that time in reports)."""
        r = self.reconciler
        before = len(r.keyed)
        r.flush(now)
        if len(r.keyed) == before and now - self._alive_at < ALIVE_EVERY_S:
            return set()
        self._alive_at = now
        return self._write(pos)

    def _save(self, conn: Connection, pos: Position) -> None:
        values = {
            "device": pos.device,
            "inode": pos.inode,
            "head": pos.head,
            "offset": pos.offset,
            "state": json.dumps(self.reconciler.state(), ensure_ascii=False, separators=(",", ":")),
            "lines": self.lines,
            "updated_at": datetime.now(UTC),
        }
        t = table_of(StatCursor)
        done = conn.execute(update(t).where(t.c.name == self.name).values(**values))
        if done.rowcount == 0:
            conn.execute(t.insert().values(name=self.name, **values))


class StatsFollower:
    """Runs in the engine: follows queue_log and tells ``on_batch`` which days changed."""

    def __init__(
        self,
        settings: Settings,
        path: Path | None = None,
        on_batch: Callable[[set[str]], Any] | None = None,
        poll_s: float = 0.25,
        batch_s: float = 0.5,
        on_settled: Callable[[list[str]], Any] | None = None,
        seen: Callable[[float], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.seen = seen  # the engine's AMI client's saw_end: calls it missed get records here
        self.path = path or queue_log_path(settings)
        self.on_batch = on_batch
        self.on_settled = on_settled  # call records settled from queue_log (linkedids)
        self.poll_s = poll_s
        # Under load the lines of several calls make one batch (one transaction, one refresh of
        # today's figures) instead of one per call: a batch is followed by this pause unless it
        # read a whole chunk (catching up).
        self.batch_s = batch_s
        self.last_read = 0  # bytes the last step read
        self.ingest: StatsIngest | None = None
        self.tail: QueueLogTail | None = None
        self._task: asyncio.Task | None = None

    def step(self, max_bytes: int = CHUNK) -> set[str]:
        """Read and write one batch (in a worker thread); the days of the calls it finished."""
        if self.ingest is None or self.tail is None:
            self.ingest = StatsIngest(self.settings, seen=self.seen)
            self.tail = QueueLogTail(self.path, self.ingest.load())
        ingest, tail = self.ingest, self.tail
        before = tail.pos.offset
        lines = tail.read(max_bytes)
        self.last_read = tail.pos.offset - before
        if not lines:
            if not tail.is_open:  # no file yet
                return set()
            return ingest.idle(tail.pos, time.time())
        return ingest.ingest(lines, tail.pos) or {""}

    def reset(self) -> None:
        """Forget what is in memory: the next step starts again from the cursor in the database
        (a batch whose transaction failed was read and reconciled, but never counted)."""
        if self.tail is not None:
            self.tail.close()
        self.tail = None
        self.ingest = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stats-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.tail is not None:
            self.tail.close()

    async def _run(self) -> None:
        while True:
            try:
                days = await asyncio.to_thread(self.step)
            except Exception:
                log.exception("following queue_log failed; retrying from the last saved position")
                self.reset()
                await asyncio.sleep(2)
                continue
            if days and self.on_batch is not None:
                try:  # the wallboard's refresh failing must not stop the counting
                    res = self.on_batch(days)
                    if asyncio.iscoroutine(res):
                        await res
                except Exception:
                    log.exception("after a queue_log batch: on_batch failed")
            if self.ingest is not None and self.ingest.settled and self.on_settled is not None:
                settled, self.ingest.settled = self.ingest.settled, []
                try:
                    res = self.on_settled(settled)
                    if asyncio.iscoroutine(res):
                        await res
                except Exception:
                    log.exception("announcing %d settled call record(s) failed", len(settled))
            if not days:
                await asyncio.sleep(self.poll_s)
            elif self.last_read < CHUNK // 2:
                await asyncio.sleep(self.batch_s)


def rotated_files(path: Path) -> list[Path]:
    """``queue_log.N`` … ``queue_log.0``: Asterisk's rotated logs, oldest first."""
    found = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1 :]
        if suffix.isdigit():
            found.append((int(suffix), p))
    return [p for _, p in sorted(found, reverse=True)]


def rebuild(settings: Settings, path: Path | None = None) -> int:
    """Count everything again from the queue_log files (rotated ones first, then the live one):
    after a change of definitions (the service level threshold) or a restored database. The
    engine must be stopped meanwhile. Returns the lines read."""
    path = path or queue_log_path(settings)
    with get_engine(settings).begin() as conn:
        others = [
            n
            for (n,) in conn.execute(select(col(StatCursor.name)))
            if n not in (settings.stats_source, "daily-report", "order-rollup")
        ]
        if others:  # the tables hold their calls too: counting again from one log would lose them
            raise RuntimeError(f"other queue_log sources are counted in this database too: {others}")
        for table in (models.StatCall, models.StatAggHour, models.StatAggSeat, models.StatSeatTime):
            conn.execute(table_of(table).delete())
        t = table_of(StatCursor)
        conn.execute(t.delete().where(t.c.name == settings.stats_source))
    ingest = StatsIngest(settings)
    for old in rotated_files(path):
        tail = QueueLogTail(old)
        while lines := tail.read():
            ingest.ingest(lines, Position())  # the cursor is for the live file only
        tail.close()
    follower = StatsFollower(settings, path=path)
    follower.ingest = ingest
    follower.tail = QueueLogTail(path)
    while follower.step():
        pass
    follower.tail.close()
    return ingest.lines
