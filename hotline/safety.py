"""What must hold before the product serves in production, and the file modes of its data.

Production is the default (``Settings.production``); only ``callcenter demo`` and the tests turn
it off. In production ``callcenter serve`` refuses to start, with the reasons and a non-zero exit,
while an account still accepts the published demo password, a secret is empty or a known
default, the Redis bus has no password, or the process runs as root (run it as the unprivileged
service user, e.g. with the systemd unit in docs/deploy/).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlparse

from sqlmodel import select

from callcenter.accounts.models import Account
from callcenter.accounts.service import verify_password
from callcenter.config import SECRET_KEYS, Settings
from callcenter.database import session_scope
from hotline.demo import DEMO_PASSWORD

# Values people paste from examples; a secret shorter than this is a guessable one.
KNOWN_DEFAULTS = frozenset(
    {"changeme", "change-me", "secret", "password", "callcenter", "admin", DEMO_PASSWORD}
)
MIN_SECRET_LEN = 16


def weak_secrets(settings: Settings) -> list[str]:
    weak = []
    for key in SECRET_KEYS:
        value = str(getattr(settings, key) or "")
        if len(value) < MIN_SECRET_LEN or value.lower() in KNOWN_DEFAULTS:
            weak.append(key)
    return weak


def demo_password_accounts(settings: Settings) -> list[str]:
    """Active accounts whose password is still the published demo password."""
    with session_scope(settings) as s:
        accounts = s.exec(select(Account).where(Account.active)).all()
        return [a.username for a in accounts if verify_password(a.password_hash, DEMO_PASSWORD)]


def production_problems(settings: Settings) -> list[str]:
    """Why this installation must not serve in production (empty: it may)."""
    problems = [f"the secret {key} is empty, too short or a known default" for key in weak_secrets(settings)]
    if settings.redis_url and not urlparse(settings.redis_url).password:
        problems.append("the Redis URL carries no password (redis://:PASSWORD@host:6379/0)")
    if os.geteuid() == 0:
        problems.append("running as root: run it as the unprivileged service user (docs/deploy/)")
    problems += [
        f"the account {name!r} still accepts the demo password (callcenter reset-password {name})"
        for name in demo_password_accounts(settings)
    ]
    return problems


# --- owner-only data --------------------------------------------------------------------------


def _fix(path: Path, mode: int) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    if stat.S_IMODE(st.st_mode) & ~mode:
        path.chmod(stat.S_IMODE(st.st_mode) & mode)


def secure_data(settings: Settings) -> None:
    """The data directory, the SQLite database, attachments and secrets: owner-only (0700
    folders, 0600 files), existing ones fixed too (call it again after ``migrate`` made the
    database). New ones are created so (config.py, dispatch/attachments.py). Asterisk's instance
    (recordings, voicemail: its user and group only) is asterisk_conf.process's business; no
    process-wide umask here, since the prompts the app writes there must stay readable to it."""
    data = settings.data_dir
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    _fix(data, 0o711 if (data / "asterisk").is_dir() else 0o700)  # Asterisk's user passes through
    _fix(data / "secrets.json", 0o600)
    url = settings.resolved_database_url()
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            _fix(db.with_name(db.name + suffix), 0o600)
    attachments = data / "attachments"
    if attachments.is_dir():
        _fix(attachments, 0o700)
        for root, dirs, files in os.walk(attachments):
            for d in dirs:
                _fix(Path(root) / d, 0o700)
            for f in files:
                _fix(Path(root) / f, 0o600)
