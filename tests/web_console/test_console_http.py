"""HTTP side of the seat console: login, CSRF, throttle, sessions, the role table."""

from __future__ import annotations

from fastapi import Depends
from sqlmodel import select

from callcenter.accounts.models import Account
from callcenter.accounts.service import hash_password
from callcenter.database import session_scope
from web_console import access, deps, sessions
from web_console.app import SESSION_COOKIE, create_app

from .test_permissions import declared


def _set_account(settings, username: str, **fields) -> None:
    with session_scope(settings) as s:
        acc = s.exec(select(Account).where(Account.username == username)).one()
        for k, v in fields.items():
            setattr(acc, k, v)
        s.add(acc)
        s.commit()


# --- unauthenticated access ----------------------------------------------------------------


def test_healthz_needs_no_session(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok"}


def test_pages_redirect_to_login_and_apis_answer_401(client):
    for path in ("/", "/console"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/login"
    r = client.get("/api/me")
    assert r.status_code == 401
    assert r.json() == {"detail": "not authenticated"}
    r = client.post("/logout", data={"csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def _route_paths(routes) -> set[str]:
    return {r.path for r in declared(routes)}


def test_every_route_is_public_or_in_the_role_table(app):
    paths = _route_paths(app.routes)
    assert {"/", "/login", "/console", "/ws/console", "/healthz"} <= paths
    assert paths, "no routes?"
    unlisted = paths - set(access.ROUTE_ROLES) - access.PUBLIC_ROUTES
    assert not unlisted, f"routes without an access rule: {unlisted}"
    # Beyond login and health, public routes authenticate otherwise (provider signatures, signed
    # links, API keys); each is tested where it is defined.
    assert {"/login", "/healthz"} <= access.PUBLIC_ROUTES


def test_protected_route_missing_from_table_is_refused(db, bus, web):
    # Fail closed: a route added to `protected` without a table entry answers 403.
    app = create_app(db, bus)

    @app.get("/api/unlisted", dependencies=[Depends(deps.authorize)])
    def unlisted():
        return {"ok": True}

    with web.TestClient(app) as c:
        assert web.login(c, "seat1001").status_code == 303
        assert c.get("/api/unlisted").status_code == 403


# --- login ---------------------------------------------------------------------------------


def test_login_page_is_chinese_with_csrf_and_security_headers(client, web):
    r = client.get("/login")
    assert r.status_code == 200
    assert '<html lang="zh-CN">' in r.text
    assert "座席登录" in r.text
    assert web.csrf(r.text)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_login_success_sets_a_strict_httponly_shift_long_cookie(client, web):
    r = web.login(client, "seat1001")
    assert r.status_code == 303
    assert r.headers["location"] == "/console"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=43200" in cookie
    assert "secure" not in cookie  # not production
    page = client.get("/console")
    assert page.status_code == 200
    assert "张丽" in page.text and ">1001<" in page.text
    assert 'id="conn"' in page.text and 'id="pop-area"' in page.text
    assert client.get("/api/me").json() == {
        "username": "seat1001",
        "display_name": "张丽",
        "role": "seat",
        "extension": "1001",
    }
    # Logged in, / and /login lead to the console.
    assert client.get("/", follow_redirects=False).headers["location"] == "/console"
    assert client.get("/login", follow_redirects=False).headers["location"] == "/console"


def test_production_cookie_is_secure(db, bus, web):
    db.production = True
    with web.TestClient(create_app(db, bus), base_url="https://testserver") as c:
        r = web.login(c, "seat1001")
        assert r.status_code == 303
        assert "secure" in r.headers["set-cookie"].lower()
        assert "strict-transport-security" in r.headers


def test_hsts_only_over_tls(db, bus, web):
    """Production over plain http (a misconfigured proxy) sends no HSTS; the cookie stays Secure."""
    db.production = True
    with web.TestClient(create_app(db, bus), base_url="http://testserver") as c:
        r = c.get("/login")
        assert "strict-transport-security" not in r.headers
        assert c.get("/healthz").json().keys() <= {"status", "database", "engine"}


def test_login_failures_give_one_message(client, web):
    for username, password in (
        ("seat1001", "wrong"),
        ("nobody", "whatever"),
        ("gone", web.password("gone")),  # inactive
    ):
        r = web.login(client, username, password)
        assert r.status_code == 401, username
        assert "用户名或密码错误，或账号已停用。" in r.text
        assert client.get("/console", follow_redirects=False).status_code == 303


def test_login_missing_fields(client, web):
    token = web.csrf(client.get("/login").text)
    r = client.post("/login", data={"username": "", "password": "", "csrf": token})
    assert r.status_code == 400
    assert "请输入用户名和密码" in r.text


def test_login_throttle_after_five_failures(client, web):
    for _ in range(5):
        assert web.login(client, "seat1001", "wrong").status_code == 401
    # Even the right password is refused now, with a clear message.
    r = web.login(client, "seat1001")
    assert r.status_code == 429
    assert "登录失败次数过多，请 5 分钟后再试。" in r.text
    assert 240 < int(r.headers["Retry-After"]) <= 300
    # Another username from the same address is not locked by it, and its successful login
    # does not give the locked account its guesses back.
    assert web.login(client, "seat1002").status_code == 303
    other = web.TestClient(client.app)
    r = web.login(other, "seat1001")
    assert r.status_code == 429 and "Retry-After" in r.headers
    other.get("/login?lang=en")
    r = web.login(other, "seat1001")
    assert "Too many failed logins. Please try again in 5 min." in r.text


def test_login_without_or_with_wrong_csrf_is_rejected(client, web):
    client.get("/login")
    r = client.post(
        "/login", data={"username": "seat1001", "password": web.password("seat1001")}, follow_redirects=False
    )
    assert r.status_code == 403
    assert "页面已过期" in r.text
    r = client.post(
        "/login",
        data={"username": "seat1001", "password": web.password("seat1001"), "csrf": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_csrf_token_of_another_session_is_rejected(app, web):
    with web.TestClient(app) as attacker, web.TestClient(app) as victim:
        token = web.csrf(attacker.get("/login").text)
        victim.get("/login")
        r = victim.post(
            "/login",
            data={"username": "seat1001", "password": web.password("seat1001"), "csrf": token},
            follow_redirects=False,
        )
        assert r.status_code == 403


def test_session_id_changes_at_login(client, web):
    client.get("/login")
    before = client.cookies[SESSION_COOKIE]
    web.login(client, "seat1001")
    after = client.cookies[SESSION_COOKIE]
    assert before != after


# --- logout and session validity -----------------------------------------------------------


def test_logout_needs_csrf_then_ends_the_session_for_good(client, web):
    web.login(client, "seat1001")
    stolen = client.cookies[SESSION_COOKIE]
    r = client.post("/logout", data={"csrf": "nope"}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/console").status_code == 200  # still logged in
    token = web.csrf(client.get("/console").text)
    r = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "您已退出登录" in client.get("/login").text
    assert client.get("/console", follow_redirects=False).status_code == 303
    # Replaying the old cookie does not bring the session back.
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, stolen)
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_disabled_account_or_changed_password_ends_sessions(client, db, web):
    web.login(client, "seat1001")
    assert client.get("/api/me").status_code == 200
    _set_account(db, "seat1001", password_hash=hash_password("a new password"))
    assert client.get("/api/me").status_code == 401
    _set_account(db, "seat1001", password_hash=hash_password(web.password("seat1001")))
    web.login(client, "seat1001")
    assert client.get("/api/me").status_code == 200
    _set_account(db, "seat1001", active=False)
    assert client.get("/api/me").status_code == 401


def test_session_lasts_one_shift(client, monkeypatch, web):
    web.login(client, "seat1001")
    assert client.get("/api/me").status_code == 200
    real = sessions._now
    monkeypatch.setattr(sessions, "_now", lambda: real() + 12 * 3600 + 5)
    assert client.get("/api/me").status_code == 401


# --- roles ---------------------------------------------------------------------------------


def test_outlet_may_not_open_the_console(client, web):
    assert web.login(client, "outlet").status_code == 303
    r = client.get("/console")
    assert r.status_code == 403
    assert "无权访问" in r.text
    # Their home is the outlet page (dispatch).
    assert client.get("/", follow_redirects=False).headers["location"] == "/outlet"
    assert client.get("/api/me").status_code == 200  # every role may ask who it is


def test_supervisor_without_extension_sees_a_notice(client, web):
    assert web.login(client, "super").headers["location"] == "/wallboard"  # a supervisor's home
    r = client.get("/console")
    assert r.status_code == 200
    assert 'id="no-extension"' in r.text
    assert 'data-ext=""' in r.text


def test_display_name_is_escaped(client, db, web):
    _set_account(db, "seat1001", display_name='<script>alert("x")</script>')
    web.login(client, "seat1001")
    page = client.get("/console").text
    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


# --- language ------------------------------------------------------------------------------


def test_language_switch_is_remembered(client, web):
    r = client.get("/login?lang=en")
    assert '<html lang="en-GB">' in r.text and "Seat login" in r.text
    assert "Seat login" in client.get("/login").text
    web.login(client, "seat1001")
    page = client.get("/console").text
    assert "Seat console" in page and "Waiting for calls" in page
    assert "座席工作台" in client.get("/console?lang=zh").text
    assert "等待来电" in client.get("/console?lang=bogus").text
