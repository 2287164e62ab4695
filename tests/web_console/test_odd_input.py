"""Odd input on the pages and the API is a 4xx, never a 500: Unicode digits, numbers of
thousands of digits, row ids past 64 bits, a CSRF token that is not ASCII."""

from __future__ import annotations

from callcenter.database import session_scope
from callcenter.residents.models import Resident


def test_odd_numbers_are_refused_cleanly(client, web, db):
    web.login(client, "admin")
    csrf = web.csrf(client.get("/admin/accounts").text)
    for skills in (["hotline:²"], ["hotline:١"], ["hotline:" + "9" * 5000]):
        r = client.post("/admin/accounts/1/queues", data={"skills": skills, "csrf": csrf})
        assert r.status_code == 400, r.status_code
    for path in ("/admin/accounts/" + "9" * 30 + "/active", "/admin/accounts/-1/active"):
        assert client.post(path, data={"csrf": csrf}).status_code == 422
    assert client.get("/orders/" + "9" * 5000).status_code in (404, 422)
    # A CSRF token that is not ASCII is a wrong token.
    r = client.post("/api/seat/pause", json={"paused": True}, headers={"X-CSRF-Token": "ü".encode()})
    assert r.status_code == 403


def test_odd_birth_years_are_left_out(client, web, db):
    with session_scope(db) as s:
        resident = Resident(name="王秀英", phone="+8613919310001")
        s.add(resident)
        s.commit()
        rid = resident.id
    web.login(client, "seat1001")
    csrf = web.csrf(client.get(f"/residents/{rid}").text)
    for year in ("²", "١٩٥٠", "9" * 5000):
        r = client.post(
            f"/residents/{rid}/household",
            data={"name": "老伴", "relation": "配偶", "birth_year": year, "csrf": csrf},
        )
        assert r.status_code < 500, (year, r.status_code)
