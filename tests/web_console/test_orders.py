"""Work-order pages: the console's create API, the list and detail with allowed actions, the
outlet's page by login and by signed link, attachments, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from callcenter.accounts.models import Account
from callcenter.audit.models import AuditEntry
from callcenter.clock import aware
from callcenter.database import session_scope
from dispatch import links
from dispatch.models import OrderAttachment, OutletLink, Status, WorkOrder
from dispatch.testing import build_world
from sms.models import SmsMessage

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        w = build_world(s)
        outlet_user = s.exec(select(Account).where(Account.username == "outlet")).one()
        outlet_user.outlet_id = w.outlet_a
        s.add(outlet_user)
        s.commit()
    return w


def link_to(db, order_id: int, outlet_id: int) -> str:
    """A new signed link, as the e-mail notice makes them."""
    with session_scope(db) as s:
        url = links.outlet_link(s, db, order_id, outlet_id)
        s.commit()
    return url


def seat(client, web):
    assert web.login(client, "seat1001").status_code == 303
    return web.csrf(client.get("/console").text)


def create(client, token, world, **over):
    body = {
        "linkedid": "1764300000.7",
        "resident_id": world.resident,
        "caller_phone": "+8613919310001",
        "order_type": "求助",
        "category_id": world.cat_elder,
        "community_id": world.community,
        "address": "十里店南街1号",
        "summary": "家中停电 <script>alert(1)</script>",
        "outlet_id": world.outlet_a,
    }
    body.update(over)
    return client.post("/api/orders", json=body, headers={"X-CSRF-Token": token})


def test_seat_creates_and_dispatches_from_the_console(db, client, web, world):
    token = seat(client, web)
    opts = client.get("/api/dispatch/options").json()
    assert {c["name"] for c in opts["categories"]} >= {"生活服务", "水电维修", "居家养老"}
    assert [c["depth"] for c in opts["categories"] if c["name"] == "水电维修"] == [1]
    sug = client.get(
        f"/api/orders/suggest?category_id={world.cat_water}&community_id={world.community}"
    ).json()
    assert sug["outlet"]["id"] == world.supplier and "service area" in sug["outlet"]["reason"]
    r = create(client, token, world)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == Status.DISPATCHED and order["outlet"]["id"] == world.outlet_a
    assert re.fullmatch(r"GD\d{8}-\d{5}", order["number"]) and order["short_code"].isdigit()
    assert client.get("/api/orders?linkedid=1764300000.7").json()[0]["number"] == order["number"]
    # A repeat about the same matter is flagged.
    sug = client.get(f"/api/orders/suggest?category_id={world.cat_elder}&resident_id={world.resident}").json()
    assert sug["repeat"]["number"] == order["number"]
    # Without CSRF: refused. Bad type: a clear message.
    assert client.post("/api/orders", json={"order_type": "求助", "summary": "x"}).status_code == 403
    bad = create(client, token, world, order_type="闲聊")
    assert bad.status_code == 422 and "type" in bad.json()["error"]
    # List and detail escape the resident's words.
    page = client.get("/orders")
    assert order["number"] in page.text and "<script>alert(1)</script>" not in page.text
    detail = client.get(f"/orders/{order['id']}")
    assert "&lt;script&gt;" in detail.text and 'data-action="催办"' in detail.text
    assert 'data-action="签收"' not in detail.text  # the outlet's action, not the seat's
    with session_scope(db) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "order.create")).first() is not None


def test_detail_actions_and_refusals(db, client, web, world):
    token = seat(client, web)
    order = create(client, token, world, outlet_id=None).json()
    assert order["status"] == Status.RECEIVED
    r = client.post(
        f"/orders/{order['id']}/action",
        data={"csrf": token, "action": "派单", "outlet_id": str(world.outlet_b)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/orders/{order['id']}")
    assert 'id="order-flash"' in page.text and "桃林社区服务站" in page.text
    refused = client.post(f"/orders/{order['id']}/action", data={"csrf": token, "action": "签收"})
    assert refused.status_code == 409 and "role" in refused.text
    assert (
        client.post(f"/orders/{order['id']}/action", data={"csrf": "x", "action": "催办"}).status_code == 403
    )
    r = client.post(
        f"/orders/{order['id']}/action", data={"csrf": token, "action": "催办"}, follow_redirects=False
    )
    assert r.status_code == 303
    with session_scope(db) as s:
        o = s.get(WorkOrder, order["id"])
        assert o.outlet_id == world.outlet_b and o.reminded_at is not None


def sms_to(db, number: str) -> list[str]:
    """The SMS queued for ``number``, oldest first."""
    with session_scope(db) as s:
        rows = s.exec(select(SmsMessage).where(SmsMessage.to == number).order_by(SmsMessage.id)).all()
        return [m.body for m in rows]


RESIDENT_PHONE = "+8613919310001"
OUTLET_A_PHONE = "+8613900000001"


def test_taken_and_dispatched_at_once_the_resident_gets_one_sms(db, client, web, world):
    token = seat(client, web)
    order = create(client, token, world).json()
    assert order["status"] == Status.DISPATCHED
    with session_scope(db) as s:
        code = s.get(WorkOrder, order["id"]).query_code
    [sms] = sms_to(db, RESIDENT_PHONE)
    # One message: taken, already with an outlet, the order number and the query code.
    assert "已受理并交承办单位办理" in sms
    assert order["number"] in sms and f"查询码{code}" in sms and "TD" in sms
    # Nothing of the matter or the outlet goes to the resident's phone.
    assert "停电" not in sms and "服务站" not in sms
    # The outlet's SMS is that of any dispatch.
    [outlet_sms] = sms_to(db, OUTLET_A_PHONE)
    assert order["number"] in outlet_sms and "签收" in outlet_sms


def test_taken_then_dispatched_the_resident_gets_the_receipt_then_the_notice(db, client, web, world):
    token = seat(client, web)
    order = create(client, token, world, outlet_id=None).json()
    assert order["status"] == Status.RECEIVED
    [receipt] = sms_to(db, RESIDENT_PHONE)
    assert "已受理" in receipt and "承办单位" not in receipt and order["number"] in receipt
    r = client.post(
        f"/orders/{order['id']}/action",
        data={"csrf": token, "action": "派单", "outlet_id": str(world.outlet_a)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    first, notice = sms_to(db, RESIDENT_PHONE)
    assert first == receipt
    assert "已交承办单位办理" in notice and "已受理" not in notice and order["number"] in notice
    assert len(sms_to(db, OUTLET_A_PHONE)) == 1


def test_outlet_page_login_accept_progress_photo_resolve(db, client, web, world):
    token = seat(client, web)
    order = create(client, token, world).json()
    other = create(client, token, world, outlet_id=world.outlet_b, category_id=world.cat_water).json()
    client.cookies.clear()
    assert web.login(client, "outlet").status_code == 303
    home = client.get("/", follow_redirects=True)
    assert order["number"] in home.text and other["number"] not in home.text
    page = client.get(f"/outlet/orders/{order['id']}")
    otoken = web.csrf(page.text)
    assert 'data-action="签收"' in page.text
    assert client.get(f"/outlet/orders/{other['id']}").status_code == 404  # another outlet's order
    assert client.get(f"/orders/{order['id']}").status_code == 403  # the staff page
    r = client.post(f"/outlet/orders/{order['id']}", data={"csrf": otoken, "action": "签收"})
    assert r.status_code == 200 and 'id="order-flash"' in r.text
    r = client.post(
        f"/outlet/orders/{order['id']}",
        data={"csrf": otoken, "action": "办理", "note": "已上门查看"},
        files={"photo": ("site.png", PNG, "image/png")},
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/outlet/orders/{order['id']}", data={"csrf": otoken, "action": "办结", "note": "已恢复供电"}
    )
    assert r.status_code == 200
    with session_scope(db) as s:
        o = s.get(WorkOrder, order["id"])
        assert o.status == Status.RESOLVED and o.resolution == "已恢复供电"
        att = s.exec(select(OrderAttachment).where(OrderAttachment.order_id == o.id)).one()
        assert att.content_type == "image/png" and att.size == len(PNG)
    got = client.get(f"/orders/{order['id']}/attachments/{att.id}")
    assert got.status_code == 200 and got.content == PNG
    # A file that is not an image is refused.
    r = client.post(
        f"/orders/{order['id']}/attachments",
        data={"csrf": otoken},
        files={"file": ("x.html", b"<html><script>1</script>", "image/png")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "error=file" in r.headers["location"]


def test_signed_link_for_one_order_only(db, client, web, world, bus):
    token = seat(client, web)
    order = create(client, token, world).json()
    second = create(client, token, world, category_id=world.cat_water).json()
    client.cookies.clear()
    link = link_to(db, order["id"], world.outlet_a)
    page = client.get(link)
    assert page.status_code == 200 and order["number"] in page.text
    ltoken = web.csrf(page.text)
    # The same token cannot open another order; an altered token is refused.
    path = link.rsplit("/", 1)[1]
    assert client.get("/o/" + path[:-2] + ("AA" if not path.endswith("AA") else "BB")).status_code == 403
    assert client.post(link, data={"csrf": ltoken, "action": "签收"}).status_code == 200
    with session_scope(db) as s:
        assert s.get(WorkOrder, order["id"]).status == Status.ACCEPTED
        assert s.get(WorkOrder, second["id"]).status == Status.DISPATCHED
    # A link for outlet B does not open an order dispatched to outlet A.
    assert client.get(link_to(db, order["id"], world.outlet_b)).status_code == 404
    # Expired links are refused.
    with session_scope(db) as s:
        later = datetime.now(UTC) + timedelta(hours=db.outlet_link_hours, seconds=1)
        assert links.read_token(s, db, path) == (order["id"], world.outlet_a)
        assert links.read_token(s, db, path, now=later) is None


def _nonce(db, link: str) -> str:
    return links._serializer(db).loads(link.rsplit("/", 1)[1])["n"]


def test_a_link_names_one_order_and_its_own_row(db, client, web, world):
    token = seat(client, web)
    a = create(client, token, world).json()
    b = create(client, token, world, category_id=world.cat_water).json()
    client.cookies.clear()
    link_a = link_to(db, a["id"], world.outlet_a)
    nonce = _nonce(db, link_a)
    with session_scope(db) as s:
        row = s.exec(select(OutletLink).where(OutletLink.nonce == nonce)).one()
        assert aware(row.expires_at) - aware(row.created_at) == timedelta(hours=72)
    # A token signed with the right secret for order B but naming A's link row is refused:
    # the row binds the link to order A.
    forged = links._serializer(db).dumps({"o": b["id"], "t": world.outlet_a, "n": nonce})
    assert client.get(f"/o/{forged}").status_code == 403
    r = client.post(f"/o/{forged}", data={"action": "签收"})
    assert r.status_code == 403
    # So is the old form of token, signed but naming no link row.
    unbound = links._serializer(db).dumps({"o": b["id"], "t": world.outlet_a})
    assert client.get(f"/o/{unbound}").status_code == 403
    page = client.get(link_a)
    assert page.status_code == 200 and a["number"] in page.text and b["number"] not in page.text
    with session_scope(db) as s:
        assert s.get(WorkOrder, b["id"]).status == Status.DISPATCHED


def test_a_revoked_or_expired_link_is_refused(db, client, web, world):
    token = seat(client, web)
    order = create(client, token, world).json()
    stoken = token
    first, second, third = (link_to(db, order["id"], world.outlet_a) for _ in range(3))
    anon = web.TestClient(client.app)
    assert all(anon.get(link).status_code == 200 for link in (first, second, third))
    # Revoked by a seat on the order's page: every live link of the order stops working at once.
    r = client.post(f"/orders/{order['id']}/links/revoke", data={"csrf": stoken})
    assert r.status_code == 200 and "已作废 4 个网点链接。" in r.text  # three and the dispatch e-mail's
    assert all(anon.get(link).status_code == 403 for link in (first, second, third))
    with session_scope(db) as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "order.links.revoke")).one()
        assert entry.actor == "seat1001" and entry.target == order["number"]
    assert client.post(f"/orders/{order['id']}/links/revoke", data={"csrf": "forged"}).status_code == 403
    # Expired: its row's expiry has passed (however valid the signature still is).
    fresh = link_to(db, order["id"], world.outlet_a)
    assert anon.get(fresh).status_code == 200
    with session_scope(db) as s:
        row = s.exec(select(OutletLink).where(OutletLink.nonce == _nonce(db, fresh))).one()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        s.add(row)
        s.commit()
    assert anon.get(fresh).status_code == 403
    # Re-dispatched to another outlet: the first outlet's links end with it.
    kept = link_to(db, order["id"], world.outlet_a)
    r = client.post(
        f"/orders/{order['id']}/action",
        data={"csrf": stoken, "action": "改派", "outlet_id": str(world.outlet_b), "note": "不属本站"},
        follow_redirects=False,
    )
    assert r.status_code in (200, 303), r.text
    with session_scope(db) as s:
        assert s.get(WorkOrder, order["id"]).outlet_id == world.outlet_b
        assert all(
            row.revoked_at is not None
            for row in s.exec(select(OutletLink))
            if row.outlet_id == world.outlet_a
        )
    assert anon.get(kept).status_code == 403


def test_links_are_https_only_in_production(db, client, web, world):
    order = create(client, seat(client, web), world).json()
    db.production = True
    try:
        with session_scope(db) as s:
            for base in ("http://hotline.example.cn", "", "HTTP://x"):
                with pytest.raises(links.InsecureLinkBase):
                    links.outlet_link(s, db, order["id"], world.outlet_a, base)
            link = links.outlet_link(s, db, order["id"], world.outlet_a, "https://hotline.example.cn/")
            assert link.startswith("https://hotline.example.cn/o/")
    finally:
        db.production = False


def test_outlet_returns_and_asks_for_extension_through_the_link(db, client, web, world):
    token = seat(client, web)
    first = create(client, token, world).json()
    second = create(client, token, world, category_id=world.cat_water).json()
    client.cookies.clear()
    link = link_to(db, first["id"], world.outlet_a)
    ltoken = web.csrf(client.get(link).text)
    r = client.post(link, data={"csrf": ltoken, "action": "退单"})  # no reason
    assert r.status_code == 409 and "reason" in r.text
    r = client.post(link, data={"csrf": ltoken, "action": "退单", "note": "<b>不属本站</b>"})
    assert r.status_code == 200 and "&lt;b&gt;不属本站&lt;/b&gt;" in r.text
    # Seat actions are not outlet actions, even through a valid link.
    assert client.post(link, data={"csrf": ltoken, "action": "归档"}).status_code == 409
    link2 = link_to(db, second["id"], world.outlet_a)
    r = client.post(link2, data={"csrf": ltoken, "action": "延期", "note": "等配件", "until": "2099-01-10"})
    assert r.status_code == 200, r.text
    with session_scope(db) as s:
        assert s.get(WorkOrder, first["id"]).status == Status.RETURNED
        o = s.get(WorkOrder, second["id"])
        assert o.extension_requested_until is not None and o.extension_reason == "等配件"
    # The supervisor approves it on the order page.
    assert web.login(client, "super").status_code == 303
    stoken = web.csrf(client.get(f"/orders/{second['id']}").text)
    r = client.post(
        f"/orders/{second['id']}/action",
        data={"csrf": stoken, "action": "延期审批", "approve": "true"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(db) as s:
        o = s.get(WorkOrder, second["id"])
        assert o.extension_requested_until is None and o.deadline_at.year == 2099


def test_resident_page_household_and_elderly_profile(db, client, web, world):
    from callcenter.residents.models import ElderlyProfile, HouseholdMember, Resident

    token = seat(client, web)
    order = create(client, token, world).json()
    page = client.get(f"/orders/{order['id']}")
    assert f'href="/residents/{world.resident}"' in page.text
    page = client.get(f"/residents/{world.resident}")
    assert page.status_code == 200 and "王秀英" in page.text and order["number"] in page.text
    r = client.post(
        f"/residents/{world.resident}/household",
        data={
            "csrf": token,
            "name": "<i>李建华</i>",
            "relation": "儿子",
            "phone": "138 0000 1234",
            "birth_year": "1970",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    bad = client.post(
        f"/residents/{world.resident}/household", data={"csrf": token, "name": "x", "phone": "12"}
    )
    assert bad.status_code == 422
    r = client.post(
        f"/residents/{world.resident}/elderly",
        data={
            "csrf": token,
            "health_notes": "高血压",
            "caregiver": "张护工",
            "caregiver_phone": "13900001111",
            "lives_alone": "1",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.post(f"/residents/{world.resident}/elderly", data={"csrf": "bad"}).status_code == 403
    page = client.get(f"/residents/{world.resident}")
    assert "&lt;i&gt;李建华&lt;/i&gt;" in page.text and "高血压" in page.text
    with session_scope(db) as s:
        m = s.exec(select(HouseholdMember).where(HouseholdMember.resident_id == world.resident)).one()
        assert m.phone == "+8613800001234" and m.birth_year == 1970
        p = s.exec(select(ElderlyProfile).where(ElderlyProfile.resident_id == world.resident)).one()
        assert p.caregiver_phone == "+8613900001111" and s.get(Resident, world.resident).lives_alone
        actions = set(s.exec(select(AuditEntry.action)).all())
        assert {"resident.household_add", "resident.elderly_profile"} <= actions
    assert client.get("/residents/999999").status_code == 404


def test_the_order_page_plays_its_calls_recording_to_whoever_may_hear_it(db, client, web, world):
    from datetime import UTC, datetime

    from callcenter.calls.models import CallRecord

    token = seat(client, web)
    order = create(client, token, world).json()
    with session_scope(db) as s:
        s.add(
            CallRecord(
                linkedid="1764300000.7",
                started_at=datetime.now(UTC),
                seat="1001",
                recording="1764300000.7.wav",
            )
        )
        s.commit()
    player = 'src="/api/recordings/1764300000.7"'
    assert player in client.get(f"/orders/{order['id']}").text  # the seat who took the call
    client.cookies.clear()
    assert web.login(client, "seat1002").status_code == 303
    page = client.get(f"/orders/{order['id']}").text
    assert "1764300000.7" in page and player not in page  # another seat: the call, not its sound
    client.cookies.clear()
    assert web.login(client, "super").status_code == 303
    assert player in client.get(f"/orders/{order['id']}").text
