"""Database engine and sessions. SQLite by default, PostgreSQL by URL; the schema is Alembic's."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Table, event, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.sql import CompoundSelect, Select
from sqlmodel import Session, SQLModel, create_engine

from callcenter.config import Settings, get_settings

_engines: dict[str, Engine] = {}
_urls: dict[Path, str] = {}  # data_dir -> its SQLite URL (resolving the path is a syscall each)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the web workers read while the engine writes call records.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def _url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    url = _urls.get(settings.data_dir)
    if url is None:
        url = _urls[settings.data_dir] = settings.resolved_database_url()
    return url


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    url = _url(settings)
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10)
        _engines[url] = engine
    return engine


def dispose_engine(settings: Settings) -> None:
    """Close and forget the engine of these settings' database (its pooled connections too)."""
    engine = _engines.pop(_url(settings), None)
    if engine is not None:
        engine.dispose()


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    with Session(get_engine(settings), expire_on_commit=False) as session:
        yield session


def table_of(model: type[SQLModel]) -> Table:
    """A table model's SQLAlchemy ``Table``, for Core statements (bulk inserts, upserts)."""
    return model.__table__  # type: ignore[attr-defined]  # set by SQLModel, not declared to type checkers


class _Row(Protocol):
    id: int | None


def saved_id(row: _Row) -> int:
    """The primary key of a row read from the database or flushed to it (only a new, unflushed
    row has none, and passing one here is a programming error)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has not been flushed")
    return row.id


# --- hot reads (the FastAGI route, the pop) ------------------------------------------------------
# SQLAlchemy's execution path costs ~45 µs per statement on top of SQLite's ~7 µs (the ORM's more):
# on the embedded SQLite file the statements the call path runs on every call are compiled once
# and run as plain sqlite3, each thread on a connection of its own. Any other database runs them
# through SQLAlchemy. Both give the same rows (tests/callcenter/test_database.py).

_SQLITE = sqlite_dialect.dialect(paramstyle="named")


class Query:
    """A select built once, with its plain-sqlite3 form (SQL, constants, value converters)."""

    def __init__(self, stmt: Select | CompoundSelect) -> None:
        self.stmt = stmt
        compiled = stmt.compile(dialect=_SQLITE)
        self.sql = compiled.string
        self.constants: dict[str, Any] = dict(compiled.params)
        # Values in and out as SQLAlchemy converts them (datetimes stored as text, booleans as 0/1).
        self.binds = {
            name: proc
            for name, bind in compiled.binds.items()
            if (proc := bind.type.dialect_impl(_SQLITE).bind_processor(_SQLITE))
        }
        self.results = tuple(
            c.type.dialect_impl(_SQLITE).result_processor(_SQLITE, None) for c in stmt.selected_columns
        )
        self.converts = any(self.results)


class Reads:
    """Hot reads through SQLAlchemy, on a connection or a session (any database)."""

    def __init__(self, conn: Connection | Session) -> None:
        self.conn = conn

    def first(self, q: Query, **params: Any) -> Any:
        return self.conn.execute(q.stmt, params).first()

    def all(self, q: Query, **params: Any) -> list[Any]:
        return list(self.conn.execute(q.stmt, params).all())


class SqliteReads(Reads):
    """The same reads as plain sqlite3 statements, in autocommit (each sees the newest rows)."""

    # The plain sqlite3 connection in place of SQLAlchemy's: the same reads without its layers.
    conn: sqlite3.Connection  # type: ignore[assignment]

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _run(self, q: Query, params: dict[str, Any]) -> sqlite3.Cursor:
        values = {**q.constants, **params}
        for name, proc in q.binds.items():
            values[name] = proc(values[name])
        return self.conn.execute(q.sql, values)

    def first(self, q: Query, **params: Any) -> Any:
        row = self._run(q, params).fetchone()
        if row is None or not q.converts:
            return row
        return tuple(f(v) if f else v for f, v in zip(q.results, row, strict=True))

    def all(self, q: Query, **params: Any) -> list[Any]:
        rows = self._run(q, params).fetchall()
        if not q.converts:
            return rows
        return [tuple(f(v) if f else v for f, v in zip(q.results, row, strict=True)) for row in rows]


_local = threading.local()
_PER_THREAD = 4  # databases a thread keeps a connection to (one in production; tests make many)


def _thread_connection(engine: Engine) -> sqlite3.Connection:
    conns: dict[str, sqlite3.Connection] = _local.__dict__.setdefault("conns", {})
    key = str(engine.url)
    conn = conns.get(key)
    if conn is None:
        while len(conns) >= _PER_THREAD:
            conns.pop(next(iter(conns))).close()
        (database, *_), cparams = engine.dialect.create_connect_args(engine.url)
        conn = sqlite3.connect(database, **{**cparams, "isolation_level": None, "check_same_thread": True})
        _sqlite_pragmas(conn, None)
        conns[key] = conn
    return conn


@contextmanager
def hot_reads(settings: Settings | None = None) -> Iterator[Reads]:
    """``Reads`` for the call path: plain sqlite3 on this thread's connection to the embedded file,
    else SQLAlchemy on a pooled connection (which may wait on the network: not on an event loop)."""
    engine = get_engine(settings)
    if engine.dialect.name == "sqlite":
        yield SqliteReads(_thread_connection(engine))
        return
    with engine.connect() as conn:
        yield Reads(conn)


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def migrate(settings: Settings | None = None) -> None:
    """Bring the schema to the newest Alembic revision."""
    # Alembic is loaded only by the commands that migrate, not by every process that reads.
    from alembic import command
    from alembic.config import Config

    settings = settings or get_settings()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    owner_url = settings.migration_database_url or settings.resolved_database_url()
    cfg.attributes["connection_url"] = owner_url
    get_engine(settings)  # creates the SQLite folder
    command.upgrade(cfg, "head")
    if settings.database_app_role and owner_url.startswith("postgresql"):
        grant_app_role(owner_url, settings.database_app_role)


_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def grant_app_role(owner_url: str, role: str) -> None:
    """What the application's PostgreSQL role may do, granted by the owner role that migrates:
    read and write the tables, but only read and append to the audit log (no UPDATE, DELETE or
    TRUNCATE; not being its owner it cannot drop or disable the table's triggers either)."""
    if not _ROLE.fullmatch(role):
        raise ValueError(f"not a PostgreSQL role name: {role!r}")
    engine = create_engine(owner_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
            conn.execute(
                text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
            )
            conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))
            conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_entry FROM {role}"))
            conn.execute(text(f"REVOKE ALL ON alembic_version FROM {role}"))
            conn.execute(text(f"GRANT SELECT ON alembic_version TO {role}"))
    finally:
        engine.dispose()


def database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached (down, restarting, the connection lost, locked), as opposed
    to refusing a row: the first passes, the second does not."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
