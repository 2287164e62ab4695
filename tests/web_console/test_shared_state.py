"""Several web workers behind one address share the login throttle and the logout list (Redis)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from callcenter.bus import InProcessBus
from tests.web_console.conftest import csrf_from, login
from web_console.app import SESSION_COOKIE, create_app


def _workers(db, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # the server is shared by the session's tests
    db.redis_url = redis_url
    return create_app(db, InProcessBus()), create_app(db, InProcessBus())


def test_logout_on_one_worker_ends_the_session_on_the_other(db, redis_url):
    a, b = _workers(db, redis_url)
    with TestClient(a) as wa, TestClient(b) as wb:
        assert login(wa, "seat1001").status_code == 303
        cookie = wa.cookies[SESSION_COOKIE]
        wb.cookies.set(SESSION_COOKIE, cookie)
        assert wb.get("/console", follow_redirects=False).status_code == 200
        r = wa.post("/logout", data={"csrf": csrf_from(wa.get("/console").text)}, follow_redirects=False)
        assert r.status_code == 303
        wb.cookies.clear()
        wb.cookies.set(SESSION_COOKIE, cookie)  # the old cookie, replayed on the other worker
        assert wb.get("/console", follow_redirects=False).status_code == 303


def test_failures_on_one_worker_throttle_the_other(db, redis_url):
    a, b = _workers(db, redis_url)
    with TestClient(a) as wa, TestClient(b) as wb:
        for _ in range(5):
            assert login(wa, "seat1001", "wrong-password").status_code == 401
        r = login(wb, "seat1001")  # the right password, but on the other worker: still locked
        assert r.status_code == 429
        assert login(wb, "seat1002").status_code == 303  # another username from the address


def test_redis_throttle_window_slides(redis_url):
    from callcenter.accounts.service import RedisLoginThrottle, ThrottleLimits

    now = [1000.0]
    t = RedisLoginThrottle(redis_url, ThrottleLimits(window=60, per_pair=3), clock=lambda: now[0])
    t.redis.flushdb()
    for _ in range(3):
        assert t.check("Zhang", "10.0.0.9").allowed
        t.record_failure("zhang", "10.0.0.9")  # usernames fold case
        now[0] += 10
    d = t.check("ZHANG", "10.0.0.9")
    assert not d.allowed and d.retry_after == 30  # the oldest failure (t=1000) leaves at 1060
    assert t.check("zhang", "10.0.0.10").allowed
    now[0] = 1061.0
    assert t.check("zhang", "10.0.0.9").allowed
    t.record_failure("zhang", "10.0.0.9")
    t.record_success("zhang", "10.0.0.9")
    assert t.redis.zcard(t._keys("zhang", "10.0.0.9")[0][0]) == 0


def test_an_import_started_on_one_worker_is_followed_on_the_other(db, redis_url):
    from sqlmodel import select

    from callcenter.database import session_scope
    from callcenter.directory.models import Jurisdiction

    a, b = _workers(db, redis_url)
    with TestClient(a) as wa, TestClient(b) as wb:
        assert login(wa, "admin").status_code == 303
        wb.cookies.set(SESSION_COOKIE, wa.cookies[SESSION_COOKIE])
        csv = "名称\n" + "".join(f"街道{i}\n" for i in range(120))
        r = wa.post(
            "/admin/import",
            data={"csrf": csrf_from(wa.get("/admin/basic").text), "kind": "jurisdictions"},
            files={"file": ("j.csv", csv.encode(), "text/csv")},
            follow_redirects=False,
        )
        job_id = r.headers["location"].rsplit("/", 1)[1]
        for _ in range(200):  # polled on the worker that is not running it
            job = wb.get(f"/api/import/{job_id}").json()
            if job["state"] != "running":
                break
            time.sleep(0.05)
        assert job["state"] == "done" and job["done"] == job["total"] == 120
        assert job["report"]["imported"] == 120
        assert 'id="import-progress"' in wb.get(f"/admin/import/{job_id}").text
    with session_scope(db) as s:
        assert len(s.exec(select(Jurisdiction)).all()) == 120


def test_an_import_whose_worker_died_shows_as_failed(redis_url):
    from callcenter.directory.imports import STALE_S, ImportJob, ImportJobs, RedisImportJobs

    now = [1000.0]
    for jobs in (ImportJobs(clock=lambda: now[0]), RedisImportJobs(redis_url, clock=lambda: now[0])):
        jobs.save(ImportJob(id=f"j-{type(jobs).__name__}", kind="residents", filename="r.csv", owner="admin"))
        now[0] += STALE_S - 1
        assert jobs.get(f"j-{type(jobs).__name__}").state == "running"
        now[0] += 2  # no progress for longer than STALE_S: its worker stopped mid-way
        job = jobs.get(f"j-{type(jobs).__name__}")
        assert job.state == "failed" and "nothing was imported" in job.error
        assert jobs.get("unknown") is None
