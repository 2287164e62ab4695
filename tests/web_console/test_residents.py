"""Registering an unknown caller from the pop, or linking the number to a resident on file."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from callcenter.directory.models import Community, Jurisdiction
from callcenter.residents.models import Resident

from .conftest import csrf_from


def seat(client, web, db) -> tuple[dict, int]:
    with session_scope(db) as s:
        j = Jurisdiction(name="十里店街道")
        s.add(j)
        s.flush()
        c = Community(jurisdiction_id=j.id, name="十里店社区")
        s.add(c)
        s.add(Resident(name="王秀英", phone="+8613919310001"))
        s.commit()
        community_id = c.id
    assert web.login(client, "seat1001").status_code == 303
    return {"X-CSRF-Token": csrf_from(client.get("/console").text)}, community_id


def test_register_an_unknown_caller(client, web, db, bus):
    headers, community_id = seat(client, web, db)
    repop = bus.subscribe("calls.resident")
    assert client.get("/api/communities").json() == [
        {"id": community_id, "name": "十里店社区", "jurisdiction": "十里店街道"}
    ]
    body = {
        "linkedid": "1700000000.3",
        "name": "<b>张三</b>",
        "phone": "0931-8123456",
        "community_id": community_id,
        "address": "培黎街1号",
    }
    assert client.post("/api/residents", json=body).status_code == 403  # no CSRF token
    r = client.post("/api/residents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["name"] == "<b>张三</b>" and created["phone"] == "+8693****3456"
    assert repop.queue.get_nowait()[1] == {"linkedid": "1700000000.3", "resident_id": created["id"]}
    # The same number again: the resident on file is named, nothing is added.
    again = client.post("/api/residents", json=body | {"phone": "+86 931 812 3456"}, headers=headers)
    assert again.status_code == 409 and again.json()["existing"]["id"] == created["id"]
    for bad, status in (({"phone": "12345"}, 422), ({"name": ""}, 422), ({"community_id": 999}, 422)):
        assert (
            client.post(
                "/api/residents",
                json=body | bad | {"phone": bad.get("phone", "13800000009")},
                headers=headers,
            ).status_code
            == status
        ), bad
    with session_scope(db) as s:
        assert (
            s.exec(select(Resident).where(Resident.phone == "+869318123456")).one().community_id
            == community_id
        )
        assert [
            e.action for e in s.exec(select(AuditEntry).where(AuditEntry.action.startswith("resident.")))
        ] == ["resident.create"]


def test_link_a_number_to_a_resident_on_file(client, web, db):
    headers, _ = seat(client, web, db)
    found = client.get("/api/residents", params={"q": "王秀"}).json()
    assert [f["name"] for f in found] == ["王秀英"] and found[0]["phone"] == "+86139****0001"
    assert client.get("/api/residents", params={"q": "139 1931 0001"}).json()[0]["id"] == found[0]["id"]
    r = client.post(f"/api/residents/{found[0]['id']}/phones", json={"phone": "13800001111"}, headers=headers)
    assert r.status_code == 200
    with session_scope(db) as s:
        assert s.get(Resident, found[0]["id"]).phone2 == "+8613800001111"
    again = client.post(
        f"/api/residents/{found[0]['id']}/phones", json={"phone": "13800002222"}, headers=headers
    )
    assert again.status_code == 422  # two numbers already
    taken = client.post(
        f"/api/residents/{found[0]['id']}/phones", json={"phone": "13919310001"}, headers=headers
    )
    assert taken.status_code == 409


def test_full_id_number_only_on_request_and_audited(client, web, db):
    from callcenter.calls.service import mask_id_number

    assert mask_id_number("620102194501011234") == "6201**********1234"
    assert mask_id_number("") == ""
    seat(client, web, db)
    with session_scope(db) as s:
        r = s.exec(select(Resident).where(Resident.name == "王秀英")).one()
        r.id_number = "620102194501011234"
        s.add(r)
        # The resident rang this seat: her record is open to it.
        s.add(
            CallRecord(linkedid="1764300000.5", seat="1001", resident_id=r.id, started_at=datetime.now(UTC))
        )
        s.commit()
        rid = r.id
    got = client.get(f"/api/residents/{rid}/identity").json()
    assert got["id_number"] == "620102194501011234" and got["phone"] == "+8613919310001"
    assert client.get("/api/residents/99999/identity").status_code == 404
    with session_scope(db) as s:
        seen = list(s.exec(select(AuditEntry).where(AuditEntry.action == "resident.view_identity")))
        assert [(e.actor, e.target, e.detail) for e in seen] == [
            ("seat1001", f"resident:{rid}", {"basis": "call"})
        ]
