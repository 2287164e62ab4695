"""Production is the default, and it refuses to serve with the demo password or weak secrets;
the product's data is owner-only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from hotline.demo import load_demo
from hotline.safety import demo_password_accounts, production_problems, secure_data

ROOT = Path(__file__).resolve().parents[2]


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env["CALLCENTER_DATA_DIR"] = str(settings.data_dir)
    env.update(extra)
    return env


def test_production_is_the_default():
    assert Settings(_env_file=None, _env_prefix="NOT_CALLCENTER_").production is True


def test_serve_refuses_the_demo_password_in_production(tmp_path):
    settings = set_settings(Settings(data_dir=tmp_path / "var", _env_file=None))
    migrate(settings)
    with session_scope(settings) as s:
        load_demo(s, residents=5, seat_contact_base_port=None, must_change_password=True)
    # As an operator runs it: no CALLCENTER_PRODUCTION at all, so production.
    proc = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "serve"],
        env=_env(settings, CALLCENTER_WEB_PORT="1"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "refusing to start in production" in proc.stderr
    assert "'admin' still accepts the demo password" in proc.stderr
    if os.geteuid() == 0:  # the engine and the console never serve as root in production
        assert "running as root" in proc.stderr
    # Once every account has its own password, the demo password is no reason any more.
    for name in demo_password_accounts(settings):
        out = subprocess.run(
            [sys.executable, "-m", "hotline.cli", "reset-password", name],
            env=_env(settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "temporary password" in out.stdout
    assert demo_password_accounts(settings) == []
    assert not any("demo password" in p for p in production_problems(settings))


def test_weak_secrets_and_a_password_less_redis_are_reasons(tmp_path):
    settings = set_settings(
        Settings(
            data_dir=tmp_path / "var",
            session_secret="changeme",
            ami_secret="short",
            redis_url="redis://127.0.0.1:6379/0",
            _env_file=None,
        )
    )
    migrate(settings)
    problems = "\n".join(production_problems(settings))
    assert "session_secret" in problems and "ami_secret" in problems
    assert "webhook_secret" not in problems  # generated: long and random
    assert "Redis URL carries no password" in problems


def test_the_demo_keeps_its_desk_phones_to_itself(tmp_path):
    """`callcenter load-demo` in production: no fixed desk-phone contacts on this machine."""
    settings = Settings(data_dir=tmp_path / "var", _env_file=None)
    subprocess.run(
        [sys.executable, "-m", "hotline.cli", "load-demo", "--residents", "3"],
        env=_env(settings),
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    )
    from sqlmodel import select

    from callcenter.accounts.models import Account

    set_settings(settings)
    with session_scope(settings) as s:
        seats = s.exec(select(Account).where(Account.extension != None)).all()  # noqa: E711
        assert seats and all(a.sip_contact == "" for a in seats if a.extension)
        assert all(a.must_change_password for a in seats)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_data_is_owner_only_and_old_files_are_fixed(tmp_path):
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "secrets.json").write_text("{}")
    (data / "secrets.json").chmod(0o644)
    (data / "attachments" / "ab").mkdir(parents=True)
    (data / "attachments").chmod(0o755)
    (data / "attachments" / "ab" / "photo.jpg").write_bytes(b"x")
    (data / "attachments" / "ab" / "photo.jpg").chmod(0o644)
    settings = set_settings(Settings(data_dir=data, _env_file=None))
    assert _mode(data / "secrets.json") == 0o600  # fixed on every load, not only when created
    old_umask = os.umask(0o022)
    try:
        migrate(settings)
        db = data / "callcenter.db"
        db.chmod(0o644)
        secure_data(settings)
        assert _mode(data) == 0o700
        assert _mode(db) == 0o600
        assert _mode(data / "attachments") == 0o700
        assert _mode(data / "attachments" / "ab") == 0o700
        assert _mode(data / "attachments" / "ab" / "photo.jpg") == 0o600
        # A new attachment is owner-only from the start, whatever the umask.
        from dispatch.attachments import folder

        fresh = tmp_path / "fresh"
        fresh_settings = Settings(data_dir=fresh, _env_file=None)
        assert _mode(folder(fresh_settings)) == 0o700
    finally:
        os.umask(old_umask)
