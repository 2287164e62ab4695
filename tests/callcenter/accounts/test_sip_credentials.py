"""SIP passwords are kept as their digest only: the provisioning flow, and the migration that
turned the plaintext passwords of an existing database into digests."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlmodel import select

from callcenter.accounts import flows
from callcenter.accounts.models import Account, sip_digest
from callcenter.config import Settings
from callcenter.database import MIGRATIONS_DIR, get_engine, migrate, session_scope


def test_digest_is_rfc2617_ha1():
    assert sip_digest("myname", "myrealm", "mypassword") == "dce9ccd0a69e3ef90d8b9bf725053e78"


def _alembic(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection_url"] = settings.resolved_database_url()
    return cfg


def test_migration_turns_plaintext_passwords_into_digests(tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    get_engine(settings)
    command.upgrade(_alembic(settings), "0011")
    with get_engine(settings).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO account (username, display_name, password_hash, role, active,"
                " must_change_password, extension, sip_password, sip_contact)"
                " VALUES (:u, '', 'x', :r, 1, 0, :e, :p, '')"
            ),
            [
                {"u": "seat1001", "r": "seat", "e": "1001", "p": "old;secret"},
                {"u": "seat1002", "r": "seat", "e": "1002", "p": ""},
                {"u": "admin", "r": "admin", "e": None, "p": ""},
            ],
        )
    migrate(settings)
    with get_engine(settings).connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("account")}
    assert "sip_password" not in columns and {"sip_digest", "sip_realm"} <= columns
    with session_scope(settings) as s:
        rows = {a.username: a for a in s.exec(select(Account))}
    expected = hashlib.md5(b"seat1001:callcenter:old;secret").hexdigest()
    # The phone keeps working with the password it has; nothing else got one.
    assert (rows["seat1001"].sip_digest, rows["seat1001"].sip_realm) == (expected, "callcenter")
    assert rows["seat1002"].sip_digest == "" and rows["admin"].sip_digest == ""


def test_reset_sip_password_keeps_only_the_digest(tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    migrate(settings)
    actor = flows.Actor("admin", "admin")
    with session_scope(settings) as s:
        seat, _, first = flows.create_account(
            s, actor, "seat1001", "张丽", "seat", "1001", sip_realm="hotline"
        )
        assert seat.sip_digest == sip_digest("seat1001", "hotline", first) and len(first) >= 24
        _, login, none = flows.create_account(s, actor, "outlet1", "站点", "outlet")
        assert none == "" and login
        seat_id = seat.id
        _, second = flows.reset_sip_password(s, actor, seat_id, "hotline")
        _, known = flows.reset_sip_password(s, actor, seat_id, "hotline", password="fixture-pw")
        assert known == "fixture-pw" and second != first
        stored = s.get(Account, seat_id)
        assert stored is not None and stored.sip_digest == sip_digest("seat1001", "hotline", "fixture-pw")
