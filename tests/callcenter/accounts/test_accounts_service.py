"""Password hashing, authentication and the login throttle."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlmodel import SQLModel

from callcenter.accounts import service
from callcenter.accounts.models import Account
from callcenter.accounts.service import (
    LoginThrottle,
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
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_locks_a_username_and_address_for_the_window():
    clock = FakeClock()
    th = LoginThrottle(clock=clock)
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


def test_throttle_success_clears_and_per_address_limit():
    clock = FakeClock()
    th = LoginThrottle(clock=clock, max_failures_per_ip=10)
    for _ in range(4):
        th.record_failure("a", "1.1.1.1")
    th.record_success("a", "1.1.1.1")
    th.record_failure("a", "1.1.1.1")
    assert th.check("a", "1.1.1.1").allowed
    # Spraying many usernames from one address trips the address limit.
    for i in range(10):
        th.record_failure(f"user{i}", "2.2.2.2")
    assert not th.check("someone-else", "2.2.2.2").allowed
    assert th.check("someone-else", "3.3.3.3").allowed


def test_throttle_memory_is_bounded():
    clock = FakeClock()
    th = LoginThrottle(clock=clock, max_keys=100)
    for i in range(1000):
        th.record_failure(f"user{i}", f"10.0.{i // 250}.{i % 250}")
        clock.now += 1
    assert len(th._pairs) + len(th._ips) <= 102
