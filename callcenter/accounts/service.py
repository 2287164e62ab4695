"""Passwords, authentication and the login throttle.

Passwords are hashed with Argon2id (argon2-cffi's defaults). ``authenticate`` spends the same
hashing work on an unknown or inactive user as on a known one, so response time does not tell
which usernames exist. The login throttle is kept in the database, or in Redis when one is
configured, so every web worker and a restart count the same failures.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete
from sqlmodel import Session, col, select

from callcenter.accounts.models import Account, LoginFailure
from callcenter.config import Settings
from callcenter.database import session_scope

log = logging.getLogger(__name__)

_hasher = PasswordHasher()

# Inputs beyond these lengths are refused before any hashing (no work for absurd payloads).
MAX_USERNAME_LEN = 64
MAX_PASSWORD_LEN = 1024


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for a mismatch or a broken hash."""
    try:
        return _hasher.verify(password_hash, password)
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


class _Dummy:
    """A hash to verify against when the user is unknown, made once on first use."""

    value: str | None = None
    lock = threading.Lock()

    @classmethod
    def get(cls) -> str:
        if cls.value is None:
            with cls.lock:
                if cls.value is None:
                    cls.value = _hasher.hash("not-a-real-password: timing equaliser")
        return cls.value


def authenticate(session: Session, username: str, password: str) -> Account | None:
    """The active account with this username and password, else None.

    Unknown and inactive users cost one Argon2 verification too. A hash made with older
    parameters is upgraded on a successful login (committed on ``session``).
    """
    username = (username or "").strip()
    password = password or ""
    if not username or len(username) > MAX_USERNAME_LEN or len(password) > MAX_PASSWORD_LEN:
        verify_password(_Dummy.get(), password[:MAX_PASSWORD_LEN])
        return None
    account = session.exec(select(Account).where(Account.username == username)).first()
    if account is None:
        verify_password(_Dummy.get(), password)
        return None
    ok = verify_password(account.password_hash, password)
    if not ok or not account.active:
        return None
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
        session.add(account)
        session.commit()
        session.refresh(account)
    return account


@dataclass
class ThrottleDecision:
    allowed: bool
    retry_after: int = 0  # seconds until a new attempt is accepted

    @property
    def retry_after_minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


@dataclass(frozen=True)
class ThrottleLimits:
    """Failures allowed within ``window`` seconds: for one account from one address, for one
    address (a whole office behind one NAT shares it, so the ceiling is higher), and for one
    account from any address (many addresses guessing one password)."""

    window: float = 300.0
    per_pair: int = 5
    per_address: int = 50
    per_account: int = 20

    @classmethod
    def of(cls, settings: Settings) -> ThrottleLimits:
        return cls(
            window=float(settings.login_window_s),
            per_pair=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
            per_account=settings.login_max_failures_per_account,
        )


def throttle_address(ip: str) -> str:
    """The address a failure counts against: IPv4 as is, IPv6 by its /64 (one subscriber holds
    the whole prefix, so its addresses are one client)."""
    try:
        addr = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return (ip or "")[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def _scopes(username: str, ip: str, limits: ThrottleLimits) -> tuple[tuple[str, int], ...]:
    """The three counters a failure adds to, each with its limit; the pair's comes first."""
    user = (username or "").strip().casefold()[:MAX_USERNAME_LEN]
    addr = throttle_address(ip)
    return (
        (f"pair:{addr}:{user}", limits.per_pair),
        (f"addr:{addr}", limits.per_address),
        (f"user:{user}", limits.per_account),
    )


def _decision(waits: list[float]) -> ThrottleDecision:
    wait = max(waits, default=0.0)
    if wait > 0:
        return ThrottleDecision(False, max(1, math.ceil(wait)))
    return ThrottleDecision(True)


class DbLoginThrottle:
    """The login throttle kept in the database (``LoginFailure``), so every web worker and a
    restart see the same counts. A failure adds a row to each of its three counters; a
    successful login forgets only that account's failures from that address, so neither another
    account's login nor a crowd of addresses empties the other counters. Rows older than the
    window are deleted as new failures come in."""

    def __init__(
        self, settings: Settings, limits: ThrottleLimits | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.limits = limits or ThrottleLimits.of(settings)
        self.clock = clock

    def check(self, username: str, ip: str) -> ThrottleDecision:
        now = self.clock()
        since = now - self.limits.window
        waits = []
        with session_scope(self.settings) as db:
            for key, limit in _scopes(username, ip, self.limits):
                # The limit-th newest failure: the scope opens again when it leaves the window.
                nth = db.exec(
                    select(LoginFailure.at)
                    .where(LoginFailure.key == key, LoginFailure.at > since)
                    .order_by(col(LoginFailure.at).desc())
                    .offset(max(0, limit - 1))
                    .limit(1)
                ).first()
                if nth is not None:
                    waits.append(nth + self.limits.window - now)
        return _decision(waits)

    def record_failure(self, username: str, ip: str) -> None:
        now = self.clock()
        with session_scope(self.settings) as db:
            db.execute(delete(LoginFailure).where(col(LoginFailure.at) <= now - self.limits.window))
            for key, _limit in _scopes(username, ip, self.limits):
                db.add(LoginFailure(key=key, at=now))
            db.commit()

    def record_success(self, username: str, ip: str) -> None:
        pair = _scopes(username, ip, self.limits)[0][0]
        with session_scope(self.settings) as db:
            db.execute(delete(LoginFailure).where(col(LoginFailure.key) == pair))
            db.commit()


class RedisLoginThrottle:
    """The same rule as :class:`DbLoginThrottle`, kept in Redis when one is configured.

    Each counter is a sorted set of failure times (wall clock: the workers' monotonic clocks
    differ), expiring with the window, so Redis holds nothing for addresses that stopped trying.
    """

    PREFIX = "cc:login-fail:"

    def __init__(
        self, url: str, limits: ThrottleLimits | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        import redis  # loaded only when the throttle lives in Redis (several web workers)

        self.redis = redis.Redis.from_url(url, socket_timeout=2)
        self.limits = limits or ThrottleLimits()
        self.clock = clock

    def _keys(self, username: str, ip: str) -> list[tuple[str, int]]:
        return [(self.PREFIX + key, limit) for key, limit in _scopes(username, ip, self.limits)]

    def check(self, username: str, ip: str) -> ThrottleDecision:
        now = self.clock()
        window = self.limits.window
        scopes = self._keys(username, ip)
        pipe = self.redis.pipeline()
        for key, limit in scopes:
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zrevrange(key, limit - 1, limit - 1, withscores=True)  # the limit-th newest
        replies = pipe.execute()
        return _decision([nth[0][1] + window - now for nth in replies[1::2] if nth])

    def record_failure(self, username: str, ip: str) -> None:
        now = self.clock()
        member = f"{now:.6f}:{secrets.token_hex(4)}"  # two failures in one microsecond stay two
        pipe = self.redis.pipeline()
        for key, _limit in self._keys(username, ip):
            pipe.zadd(key, {member: now})
            pipe.expire(key, math.ceil(self.limits.window))
        pipe.execute()

    def record_success(self, username: str, ip: str) -> None:
        self.redis.delete(self._keys(username, ip)[0][0])
