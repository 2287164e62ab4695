"""The Alembic migrations make exactly the schema the models describe, on SQLite and PostgreSQL:
autogenerate, run against a freshly migrated database, finds nothing to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Text
from sqlmodel import AutoString, SQLModel

from callcenter.config import Settings, set_settings
from callcenter.database import get_engine, migrate
from hotline.models import import_all_models

# The knowledge base's SQLite full-text index (FTS5 virtual table and its shadow tables) is made
# by its migration and maintained by the search code; no model describes it.
SQLITE_ONLY = {"kb_fts", "kb_fts_config", "kb_fts_idx", "kb_fts_data", "kb_fts_docsize", "kb_fts_content"}
# Its PostgreSQL counterpart: the tsvector column and its GIN index on kb_doc.
POSTGRES_ONLY = ("kb_doc", "tsv")


def _same_text(diff: Any) -> bool:
    """TEXT in the database for an unbounded string in the model is the same column."""
    if not (isinstance(diff, tuple) and diff and diff[0] == "modify_type"):
        return False
    existing, wanted = diff[-2], diff[-1]
    return isinstance(existing, Text) and isinstance(wanted, AutoString) and wanted.length is None


def _differences(settings: Settings) -> list[Any]:
    import_all_models()
    migrate(settings)
    with get_engine(settings).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found = compare_metadata(context, SQLModel.metadata)
    out = []
    for diff in found:
        # Column changes come as a list of one or more tuples
        items = diff if isinstance(diff, list) else [diff]
        items = [d for d in items if not _same_text(d)]
        items = [d for d in items if not (d[0] == "remove_table" and d[1].name in SQLITE_ONLY)]
        items = [d for d in items if not (d[0] == "remove_column" and (d[2], d[3].name) == POSTGRES_ONLY)]
        items = [d for d in items if not (d[0] == "remove_index" and d[1].name == "kb_doc_tsv")]
        out.extend(items)
    return out


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    settings = set_settings(Settings(data_dir=tmp_path / "var", _env_file=None))
    assert _differences(settings) == []


def test_migrations_match_the_models_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    settings = set_settings(Settings(data_dir=tmp_path / "var", database_url=postgres_url, _env_file=None))
    assert _differences(settings) == []


def test_times_are_right_on_a_postgresql_that_runs_in_china_time(postgres_url: str, tmp_path: Path) -> None:
    """A PostgreSQL set up in China keeps its sessions in China time. A column the models make
    ``timestamp with time zone`` but a migration made ``without`` would store the wall clock
    there: read back as UTC it is 8 hours late, and an SMS due now would wait 8 hours."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine, text

    from callcenter.database import session_scope
    from sms.models import SmsMessage
    from sms.service import enqueue_sms

    name = f"cc_tz_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
        conn.execute(text(f"ALTER DATABASE {name} SET timezone TO 'Asia/Shanghai'"))
    admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    settings = set_settings(Settings(data_dir=tmp_path / "var", database_url=url, _env_file=None))
    migrate(settings)
    before = datetime.now(UTC)
    with session_scope(settings) as s:
        queued = enqueue_sms(s, "13900000001", "通知", idempotency_key="tz")
        s.commit()
        row_id = queued.id
    with session_scope(settings) as s:
        row = s.get(SmsMessage, row_id)
        assert row is not None
        for value in (row.created_at, row.next_attempt_at):
            assert abs(value.astimezone(UTC) - before) < timedelta(minutes=1), value
    get_engine(settings).dispose()
