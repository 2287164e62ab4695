"""A temporary password must be replaced before anything else."""

from __future__ import annotations

from sqlmodel import select
from starlette.websockets import WebSocketDisconnect

from callcenter.accounts.models import Account
from callcenter.accounts.service import verify_password
from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope

from .conftest import csrf_from, password_of
from .test_console_http import _set_account

NEW = "长城永不倒-2026"


def test_temporary_password_must_be_changed_first(client, web, db):
    _set_account(db, "seat1001", must_change_password=True)
    r = web.login(client, "seat1001")
    assert r.status_code == 303 and r.headers["location"] == "/password"
    assert client.get("/console", follow_redirects=False).headers["location"] == "/password"
    assert client.post("/api/seat/pause", json={"paused": False}).status_code == 403
    assert client.get("/api/me").status_code == 200
    try:
        with client.websocket_connect("/ws/console") as ws:
            ws.receive_json()
        raise AssertionError("the socket opened")
    except WebSocketDisconnect as closed:
        assert closed.code == 4403

    token = csrf_from(client.get("/password").text)
    current = password_of("seat1001")
    for form, error in (
        ({"current": "wrong", "new": NEW, "confirm": NEW}, "当前密码不正确"),
        ({"current": current, "new": "short", "confirm": "short"}, "至少需要 10 位"),
        ({"current": current, "new": NEW, "confirm": NEW + "x"}, "不一致"),
        ({"current": current, "new": "SEAT1001", "confirm": "SEAT1001"}, "至少需要 10 位"),
        ({"current": current, "new": current, "confirm": current}, "不能与当前密码或用户名相同"),
    ):
        r = client.post("/password", data={"csrf": token, **form})
        assert r.status_code == 422 and error in r.text, form
    assert client.post("/password", data={"current": current, "new": NEW, "confirm": NEW}).status_code == 403

    other = web.TestClient(client.app)
    assert web.login(other, "seat1001").status_code == 303  # a second session of the old password
    r = client.post(
        "/password",
        data={"csrf": token, "current": current, "new": NEW, "confirm": NEW},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console"
    assert client.get("/console").status_code == 200  # this session goes on
    assert other.get("/console", follow_redirects=False).headers["location"] == "/login"  # that one ended
    with session_scope(db) as s:
        acc = s.exec(select(Account).where(Account.username == "seat1001")).one()
        assert not acc.must_change_password and verify_password(acc.password_hash, NEW)
        actions = [e.action for e in s.exec(select(AuditEntry).where(AuditEntry.actor == "seat1001"))]
        assert "account.password_change" in actions and actions.count("login") == 2


def test_wrong_current_passwords_are_throttled_like_logins(client, web, db):
    # A stolen session cookie is no unthrottled way to guess the account's password.
    assert web.login(client, "seat1001").status_code == 303
    token = csrf_from(client.get("/password").text)
    for i in range(5):
        r = client.post("/password", data={"csrf": token, "current": f"guess{i}", "new": NEW, "confirm": NEW})
        assert r.status_code == 422
    right = {"csrf": token, "current": password_of("seat1001"), "new": NEW, "confirm": NEW}
    r = client.post("/password", data=right)
    assert r.status_code == 429 and "当前密码输错次数过多，请 5 分钟后再试。" in r.text
    assert 240 < int(r.headers["Retry-After"]) <= 300
    r = client.post("/password?lang=en", data=right)
    assert r.status_code == 429 and "Too many wrong current passwords. Please try again in 5 min." in r.text
    # The same counters guard the login form, and the password did not change.
    assert web.login(web.TestClient(client.app), "seat1001").status_code == 429
    with session_scope(db) as s:
        acc = s.exec(select(Account).where(Account.username == "seat1001")).one()
        assert verify_password(acc.password_hash, password_of("seat1001"))
