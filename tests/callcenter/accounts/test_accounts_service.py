"""Password hashing, authentication and the login throttle."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlmodel import SQLModel

from callcenter.accounts import service
from callcenter.accounts.models import Account
from callcenter.accounts.service import (
    DbLoginThrottle,
    RedisLoginThrottle,
    ThrottleLimits,
    authenticate,
    hash_password,
    verify_password,
)
from callcenter.config import Settings
from callcenter.database import get_engine, session_scope
from hotline.models import import_all_models

PASSWORD = "正确的密码-Correct horse 1"


@pytest.fixture(scope="module")
def known_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def settings(tmp_path, known_hash) -> Settings:
    s = Settings(data_dir=tmp_path, session_secret="s" * 32, _env_file=None)
    import_all_models()
    SQLModel.metadata.create_all(get_engine(s))
    with session_scope(s) as db:
        db.add(Account(username="seat1001", password_hash=known_hash, role="seat", extension="1001"))
        db.add(Account(username="gone", password_hash=known_hash, role="seat", active=False))
        db.commit()
    return s


def test_hash_and_verify(known_hash):
    assert known_hash.startswith("$argon2id$")
    assert PASSWORD not in known_hash
    assert verify_password(known_hash, PASSWORD)
    assert not verify_password(known_hash, PASSWORD + " ")
    assert not verify_password(known_hash, "")
    assert not verify_password("not a hash", PASSWORD)
    assert not verify_password("", PASSWORD)
    assert hash_password(PASSWORD) != known_hash  # salted


def test_authenticate(settings):
    with session_scope(settings) as db:
        acc = authenticate(db, "seat1001", PASSWORD)
        assert acc is not None and acc.username == "seat1001"
        assert authenticate(db, " seat1001 ", PASSWORD) is not None
        assert authenticate(db, "seat1001", "wrong") is None
        assert authenticate(db, "SEAT1001", PASSWORD) is None
        assert authenticate(db, "nobody", PASSWORD) is None
        assert authenticate(db, "gone", PASSWORD) is None  # inactive
        assert authenticate(db, "", PASSWORD) is None
        assert authenticate(db, "seat1001", "x" * 5000) is None
        assert authenticate(db, "u" * 500, PASSWORD) is None


def test_unknown_and_inactive_users_cost_a_verification(settings, monkeypatch):
    calls = []
    real = service.verify_password

    def counting(h, p):
        calls.append(h)
        return real(h, p)

    monkeypatch.setattr(service, "verify_password", counting)
    with session_scope(settings) as db:
        for user in ("nobody", "gone", "seat1001", ""):
            calls.clear()
            authenticate(db, user, "wrong")
            assert len(calls) == 1, user
            assert calls[0].startswith("$argon2id$")


def test_old_hash_is_upgraded_on_login(settings):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with session_scope(settings) as db:
        db.add(Account(username="old", password_hash=weak, role="seat"))
        db.commit()
    with session_scope(settings) as db:
        acc = authenticate(db, "old", PASSWORD)
        assert acc is not None
        assert acc.password_hash != weak
        assert not service.needs_rehash(acc.password_hash)
    with session_scope(settings) as db:
        assert authenticate(db, "old", PASSWORD) is not None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["database", "redis"])
def make_throttle(request, settings):
    """Both stores the throttle lives in: the database (default) and Redis (when configured)."""

    def make(clock: FakeClock, **limits: float) -> DbLoginThrottle | RedisLoginThrottle:
        lim = ThrottleLimits(**limits)  # type: ignore[arg-type]
        if request.param == "database":
            return DbLoginThrottle(settings, lim, clock=clock)
        url = request.getfixturevalue("redis_url")
        th = RedisLoginThrottle(url, lim, clock=clock)
        th.redis.flushdb()  # the server is shared by the session's tests
        return th

    return make


def test_throttle_locks_a_username_and_address_for_the_window(make_throttle):
    clock = FakeClock()
    th = make_throttle(clock)
    for _ in range(4):
        th.record_failure("seat1001", "10.0.0.5")
        assert th.check("seat1001", "10.0.0.5").allowed
    clock.now += 60
    th.record_failure("Seat1001", "10.0.0.5")  # the same user, however typed
    d = th.check("seat1001", "10.0.0.5")
    assert not d.allowed
    assert d.retry_after == 240  # until the oldest failure leaves the 5-minute window
    assert d.retry_after_minutes == 4
    # Other pairs are not affected.
    assert th.check("seat1001", "10.0.0.6").allowed
    assert th.check("seat1002", "10.0.0.5").allowed
    clock.now += 240
    assert th.check("seat1001", "10.0.0.5").allowed


def test_another_accounts_success_flushes_nothing(make_throttle):
    clock = FakeClock()
    th = make_throttle(clock)
    for _ in range(5):
        th.record_failure("seat1001", "10.0.0.5")
    # Someone else logs in from the same address, and the owner from another one.
    th.record_success("mallory", "10.0.0.5")
    th.record_success("seat1001", "10.0.0.99")
    assert not th.check("seat1001", "10.0.0.5").allowed
    # Only the account's own success from that address clears its failures there.
    th.record_success("seat1001", "10.0.0.5")
    assert th.check("seat1001", "10.0.0.5").allowed


def test_many_addresses_guessing_one_account_are_throttled_together(make_throttle):
    clock = FakeClock()
    th = make_throttle(clock, per_account=20)
    # One failure from each of many addresses: no pair is near its limit ...
    for i in range(20):
        assert th.check("seat1001", f"10.1.{i}.1").allowed
        th.record_failure("seat1001", f"10.1.{i}.1")
    # ... but the account's budget is spent, from any address, and a flood of other keys
    # (the old in-process store forgot everything when full) does not give it back.
    for i in range(300):
        th.record_failure(f"spray{i}", f"10.2.{i // 250}.{i % 250}")
    d = th.check("seat1001", "10.9.9.9")
    assert not d.allowed and d.retry_after == 300
    assert th.check("seat1002", "10.9.9.9").allowed


def test_one_bad_user_does_not_lock_an_office_out(make_throttle):
    clock = FakeClock()
    th = make_throttle(clock)
    office = "203.0.113.7"  # every seat behind the office's NAT
    for i in range(40):  # one user typing wrong passwords, others mistyping now and then
        th.record_failure("seat1001" if i < 10 else f"seat{2000 + i % 8}", office)
    assert not th.check("seat1001", office).allowed
    assert th.check("seat1002", office).allowed  # 40 failures: under the address's ceiling
    # Spraying usernames from one address reaches the address's ceiling.
    for i in range(10):
        th.record_failure(f"user{i}", office)
    d = th.check("seat1002", office)
    assert not d.allowed and d.retry_after == 300
    assert th.check("seat1002", "198.51.100.1").allowed


def test_an_ipv6_client_counts_by_its_64_prefix(make_throttle):
    clock = FakeClock()
    th = make_throttle(clock)
    for i in range(5):  # a new address of the same /64 for every guess
        th.record_failure("seat1001", f"2001:db8:1:2::{i + 1:x}")
    assert not th.check("seat1001", "2001:db8:1:2:ffff::1").allowed
    assert th.check("seat1001", "2001:db8:1:3::1").allowed


def test_the_database_throttle_survives_a_restart_and_forgets_old_failures(settings):
    from sqlmodel import select

    from callcenter.accounts.models import LoginFailure

    clock = FakeClock()
    for _ in range(5):
        DbLoginThrottle(settings, clock=clock).record_failure("seat1001", "10.0.0.5")
    assert not DbLoginThrottle(settings, clock=clock).check("seat1001", "10.0.0.5").allowed
    clock.now += 301
    DbLoginThrottle(settings, clock=clock).record_failure("other", "10.0.0.6")
    with session_scope(settings) as db:
        assert len(db.exec(select(LoginFailure)).all()) == 3  # the old rows are gone
