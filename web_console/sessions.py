"""Login sessions: what the cookie holds, how a session ends, and the CSRF token.

Sessions are Starlette's signed cookie (see app.py). What the cookie holds is readable by its
holder, so it carries only ids and tokens: ``uid`` (account id), ``sid`` (random id of this login,
revoked on logout), ``iat`` (login time; a session lives one shift at most), ``pwfp`` (an HMAC of
the password hash: changing the password ends every session), ``csrf`` and ``lang``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from typing import Any

import redis
from fastapi import Request
from sqlmodel import col, select

from callcenter.accounts.models import Account
from callcenter.config import Settings
from callcenter.database import session_scope

SESSION_MAX_AGE = 12 * 3600  # one shift


class SessionRevocations:
    """Session ids ended by logout, kept until they would have expired anyway (per process)."""

    def __init__(self) -> None:
        self._ids: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, sid: str, until: float) -> None:
        now = time.time()
        with self._lock:
            for k in [k for k, exp in self._ids.items() if exp < now]:
                del self._ids[k]
            self._ids[sid] = until

    def __contains__(self, sid: str) -> bool:
        with self._lock:
            exp = self._ids.get(sid)
        return exp is not None and exp >= time.time()


class RedisSessionRevocations:
    """Logouts shared by every web worker: a key per ended session, expiring with it."""

    PREFIX = "cc:revoked:"

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=2)

    def revoke(self, sid: str, until: float) -> None:
        ttl = math.ceil(until - time.time())
        if ttl > 0:
            self.redis.set(self.PREFIX + sid, b"1", ex=ttl)

    def __contains__(self, sid: str) -> bool:
        return bool(self.redis.exists(self.PREFIX + sid))


def _now() -> float:
    """The wall clock, for session ages (a seam for tests)."""
    return time.time()


def client_ip(request: Request) -> str:
    """The peer's address, for the audit log and the login throttle."""
    return request.client.host if request.client else ""


def password_fingerprint(settings: Settings, password_hash: str) -> str:
    key = hashlib.sha256(("pwfp:" + settings.session_secret).encode()).digest()
    return hmac.new(key, password_hash.encode(), hashlib.sha256).hexdigest()[:24]


def csrf_token(session: dict[str, Any]) -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: dict[str, Any], submitted: str | None) -> bool:
    expected = session.get("csrf")
    if not (expected and submitted):
        return False
    return hmac.compare_digest(str(expected).encode(), str(submitted).encode())


def _session_uid(state: Any, session: dict[str, Any]) -> int | None:
    """The account id of a session that is well-formed, within its age and not logged out."""
    uid, sid, iat = session.get("uid"), session.get("sid"), session.get("iat")
    if not isinstance(uid, int) or not isinstance(sid, str) or not isinstance(iat, int | float):
        return None
    now = _now()
    if now - iat > SESSION_MAX_AGE or iat > now + 60:
        return None
    if sid in state.revocations:
        return None
    return uid


def _still_valid(settings: Settings, account: Account | None, session: dict[str, Any]) -> Account | None:
    if account is None or not account.active:
        return None
    expected = password_fingerprint(settings, account.password_hash)
    if not hmac.compare_digest(str(session.get("pwfp", "")).encode(), expected.encode()):
        return None
    return account


def resolve_account(state: Any, session: dict[str, Any]) -> Account | None:
    """The account a session belongs to, if the session is still valid. Blocking (database)."""
    uid = _session_uid(state, session)
    if uid is None:
        return None
    settings: Settings = state.settings
    with session_scope(settings) as db:
        account = db.get(Account, uid)
    return _still_valid(settings, account, session)


def resolve_accounts(state: Any, sessions: list[dict[str, Any]]) -> list[Account | None]:
    """``resolve_account`` for many sessions in one query (every open socket's, each interval).
    Blocking (database)."""
    uids = [_session_uid(state, session) for session in sessions]
    wanted = {uid for uid in uids if uid is not None}
    settings: Settings = state.settings
    accounts: dict[int, Account] = {}
    if wanted:
        with session_scope(settings) as db:
            for account in db.exec(select(Account).where(col(Account.id).in_(wanted))):
                accounts[account.id or 0] = account
    return [
        None if uid is None else _still_valid(settings, accounts.get(uid), session)
        for uid, session in zip(uids, sessions, strict=True)
    ]


def start_session(request: Request, account: Account) -> None:
    """A fresh session for a login (nothing from before it survives except the language)."""
    session = request.session
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session.update(
        uid=account.id,
        sid=secrets.token_urlsafe(16),
        iat=int(_now()),
        pwfp=password_fingerprint(request.app.state.settings, account.password_hash),
        csrf=secrets.token_urlsafe(32),
    )


def end_session(request: Request) -> None:
    session = request.session
    sid, iat = session.get("sid"), session.get("iat")
    if isinstance(sid, str) and isinstance(iat, int | float):
        request.app.state.revocations.revoke(sid, iat + SESSION_MAX_AGE)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
