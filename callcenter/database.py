"""Database engine and sessions. SQLite by default, PostgreSQL by URL; the schema is Alembic's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from callcenter.config import Settings, get_settings

_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the web workers read while the engine writes call records.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    url = settings.resolved_database_url()
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


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    with Session(get_engine(settings), expire_on_commit=False) as session:
        yield session


def migrate(settings: Settings | None = None) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    settings = settings or get_settings()
    root = Path(__file__).resolve().parent.parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(root))
    cfg.attributes["connection_url"] = settings.resolved_database_url()
    get_engine(settings)  # creates the SQLite folder
    command.upgrade(cfg, "head")


def import_all_models() -> None:
    """Register every table on SQLModel.metadata (Alembic and tests need all of them)."""
    import callcenter.accounts.models  # noqa: F401
    import callcenter.audit.models  # noqa: F401
    import callcenter.callcontrol.models  # noqa: F401  # --- telephony B ---
    import callcenter.calls.models  # noqa: F401
    import callcenter.directory.models  # noqa: F401
    import callcenter.ivr.models  # noqa: F401  # --- telephony ---
    import callcenter.records.models  # noqa: F401  (messaging)
    import callcenter.residents.models  # noqa: F401
    import callcenter.statistics.models  # noqa: F401  (statistics)
    import dispatch.models  # noqa: F401
    import sms.models  # noqa: F401  (messaging)
