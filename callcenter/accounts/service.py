"""Passwords, authentication and the login throttle.

Passwords are hashed with Argon2id (argon2-cffi's defaults). ``authenticate`` spends the same
hashing work on an unknown or inactive user as on a known one, so response time does not tell
which usernames exist. The throttle is in memory, per process: a restart or a second worker
starts from zero, which is acceptable for slowing down password guessing at a call center's
scale (a shared store can replace it behind the same methods).
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, select

from callcenter.accounts.models import Account

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


@dataclass
class LoginThrottle:
    """Failed logins per (username, client address) and per client address, in a sliding window.

    ``max_failures`` failures for one username from one address within ``window`` seconds lock
    that pair until the oldest failure leaves the window; ``max_failures_per_ip`` does the same
    for an address trying many usernames. A successful login clears the pair's failures.
    """

    max_failures: int = 5
    window: float = 300.0
    max_failures_per_ip: int = 30
    max_keys: int = 50_000
    clock: Callable[[], float] = time.monotonic
    _pairs: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _ips: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _key(username: str, ip: str) -> tuple[str, str]:
        return ((username or "").strip().casefold()[:MAX_USERNAME_LEN], ip or "")

    def _prune(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def _blocked_for(self, q: deque[float] | None, limit: int, now: float) -> float:
        if not q:
            return 0.0
        self._prune(q, now)
        if len(q) >= limit:
            return q[-limit] + self.window - now
        return 0.0

    def check(self, username: str, ip: str) -> ThrottleDecision:
        now = self.clock()
        with self._lock:
            wait = max(
                self._blocked_for(self._pairs.get(self._key(username, ip)), self.max_failures, now),
                self._blocked_for(self._ips.get(ip or ""), self.max_failures_per_ip, now),
            )
        if wait > 0:
            return ThrottleDecision(False, max(1, math.ceil(wait)))
        return ThrottleDecision(True)

    def record_failure(self, username: str, ip: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._pairs) + len(self._ips) > self.max_keys:
                self._sweep(now)
            self._pairs.setdefault(self._key(username, ip), deque()).append(now)
            self._ips.setdefault(ip or "", deque()).append(now)

    def record_success(self, username: str, ip: str) -> None:
        with self._lock:
            self._pairs.pop(self._key(username, ip), None)

    def _sweep(self, now: float) -> None:
        stores: tuple[dict[Any, deque[float]], ...] = (self._pairs, self._ips)
        for store in stores:
            for key in list(store):
                self._prune(store[key], now)
                if not store[key]:
                    del store[key]
        if len(self._pairs) + len(self._ips) > self.max_keys:
            # Under a flood of distinct keys keep memory bounded; forgetting is the lesser harm.
            log.warning("login throttle full; forgetting old failures")
            self._pairs.clear()
            self._ips.clear()


class RedisLoginThrottle:
    """The same rule as :class:`LoginThrottle`, kept in Redis so every web worker shares it.

    Each key is a sorted set of failure times (wall clock: the workers' monotonic clocks differ),
    expiring with the window, so Redis holds nothing for addresses that stopped trying.
    """

    PREFIX = "cc:login-fail:"

    def __init__(
        self,
        url: str,
        max_failures: int = 5,
        window: float = 300.0,
        max_failures_per_ip: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis  # loaded only when the throttle lives in Redis (several web workers)

        self.redis = redis.Redis.from_url(url, socket_timeout=2)
        self.max_failures = max_failures
        self.window = window
        self.max_failures_per_ip = max_failures_per_ip
        self.clock = clock

    def _keys(self, username: str, ip: str) -> tuple[str, str]:
        user, addr = LoginThrottle._key(username, ip)
        return f"{self.PREFIX}pair:{addr}:{user}", f"{self.PREFIX}ip:{addr}"

    def check(self, username: str, ip: str) -> ThrottleDecision:
        now = self.clock()
        pair, addr = self._keys(username, ip)
        pipe = self.redis.pipeline()
        for key, limit in ((pair, self.max_failures), (addr, self.max_failures_per_ip)):
            pipe.zremrangebyscore(key, "-inf", now - self.window)
            pipe.zrevrange(key, limit - 1, limit - 1, withscores=True)  # the limit-th newest
        replies = pipe.execute()
        wait = 0.0
        for nth in (replies[1], replies[3]):
            if nth:
                wait = max(wait, nth[0][1] + self.window - now)
        if wait > 0:
            return ThrottleDecision(False, max(1, math.ceil(wait)))
        return ThrottleDecision(True)

    def record_failure(self, username: str, ip: str) -> None:
        now = self.clock()
        member = f"{now:.6f}:{secrets.token_hex(4)}"  # two failures in one microsecond stay two
        pipe = self.redis.pipeline()
        for key in self._keys(username, ip):
            pipe.zadd(key, {member: now})
            pipe.expire(key, math.ceil(self.window))
        pipe.execute()

    def record_success(self, username: str, ip: str) -> None:
        self.redis.delete(self._keys(username, ip)[0])
