"""Importing basic data from CSV or Excel, all or nothing, and the machinery every import shares.

Every row is checked first and the report says, row by row, what is wrong; if any row is wrong
nothing is written (one transaction, rolled back). Names refer to what is already in the
database (a community by its name, under its jurisdiction when the name is not unique).

The shared parts (reading a file, the all-or-nothing driver ``run_rows``, the name lookups and
the field parsers) are public so that the resident import (``callcenter.residents.imports``),
which sits above the directory its rows refer to, and the basic-data edit forms use the same ones.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from callcenter import phone
from callcenter.config import Settings
from callcenter.database import saved_id
from callcenter.directory.models import (
    Community,
    Grid,
    Jurisdiction,
    Outlet,
    ServiceArea,
    ServiceAreaCommunity,
    ServiceNumber,
)
from callcenter.errors import UserError
from callcenter.text import is_digits

MAX_ROWS = 200_000
MAX_BYTES = 50 * 1024 * 1024
MAX_COLUMNS = 64  # cells read per row: the widest import has a dozen columns
# An .xlsx is a zip: what its parts inflate to is bounded before openpyxl reads any of them (a few
# MB can inflate to GBs, and openpyxl holds the whole sharedStrings part in memory).
MAX_XLSX_PARTS = 1000
MAX_XLSX_PART = 64 * 1024 * 1024
MAX_XLSX_UNPACKED = 160 * 1024 * 1024

Columns = dict[str, tuple[str, ...]]  # field → the column headings accepted for it

# kind → field → the column headings accepted for it (English key first, then Chinese).
COLUMNS: dict[str, Columns] = {
    "jurisdictions": {"name": ("name", "名称", "街道"), "code": ("code", "代码", "区划代码")},
    "communities": {
        "name": ("name", "名称", "社区"),
        "jurisdiction": ("jurisdiction", "街道", "辖区"),
        "urban": ("urban", "城市社区"),
    },
    "grids": {"name": ("name", "名称", "网格"), "community": ("community", "社区")},
    "service_areas": {"name": ("name", "名称", "片区"), "communities": ("communities", "社区")},
    "outlets": {
        "name": ("name", "名称", "网点"),
        "kind": ("kind", "类型"),
        "community": ("community", "社区"),
        # What an outlet serves (categories, areas) is set by the routing rules alone; a file that
        # still fills these columns is refused (read below), never silently half-imported.
        "categories": ("categories", "服务类别"),
        "areas": ("areas", "服务片区", "片区"),
        "phone": ("phone", "电话", "联系电话"),
        "phones": ("phones", "其他电话", "短信号码"),
        "email": ("email", "邮箱", "电子邮箱"),
        "emails": ("emails", "其他邮箱"),
        "working_hours": ("working_hours", "工作时间"),
    },
    "service_numbers": {
        "number": ("number", "号码", "服务号码"),
        "title": ("title", "名称"),
        "queue_name": ("queue_name", "队列"),
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "jurisdictions": ("name",),
    "communities": ("name", "jurisdiction"),
    "grids": ("name", "community"),
    "service_areas": ("name",),
    "outlets": ("name", "phone"),
    "service_numbers": ("number", "queue_name"),
}
KINDS = tuple(COLUMNS)

_YES = {"1", "true", "yes", "y", "是", "√", "有"}
_NO = {"", "0", "false", "no", "n", "否", "无"}
EMAIL = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,255}")


class ImportFileError(UserError, domain="import"):
    """The file cannot be read at all (format, size, headings)."""


class RowError(UserError, domain="import_row"):
    """This row cannot be imported; the report shows why."""


class RowSkipped(Exception):  # noqa: N818 - a signal to the driver, not a failure
    """This row is left out on request (a duplicate); the report lists it as skipped."""


@dataclass
class Report:
    kind: str
    total: int = 0
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number as in the file, why)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "total": self.total,
            "imported": self.imported,
            "ok": self.ok,
            "errors": [{"row": r, "error": e} for r, e in self.errors],
            "skipped": [{"row": r, "reason": e} for r, e in self.skipped],
        }


# --- reading -------------------------------------------------------------------------------


def read_table(filename: str, data: bytes) -> list[dict[str, str]]:
    """The rows of a CSV (UTF-8 or GBK) or .xlsx file, keyed by the heading row."""
    if len(data) > MAX_BYTES:
        raise ImportFileError("file too large")
    name = filename.lower()
    if name.endswith(".xlsx"):
        rows = _read_xlsx(data)
    elif name.endswith(".csv") or name.endswith(".txt"):
        rows = _read_csv(data)
    else:
        raise ImportFileError("only .csv and .xlsx files can be imported")
    if not rows:
        raise ImportFileError("the file has no heading row")
    head = [str(h or "").strip() for h in rows[0][:MAX_COLUMNS]]
    out: list[dict[str, str]] = []
    for values in rows[1 : MAX_ROWS + 2]:
        cells = ["" if v is None else str(v).strip() for v in values]
        if not any(cells):
            out.append({})  # keep row numbers right; blank rows are skipped later
            continue
        out.append({h: (cells[i] if i < len(cells) else "") for i, h in enumerate(head) if h})
    if len(out) > MAX_ROWS:
        raise ImportFileError(f"more than {MAX_ROWS} rows")
    return out


def _read_csv(data: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return list(csv.reader(io.StringIO(text)))
    raise ImportFileError("the CSV file is neither UTF-8 nor GBK")


def check_xlsx(data: bytes) -> None:
    """Refuses an .xlsx whose parts would inflate past the limits, from the sizes in the zip's
    central directory (nothing is inflated; zipfile stops a part at its declared size, so a part
    cannot lie its way past this check)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise ImportFileError(f"not a readable .xlsx file: {type(exc).__name__}") from exc
    if len(parts) > MAX_XLSX_PARTS:
        raise ImportFileError(f"the .xlsx file has more than {MAX_XLSX_PARTS} parts")
    total = 0
    for part in parts:
        total += part.file_size
        if part.file_size > MAX_XLSX_PART or total > MAX_XLSX_UNPACKED:
            raise ImportFileError(
                f"the .xlsx file unpacks to more than {MAX_XLSX_UNPACKED // (1024 * 1024)} MB"
                f" (or one part to more than {MAX_XLSX_PART // (1024 * 1024)} MB)"
            )


def _read_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook  # heavy: loaded only when an .xlsx file comes in

    check_xlsx(data)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ImportFileError(f"not a readable .xlsx file: {type(exc).__name__}") from exc
    try:
        ws = wb.worksheets[0]
        rows = []
        for values in ws.iter_rows(max_col=MAX_COLUMNS, values_only=True):
            rows.append([_cell(v) for v in values])
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    finally:
        wb.close()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # phone numbers and years typed into Excel come back as floats
    return str(v)


RowBuilder = Callable[[int, dict[str, str]], list[Any]]  # (row number, fields) → objects to add


def fields_of(columns: Columns, row: dict[str, str]) -> dict[str, str]:
    """One row's values by field name, whichever accepted heading the file used."""
    out = {}
    for name, headings in columns.items():
        for h in headings:
            if h in row:
                out[name] = row[h]
                break
        else:
            out[name] = ""
    return out


def check_headings(columns: Columns, required: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    present = set().union(*(r.keys() for r in rows if r)) if rows else set()
    missing = [f for f in required if not any(h in present for h in columns[f])]
    if missing:
        heads = ", ".join(f"{f} ({'/'.join(columns[f][1:])})" for f in missing)
        raise ImportFileError(f"missing columns: {heads}")


def run_rows(
    session: Session,
    kind: str,
    columns: Columns,
    required: tuple[str, ...],
    rows: list[dict[str, str]],
    build: RowBuilder,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Check every row, then write all of them in this session's transaction and commit — or,
    when any row is wrong, roll back and write nothing."""
    check_headings(columns, required, rows)
    report = Report(kind)
    total = len(rows)
    for i, raw in enumerate(rows):
        row_no = i + 2  # the heading is row 1
        if progress and (i % 50 == 0 or i == total - 1):
            progress(i + 1, total)
        if not raw:
            continue
        report.total += 1
        try:
            with session.no_autoflush:
                objs = build(row_no, fields_of(columns, raw))
        except RowSkipped as exc:
            report.skipped.append((row_no, str(exc)))
            continue
        except RowError as exc:
            report.errors.append((row_no, str(exc)))
            continue
        for obj in objs:
            session.add(obj)
        report.imported += 1
    if report.errors:
        session.rollback()
        report.imported = 0
        return report
    session.commit()
    return report


# --- the rows ------------------------------------------------------------------------------


class Lookups:
    """Names in a row resolved to what is on file, each table read once per import."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self._jur: dict[str, Jurisdiction] | None = None
        self._com: dict[str, list[Community]] | None = None

    def jurisdiction(self, name: str) -> Jurisdiction:
        if self._jur is None:
            self._jur = {j.name: j for j in self.s.exec(select(Jurisdiction))}
        j = self._jur.get(name)
        if j is None:
            raise RowError(f"unknown jurisdiction {name!r}")
        return j

    def community(self, text: str) -> Community:
        """``社区`` or ``街道/社区`` when the name alone is not unique."""
        if self._com is None:
            self._com = {}
            for c in self.s.exec(select(Community)):
                self._com.setdefault(c.name, []).append(c)
        jur_name, _, name = text.rpartition("/")
        found = self._com.get(name.strip(), [])
        if jur_name:
            jur = self.jurisdiction(jur_name.strip())
            found = [c for c in found if c.jurisdiction_id == jur.id]
        if not found:
            raise RowError(f"unknown community {text!r}")
        if len(found) > 1:
            raise RowError(f"community {text!r} is in several jurisdictions: write 街道/社区")
        return found[0]

    def grid(self, community: Community, name: str) -> Grid:
        g = self.s.exec(select(Grid).where(Grid.community_id == community.id, Grid.name == name)).first()
        if g is None:
            raise RowError(f"unknown grid {name!r} in {community.name}")
        return g

    def area(self, name: str) -> ServiceArea:
        a = self.s.exec(select(ServiceArea).where(ServiceArea.name == name)).first()
        if a is None:
            raise RowError(f"unknown service area {name!r}")
        return a


def parse_bool(value: str, what: str) -> bool:
    v = value.strip().lower()
    if v in _YES:
        return True
    if v in _NO:
        return False
    raise RowError(f"{what}: write 是 or 否")


def parse_phone(settings: Settings, raw: str, what: str) -> str:
    """The number in E.164 form, or "" for an empty cell."""
    if not raw:
        return ""
    number = phone.normalize(raw, settings.default_region, settings.default_area_code)
    if number is None:
        raise RowError(f"{what}: {raw!r} is not a phone number")
    return number


def split_list(value: str) -> list[str]:
    """The items of a cell separated by commas, semicolons or 、 (ASCII or full width)."""
    return [x.strip() for x in re.split(r"[;；,，、]", value) if x.strip()]


def clean_text(value: str, limit: int, what: str) -> str:
    value = "".join(ch for ch in value if ch.isprintable()).strip()
    if len(value) > limit:
        raise RowError(f"{what}: longer than {limit} characters")
    return value


def _build(kind: str, f: dict[str, str], look: Lookups, settings: Settings, s: Session) -> list[Any]:
    """The objects one row makes (RowError when it cannot be imported)."""
    for name in REQUIRED[kind]:
        if not f[name]:
            raise RowError(f"{name} is required")
    if kind == "jurisdictions":
        if s.exec(select(Jurisdiction).where(Jurisdiction.name == f["name"])).first():
            raise RowError(f"jurisdiction {f['name']!r} exists")
        return [Jurisdiction(name=clean_text(f["name"], 64, "name"), code=clean_text(f["code"], 32, "code"))]
    if kind == "communities":
        j = look.jurisdiction(f["jurisdiction"])
        return [
            Community(
                jurisdiction_id=saved_id(j),
                name=clean_text(f["name"], 64, "name"),
                urban=parse_bool(f["urban"] or "是", "urban"),
            )
        ]
    if kind == "grids":
        c = look.community(f["community"])
        return [Grid(community_id=saved_id(c), name=clean_text(f["name"], 64, "name"))]
    if kind == "service_areas":
        if s.exec(select(ServiceArea).where(ServiceArea.name == f["name"])).first():
            raise RowError(f"service area {f['name']!r} exists")
        area = ServiceArea(name=clean_text(f["name"], 64, "name"))
        s.add(area)
        s.flush()
        return [
            ServiceAreaCommunity(area_id=saved_id(area), community_id=saved_id(look.community(c)))
            for c in split_list(f["communities"])
        ]
    if kind == "outlets":
        kind_value = {"": "outlet", "网点": "outlet", "服务网点": "outlet", "供应商": "supplier"}.get(
            f["kind"], f["kind"]
        )
        if kind_value not in ("outlet", "supplier"):
            raise RowError("kind: outlet/supplier (服务网点/供应商)")
        emails = split_list(f["emails"])
        for e in ([f["email"]] if f["email"] else []) + emails:
            if not EMAIL.fullmatch(e):
                raise RowError(f"{e!r} is not an e-mail address")
        outlet = Outlet(
            name=clean_text(f["name"], 128, "name"),
            kind=kind_value,
            community_id=look.community(f["community"]).id if f["community"] else None,
            phone=parse_phone(settings, f["phone"], "phone"),
            phones=",".join(parse_phone(settings, p, "phones") for p in split_list(f["phones"])),
            email=f["email"],
            emails=",".join(emails),
            working_hours=clean_text(f["working_hours"], 64, "working_hours"),
        )
        if f["categories"].strip() or f["areas"].strip():
            raise RowError(
                "categories and areas an outlet serves are routing rules (派单规则): import them there"
            )
        return [outlet]
    if kind == "service_numbers":
        if not is_digits(f["number"], 32):
            raise RowError("number: digits only")
        if s.exec(select(ServiceNumber).where(ServiceNumber.number == f["number"])).first():
            raise RowError(f"service number {f['number']} exists")
        if not re.fullmatch(r"[a-z0-9_-]{1,32}", f["queue_name"]):
            raise RowError("queue_name: lowercase letters, digits, - and _")
        return [
            ServiceNumber(
                number=f["number"], title=clean_text(f["title"], 64, "title"), queue_name=f["queue_name"]
            )
        ]
    raise RowError(f"unknown kind {kind}")


def run_import(
    session: Session,
    settings: Settings,
    kind: str,
    rows: list[dict[str, str]],
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Import basic data of one kind, all or nothing (see ``run_rows``)."""
    if kind not in COLUMNS:
        raise ImportFileError(f"unknown kind {kind!r}")
    look = Lookups(session)
    seen_names: dict[str, int] = {}

    def build(row_no: int, f: dict[str, str]) -> list[Any]:
        name = f.get("name") or f.get("number")
        key = f"{f.get('jurisdiction', '')}/{f.get('community', '')}/{name}"
        if key in seen_names:
            raise RowError(f"the same as row {seen_names[key]}")
        seen_names[key] = row_no
        return _build(kind, f, look, settings, session)

    return run_rows(session, kind, COLUMNS[kind], REQUIRED[kind], rows, build, progress)


def template_csv(kind: str) -> str:
    """A CSV with the Chinese headings, to fill in."""
    return ",".join(h[1] if len(h) > 1 else h[0] for h in COLUMNS[kind].values()) + "\n"


# --- import jobs: progress and report, seen by every web worker --------------------------------

JOB_TTL_S = 86400  # a job's page and report stay a day
STALE_S = 600  # a running job not heard from this long died with its worker


@dataclass
class ImportJob:
    id: str
    kind: str
    filename: str
    owner: str
    state: str = "running"  # running | done | failed
    done: int = 0
    total: int = 0
    error: str = ""
    report: dict[str, Any] | None = None
    started: float = 0.0
    updated: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """What the page and the API show (the owner and timestamps stay on the server)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "filename": self.filename,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "report": self.report,
        }

    def checked(self, now: float) -> ImportJob:
        if self.state == "running" and now - self.updated > STALE_S:
            # The import is one transaction: a worker that stopped mid-way wrote nothing.
            self.state, self.error = "failed", "interrupted: nothing was imported"
        return self


class ImportJobs:
    """Jobs kept by this process: enough for one web worker (the embedded default)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def save(self, job: ImportJob) -> None:
        now = self.clock()
        job.started = job.started or now
        job.updated = now
        with self._lock:  # the import runs on its own thread
            for key in [k for k, j in self._jobs.items() if now - j["started"] > JOB_TTL_S]:
                del self._jobs[key]
            self._jobs[job.id] = dataclasses.asdict(job)

    def get(self, job_id: str) -> ImportJob | None:
        with self._lock:
            data = self._jobs.get(job_id)
        return ImportJob(**data).checked(self.clock()) if data else None


class RedisImportJobs(ImportJobs):
    """Jobs in Redis, so the worker that polls a job need not be the one running it."""

    PREFIX = "cc:import-job:"

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        import redis  # loaded only when the jobs live in Redis (several web workers)

        super().__init__(clock)
        self.redis = redis.Redis.from_url(url, socket_timeout=2)

    def save(self, job: ImportJob) -> None:
        now = self.clock()
        job.started = job.started or now
        job.updated = now
        self.redis.set(self.PREFIX + job.id, json.dumps(dataclasses.asdict(job)), ex=JOB_TTL_S)

    def get(self, job_id: str) -> ImportJob | None:
        raw = self.redis.get(self.PREFIX + job_id)
        return ImportJob(**json.loads(raw)).checked(self.clock()) if raw else None
