"""Account administration through the pages, with the audit log behind every change."""

from __future__ import annotations

import re

from sqlmodel import select

from callcenter.accounts.models import Account, QueueMembership, sip_digest
from callcenter.accounts.service import verify_password
from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue

from .conftest import csrf_from


def admin_client(client, web, db):
    with session_scope(db) as s:
        s.add(CallQueue(name="hotline", title="社区服务热线"))
        s.commit()
    assert web.login(client, "admin").status_code == 303
    return csrf_from(client.get("/admin/accounts").text)


def audit_actions(db) -> list[tuple[str, str, str]]:
    with session_scope(db) as s:
        return [(e.actor, e.action, e.target) for e in s.exec(select(AuditEntry).order_by(AuditEntry.id))]


def test_admin_creates_a_seat_and_the_engine_is_told(client, web, db, bus):
    token = admin_client(client, web, db)
    config = bus.subscribe("engine.config")
    xss = '<script>alert("x")</script>'
    r = client.post(
        "/admin/accounts",
        data={
            "csrf": token,
            "username": "seat1005",
            "display_name": xss,
            "role": "seat",
            "extension": "1005",
            "queues": ["hotline"],
        },
    )
    assert r.status_code == 201
    password = re.search(r'data-field="password">([^<]+)<', r.text).group(1)
    assert xss not in r.text and "&lt;script&gt;" in r.text
    # The phone's SIP account, with its password shown this once
    sip = sip_fields(r.text)
    assert sip["sip-username"] == "seat1005" and sip["sip-realm"] == "callcenter"
    assert len(sip["sip-password"]) >= 24 and sip["sip-password"] != password
    assert 'data-transport="udp"' in r.text and 'data-transport="tcp"' in r.text
    with session_scope(db) as s:
        seat = s.exec(select(Account).where(Account.username == "seat1005")).one()
        assert seat.extension == "1005" and seat.must_change_password
        assert verify_password(seat.password_hash, password)
        # Only the digest is stored, never the SIP password itself
        assert seat.sip_digest == sip_digest("seat1005", "callcenter", sip["sip-password"])
        assert sip["sip-password"] not in repr(seat.model_dump())
        assert [
            m.queue_name for m in s.exec(select(QueueMembership).where(QueueMembership.account_id == seat.id))
        ] == ["hotline"]
    assert config.queue.get_nowait()[1]["reason"] == "seat 1005 created"
    assert ("admin", "account.create", "seat1005") in audit_actions(db)


def sip_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-field="(sip-[a-z]+)">([^<]+)<', page))


def test_admin_resets_a_seats_sip_password_shown_once(client, web, db, bus):
    token = admin_client(client, web, db)
    with session_scope(db) as s:
        seat = s.exec(select(Account).where(Account.username == "seat1002")).one()
        seat_id, old_digest = seat.id, seat.sip_digest
        outlet_id = s.exec(select(Account.id).where(Account.role == "outlet")).first()
    config = bus.subscribe("engine.config")
    r = client.post(f"/admin/accounts/{seat_id}/sip-password", data={"csrf": token})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    sip = sip_fields(r.text)
    assert sip["sip-username"] == "seat1002" and sip["sip-server"] == "127.0.0.1"
    with session_scope(db) as s:
        fresh = s.get(Account, seat_id)
        assert fresh.sip_digest != old_digest
        assert fresh.sip_digest == sip_digest("seat1002", "callcenter", sip["sip-password"])
    assert config.queue.get_nowait()[1]["reason"] == "seat 1002 SIP password"
    # Never shown again, and not in the audit log
    assert sip["sip-password"] not in client.get("/admin/accounts").text
    assert sip["sip-password"] not in client.get("/admin/audit").text
    assert ("admin", "account.sip_password_reset", "seat1002") in audit_actions(db)
    # An account without a phone has no SIP password; a seat cannot reset anyone's
    if outlet_id is not None:
        r = client.post(f"/admin/accounts/{outlet_id}/sip-password", data={"csrf": token})
        assert r.status_code == 422
    seat_client = web.TestClient(client.app)
    web.login(seat_client, "seat1001")
    r = seat_client.post(f"/admin/accounts/{seat_id}/sip-password", data={"csrf": token})
    assert r.status_code in (401, 403)


def test_bad_requests_are_explained_and_change_nothing(client, web, db):
    token = admin_client(client, web, db)
    for form, message in (
        ({"username": "x", "role": "seat", "extension": "1005"}, "username"),
        ({"username": "seat1002b", "role": "seat", "extension": "1002"}, "extension is taken"),
        ({"username": "seat1006", "role": "seat", "extension": "12"}, "extension of 3-6 digits"),
        ({"username": "seat1006", "role": "seat", "extension": "1006", "queues": ["nope"]}, "unknown queues"),
        ({"username": "boss", "role": "emperor"}, "unknown role"),
        ({"username": "seat1001", "role": "seat", "extension": "1007"}, "taken"),
    ):
        r = client.post("/admin/accounts", data={"csrf": token, **form})
        assert r.status_code == 422 and message in r.text, (form, r.status_code)
    assert client.post("/admin/accounts", data={"username": "seat1009", "role": "outlet"}).status_code == 403
    assert [a for a in audit_actions(db) if a[1].startswith("account.")] == []


def test_disable_and_reset(client, web, db, bus):
    token = admin_client(client, web, db)
    with session_scope(db) as s:
        seat_id = s.exec(select(Account.id).where(Account.username == "seat1002")).one()
        admin_id = s.exec(select(Account.id).where(Account.username == "admin")).one()
    config = bus.subscribe("engine.config")
    r = client.post(f"/admin/accounts/{seat_id}/active", data={"csrf": token, "active": "false"})
    assert r.status_code == 200 and 'data-username="seat1002" data-active="false"' in r.text
    assert config.queue.get_nowait()[1]["reason"] == "seat 1002 disabled"
    assert web.login(web.TestClient(client.app), "seat1002").status_code == 401  # cannot log in any more
    assert (
        client.post(f"/admin/accounts/{admin_id}/active", data={"csrf": token, "active": "false"}).status_code
        == 422
    )
    r = client.post(f"/admin/accounts/{seat_id}/password", data={"csrf": token})
    new = re.search(r'data-field="password">([^<]+)<', r.text).group(1)
    with session_scope(db) as s:
        assert verify_password(s.get(Account, seat_id).password_hash, new)
    actions = audit_actions(db)
    assert ("admin", "account.disable", "seat1002") in actions
    assert ("admin", "account.password_reset", "seat1002") in actions
    page = client.get("/admin/audit", params={"target": "seat1002"}).text
    assert page.count('data-action="account.') == 2 and new not in page  # no password in the log


def test_admin_sets_a_seats_skills_and_asterisk_gets_the_penalties(client, web, db, bus, fake_system_install):
    from asterisk_conf.render import render_config

    token = admin_client(client, web, db)
    with session_scope(db) as s:
        s.add(CallQueue(name="elderly", title="养老服务"))
        s.commit()
        seat = s.exec(select(Account).where(Account.username == "seat1001")).one()
    config = bus.subscribe("engine.config")
    page = client.get("/admin/accounts").text
    assert f'action="/admin/accounts/{seat.id}/queues"' in page and 'value="elderly:2"' in page
    r = client.post(
        f"/admin/accounts/{seat.id}/queues",
        data={"csrf": token, "skills": ["hotline:0", "elderly:2"]},
    )
    assert r.status_code == 200
    assert 'data-queue="elderly" data-level="2"' in r.text
    assert 'data-level="2">养老服务（' in r.text  # by its name; the id stays in the data and the form
    with session_scope(db) as s:
        rows = s.exec(select(QueueMembership).where(QueueMembership.account_id == seat.id))
        assert sorted((m.queue_name, m.penalty) for m in rows) == [("elderly", 2), ("hotline", 0)]
    assert config.queue.get_nowait()[1]["reason"] == "seat 1001 queues"
    etc = render_config(db, install=fake_system_install)
    queues = (etc / "queues.conf").read_text()
    elderly = queues.split("[elderly]")[1].split("\n[")[0]
    assert "member => Local/1001@cc-ring-seat/nm,2," in elderly
    assert ("admin", "account.queues", "seat1001") in audit_actions(db)

    # An unknown level or queue changes nothing and says why; not in any queue is allowed.
    for skills, message in ((["hotline:7"], "skill level"), (["nope:0"], "unknown queues")):
        r = client.post(f"/admin/accounts/{seat.id}/queues", data={"csrf": token, "skills": skills})
        assert r.status_code in (400, 422) and message in r.text, skills
    r = client.post(f"/admin/accounts/{seat.id}/queues", data={"csrf": token, "skills": ["", ""]})
    assert r.status_code == 200
    with session_scope(db) as s:
        assert not list(s.exec(select(QueueMembership).where(QueueMembership.account_id == seat.id)))


def test_admin_gives_a_seat_the_browser_phone_and_asterisk_gets_a_webrtc_endpoint(
    client, web, db, bus, fake_system_install
):
    from asterisk_conf.render import render_config

    token = admin_client(client, web, db)
    with session_scope(db) as s:
        seat = s.exec(select(Account).where(Account.username == "seat1002")).one()
    config = bus.subscribe("engine.config")
    page = client.get("/admin/accounts").text
    assert f'action="/admin/accounts/{seat.id}/phone"' in page
    r = client.post(f"/admin/accounts/{seat.id}/phone", data={"csrf": token, "phone": "browser"})
    assert r.status_code == 200
    with session_scope(db) as s:
        changed = s.get(Account, seat.id)
        assert changed is not None and changed.phone == "browser" and changed.sip_digest
    assert config.queue.get_nowait()[1]["reason"] == "seat 1002 phone browser"
    pjsip = (render_config(db, install=fake_system_install) / "pjsip.conf").read_text()
    endpoint = pjsip.split("[seat1002]\ntype = endpoint")[1].split("\n[")[0]
    assert "webrtc = yes" in endpoint and "transport = transport-ws" in endpoint
    assert ("admin", "account.phone", "seat1002") in audit_actions(db)
    # Anything but desk, browser or both changes nothing and says why.
    r = client.post(f"/admin/accounts/{seat.id}/phone", data={"csrf": token, "phone": "pager"})
    assert r.status_code == 422 and "desk, browser or both" in r.text
    with session_scope(db) as s:
        assert s.get(Account, seat.id).phone == "browser"


def test_admin_gives_a_seat_both_phones_and_asterisk_gets_two_endpoints_one_digest(
    client, web, db, bus, fake_system_install
):
    from asterisk_conf.render import render_config

    token = admin_client(client, web, db)
    with session_scope(db) as s:
        seat = s.exec(select(Account).where(Account.username == "seat1002")).one()
    page = client.get("/admin/accounts").text
    assert 'value="both"' in page
    r = client.post(f"/admin/accounts/{seat.id}/phone", data={"csrf": token, "phone": "both"})
    assert r.status_code == 200
    with session_scope(db) as s:
        changed = s.get(Account, seat.id)
        assert changed is not None and changed.phone == "both" and changed.sip_digest
        digest = changed.sip_digest
    etc = render_config(db, install=fake_system_install)
    pjsip = (etc / "pjsip.conf").read_text()
    desk = pjsip.split("[seat1002]\ntype = endpoint")[1].split("\n[")[0]
    web_endpoint = pjsip.split("[web1002]\ntype = endpoint")[1].split("\n[")[0]
    web_auth = pjsip.split("[web1002]\ntype = auth")[1].split("\n[")[0]
    assert "webrtc" not in desk and "transport-ws" not in desk
    assert (
        "webrtc = yes" in web_endpoint
        and "auth = web1002" in web_endpoint
        and "aors = web1002" in web_endpoint
    )
    # The browser signs in with the seat's own digest: the auth's user name is the seat's account.
    assert "username = seat1002" in web_auth and f"password_digest = md5:{digest}" in web_auth
    assert "[web1002]\ntype = aor" in pjsip
    extensions = (etc / "extensions.conf").read_text()
    # Queue calls ring both endpoints; the queue watches the hint over both.
    assert "exten => 1002,hint,PJSIP/seat1002&PJSIP/web1002\n" in extensions
    assert "Set(CC_RING_WEB=${PJSIP_DIAL_CONTACTS(web1002)})" in extensions
