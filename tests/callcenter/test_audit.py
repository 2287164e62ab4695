"""The audit log is append-only, in SQLite and in PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from callcenter.audit.service import record, search
from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope


def exercise(settings: Settings, refused: str = "append-only") -> None:
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
            with pytest.raises(DatabaseError, match=refused):
                s.exec(text(statement))
            s.rollback()
        assert len(search(s)) == 3


def test_audit_log_sqlite(settings):
    exercise(settings)


def test_audit_log_postgres(postgres_url, tmp_path):
    settings = set_settings(Settings(data_dir=tmp_path / "var", database_url=postgres_url, _env_file=None))
    migrate(settings)
    exercise(settings)
    with session_scope(settings) as s:
        with pytest.raises(DatabaseError, match="append-only"):
            s.exec(text("TRUNCATE audit_entry"))
        s.rollback()
        assert len(search(s)) >= 3


def test_audit_log_postgres_refuses_truncate_and_the_app_role_owns_nothing(postgres_url, tmp_path):
    """Two roles, as the README describes: the owner migrates, the app's role may only read and
    append to the audit log; TRUNCATE is refused even to the owner (a statement trigger)."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ProgrammingError

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS cc_audit_roles"))
        for role in ("cc_app", "cc_owner"):
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        conn.execute(text("CREATE ROLE cc_owner LOGIN"))
        conn.execute(text("CREATE ROLE cc_app LOGIN"))
        conn.execute(text("CREATE DATABASE cc_audit_roles OWNER cc_owner"))
    admin.dispose()
    server = postgres_url.rsplit("@", 1)[1].rsplit("/", 1)[0]
    owner_url = f"postgresql+psycopg2://cc_owner@{server}/cc_audit_roles"
    app_url = f"postgresql+psycopg2://cc_app@{server}/cc_audit_roles"
    settings = set_settings(
        Settings(
            data_dir=tmp_path / "var",
            database_url=app_url,
            migration_database_url=owner_url,
            database_app_role="cc_app",
            _env_file=None,
        )
    )
    migrate(settings)
    exercise(settings, refused="permission denied")  # the app appends and reads, nothing more
    with session_scope(settings) as s:
        owner = s.exec(text("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_entry'")).one()[0]
        assert owner == "cc_owner"
        with pytest.raises(ProgrammingError, match="permission denied"):
            s.exec(text("TRUNCATE audit_entry"))
        s.rollback()
        with pytest.raises(ProgrammingError, match="must be owner"):
            s.exec(text("ALTER TABLE audit_entry DISABLE TRIGGER ALL"))
        s.rollback()
    owner_engine = create_engine(owner_url)
    with owner_engine.connect() as conn:
        with pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text("TRUNCATE audit_entry"))
        conn.rollback()
        assert conn.execute(text("SELECT count(*) FROM audit_entry")).scalar() == 3
    owner_engine.dispose()
