"""The audit log is append-only, in SQLite and in PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from callcenter.audit.service import record, search
from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope


def exercise(settings: Settings) -> None:
    with session_scope(settings) as s:
        record(
            s, "admin", "account.create", target="seat1005", role="admin", ip="127.0.0.1", extension="1005"
        )
        record(s, "admin", "account.disable", target="seat1005", role="admin")
        record(s, "supervisor", "login", role="supervisor")
        s.commit()
    with session_scope(settings) as s:
        assert [e.action for e in search(s, actor="admin")] == ["account.disable", "account.create"]
        assert [e.actor for e in search(s, action="account.")] == ["admin", "admin"]
        assert search(s, target="1005")[1].detail == {"extension": "1005"}
        for statement in ("UPDATE audit_entry SET actor = 'nobody'", "DELETE FROM audit_entry"):
            with pytest.raises(DatabaseError, match="append-only"):
                s.exec(text(statement))
            s.rollback()
        assert len(search(s)) == 3


def test_audit_log_sqlite(settings):
    exercise(settings)


def test_audit_log_postgres(postgres_url, tmp_path):
    settings = set_settings(Settings(data_dir=tmp_path / "var", database_url=postgres_url, _env_file=None))
    migrate(settings)
    exercise(settings)
