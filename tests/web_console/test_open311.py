"""Open311 GeoReport v2 against the spec's examples (http://wiki.open311.org/GeoReport_v2)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope
from dispatch.models import Category, WorkOrder

KEY = "xyz-open311-test-key"
READ_KEY = "xyz-open311-read-key"


@pytest.fixture
def o311(db, web):
    db.open311_api_keys = [KEY]
    db.open311_read_keys = [READ_KEY]
    with session_scope(db) as s:
        root = Category(code="PUBLIC", name="市政设施")
        s.add(root)
        s.flush()
        s.add(Category(code="001", name="路面塌陷", parent_id=root.id))
        s.add(Category(code="002", name="路灯损坏", parent_id=root.id))
        s.add(Category(code="OLD", name="停用类别", parent_id=root.id, active=False))
        s.commit()
    return db


# The spec's POST example, as it is written there.
SPEC_POST = (
    "api_key={key}&jurisdiction_id={jur}&service_code=001&lat=37.76524078&long=-122.4212043"
    "&address_string=1234+5th+street&email=smit222%40sfgov.edu&device_id=tt222111&account_id=123456"
    "&first_name=john&last_name=smith&phone=111111111&description=A+large+sinkhole+is+destroying+the+street"
    "&media_url=http%3A%2F%2Ffarm3.static.flickr.com%2F2002%2F2212426634_5ed477a060.jpg"
)


def _post(client, body: str, fmt: str = "json"):
    return client.post(
        f"/open311/v2/requests.{fmt}",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_services_and_definitions(o311, app, web):
    with web.TestClient(app) as c:
        r = c.get("/open311/v2/services.json")
        assert r.status_code == 200
        services = r.json()
        assert [s["service_code"] for s in services] == ["001", "002"]  # leaves, active only
        assert set(services[0]) >= {
            "service_code",
            "service_name",
            "description",
            "metadata",
            "type",
            "keywords",
            "group",
        }
        assert services[0]["group"] == "市政设施" and services[0]["type"] == "realtime"
        d = c.get("/open311/v2/services/001.json").json()
        assert d["service_code"] == "001"
        [attr] = d["attributes"]
        assert {
            "variable",
            "code",
            "datatype",
            "required",
            "datatype_description",
            "order",
            "description",
        } <= set(attr)
        assert {v["key"] for v in attr["values"]} == {"咨询", "求助", "投诉", "举报", "建议", "表扬"}
        r = c.get("/open311/v2/services/999.json")
        assert r.status_code == 404 and r.json() == [{"code": 404, "description": "service_code not found"}]
        r = c.get("/open311/v2/services.json?jurisdiction_id=elsewhere.gov")
        assert r.status_code == 404 and r.json()[0]["code"] == 404
        formats = c.get("/open311/v2/discovery.json").json()["endpoints"][0]["formats"]
        assert formats == ["application/json", "text/xml"]
        assert c.get("/open311/v2/services.yaml").status_code == 404


def test_post_get_and_token_as_in_the_spec(o311, app, web):
    jur = o311.open311_jurisdiction_id
    with web.TestClient(app) as c:
        r = _post(c, SPEC_POST.format(key=KEY, jur=jur))
        assert r.status_code == 201, r.text
        [created] = r.json()
        number, token = created["service_request_id"], created["token"]
        assert set(created) >= {"service_request_id", "service_notice", "account_id"}

        [req] = c.get(f"/open311/v2/requests/{number}.json").json()
        assert req["service_request_id"] == number and req["status"] == "open"
        assert req["service_code"] == "001" and req["service_name"] == "路面塌陷"
        assert req["description"] == "A large sinkhole is destroying the street"
        assert req["address"] == "1234 5th street" and req["requested_datetime"]
        assert "smith" not in r.text + str(req)  # no personal details come back out

        assert c.get(f"/open311/v2/tokens/{token}.json").json() == [
            {"service_request_id": number, "token": token}
        ]
        assert c.get("/open311/v2/tokens/nope.json").status_code == 404

        listed = c.get("/open311/v2/requests.json?status=open").json()
        assert [x["service_request_id"] for x in listed] == [number]
        assert c.get("/open311/v2/requests.json?status=closed").json() == []
        # The spec's GET example: a window in 2010 holds nothing of ours.
        old = c.get(
            "/open311/v2/requests.json?start_date=2010-05-24T00:00:00Z&end_date=2010-06-24T00:00:00Z&status=open"
        )
        assert old.status_code == 200 and old.json() == []
        assert (
            c.get(f"/open311/v2/requests.json?service_request_id={number},GD-none").json()[0][
                "service_request_id"
            ]
            == number
        )
        assert c.get("/open311/v2/requests/GD-none.json").status_code == 404
        assert c.get("/open311/v2/requests.json?status=maybe").status_code == 400

    with session_scope(o311) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.number == number)).one()
        assert order.caller_name == "smith john" and order.created_by.startswith("open311:")
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "open311.request")).first() is not None


def test_post_errors_in_the_spec_format(o311, app, web):
    with web.TestClient(app) as c:
        r = _post(c, "service_code=001&address_string=x")
        assert r.status_code == 403 and r.json() == [
            {"code": 403, "description": "api_key is missing or not valid"}
        ]
        r = _post(c, "api_key=wrong&service_code=001&address_string=x")
        assert r.status_code == 403
        r = _post(c, f"api_key={KEY}&service_code=001")
        assert r.status_code == 400 and "location" in r.json()[0]["description"]
        r = _post(c, f"api_key={KEY}&service_code=OLD&address_string=x")
        assert r.status_code == 404
        r = _post(c, f"api_key={KEY}&address_string=x")
        assert r.status_code == 400
        r = _post(c, f"api_key={KEY}&service_code=001&lat=999&long=0")
        assert r.status_code == 400
    with session_scope(o311) as s:
        assert s.exec(select(WorkOrder)).all() == []


def test_hotline_orders_show_no_resident_text(o311, app, web):
    from callcenter.directory.models import Community, Jurisdiction
    from dispatch import service as dispatch

    with session_scope(o311) as s:
        j = Jurisdiction(name="十里店街道")
        s.add(j)
        s.flush()
        c = Community(jurisdiction_id=j.id, name="十里店东社区")
        s.add(c)
        s.flush()
        cat = s.exec(select(Category).where(Category.code == "002")).one()
        order = dispatch.create_order(
            s,
            dispatch.Actor("seat1001", "seat"),
            order_type="求助",
            category_id=cat.id,
            summary="王秀英（独居，心脏病）家门口路灯坏了",
            community_id=c.id,
            address="十里店南街28号3单元502",
        )
        s.commit()
        number = order.number
    with web.TestClient(app) as client:
        [req] = client.get(f"/open311/v2/requests/{number}.json?api_key={READ_KEY}").json()
    assert req["description"] == "路灯损坏" and req["address"] == "十里店东社区"
    assert "王秀英" not in str(req) and "502" not in str(req)


def test_anonymous_clients_see_only_open311_requests(o311, app, web):
    from dispatch import service as dispatch

    with session_scope(o311) as s:
        cat = s.exec(select(Category).where(Category.code == "002")).one()
        hotline = dispatch.create_order(
            s, dispatch.Actor("seat1001", "seat"), order_type="求助", category_id=cat.id, summary="路灯"
        )
        s.commit()
        hotline_number = hotline.number
    with web.TestClient(app) as client:
        r = _post(client, f"api_key={KEY}&service_code=001&address_string=十里店南街")
        assert r.status_code == 201
        filed = r.json()[0]["service_request_id"]
        for fmt in ("json", "xml"):
            anonymous = client.get(f"/open311/v2/requests.{fmt}")
            assert anonymous.status_code == 200
            assert filed in anonymous.text and hotline_number not in anonymous.text
        assert client.get(f"/open311/v2/requests/{hotline_number}.json").status_code == 404
        by_id = client.get(f"/open311/v2/requests.json?service_request_id={hotline_number},{filed}").json()
        assert [x["service_request_id"] for x in by_id] == [filed]
        # The POST key is not a read key; a wrong key reads like no key.
        for key in (KEY, "wrong", "ü"):
            assert hotline_number not in client.get("/open311/v2/requests.json", params={"api_key": key}).text
        keyed = client.get(f"/open311/v2/requests.json?api_key={READ_KEY}").json()
        assert {hotline_number, filed} <= {x["service_request_id"] for x in keyed}
        assert client.get(f"/open311/v2/requests/{hotline_number}.json?api_key={READ_KEY}").status_code == 200


def test_a_supervisor_lists_a_hotline_order_publicly_and_takes_it_off(o311, app, web):
    from dispatch import service as dispatch

    with session_scope(o311) as s:
        cat = s.exec(select(Category).where(Category.code == "002")).one()
        order = dispatch.create_order(
            s,
            dispatch.Actor("seat1001", "seat"),
            order_type="求助",
            category_id=cat.id,
            summary="王秀英家门口路灯坏了",
        )
        s.commit()
        order_id, number = order.id, order.number
    with web.TestClient(app) as anon, web.TestClient(app) as seat, web.TestClient(app) as boss:
        assert number not in anon.get("/open311/v2/requests.json").text
        # A seat may not publish an order.
        assert web.login(seat, "seat1001").status_code == 303
        token = web.csrf(seat.get(f"/orders/{order_id}").text)
        assert seat.post(f"/orders/{order_id}/public", data={"csrf": token, "list": "1"}).status_code == 403
        assert web.login(boss, "super").status_code == 303
        page = boss.get(f"/orders/{order_id}")
        assert 'id="order-public"' in page.text and "公开本工单" in page.text
        token = web.csrf(page.text)
        assert (
            boss.post(f"/orders/{order_id}/public", data={"csrf": "forged", "list": "1"}).status_code == 403
        )
        r = boss.post(f"/orders/{order_id}/public", data={"csrf": token, "list": "1"})
        assert r.status_code == 200 and "取消公开" in r.text
        listed = anon.get("/open311/v2/requests.json").json()
        [req] = [x for x in listed if x["service_request_id"] == number]
        # Listed with its category only: the resident's words stay inside.
        assert req["description"] == "路灯损坏" and "王秀英" not in anon.get("/open311/v2/requests.json").text
        assert anon.get(f"/open311/v2/requests/{number}.json").status_code == 200
        boss.post(f"/orders/{order_id}/public", data={"csrf": token, "list": "0"})
        assert number not in anon.get("/open311/v2/requests.json").text
        assert anon.get(f"/open311/v2/requests/{number}.json").status_code == 404
        assert boss.post("/orders/999999/public", data={"csrf": token, "list": "1"}).status_code == 404
    with session_scope(o311) as s:
        actions = [e.action for e in s.exec(select(AuditEntry).where(AuditEntry.target == number))]
    assert actions.count("order.public") == 1 and actions.count("order.private") == 1


def _xml(r):
    assert r.headers["content-type"].startswith("text/xml")
    return ET.fromstring(r.content)


def test_the_same_in_xml_as_in_the_spec(o311, app, web):
    """The spec's XML shapes: <services><service>, <service_definition><attributes><attribute>
    <values><value>, <service_requests><request>, <errors><error>."""
    jur = o311.open311_jurisdiction_id
    with web.TestClient(app) as c:
        services = _xml(c.get("/open311/v2/services.xml"))
        assert services.tag == "services"
        assert [e.findtext("service_code") for e in services.findall("service")] == ["001", "002"]
        assert services.find("service").findtext("group") == "市政设施"
        d = _xml(c.get("/open311/v2/services/001.xml"))
        assert d.tag == "service_definition" and d.findtext("service_code") == "001"
        attr = d.find("attributes/attribute")
        assert attr.findtext("variable") == "true" and attr.findtext("code") == "order_type"
        assert {v.findtext("key") for v in attr.findall("values/value")} >= {"投诉", "求助"}
        formats = _xml(c.get("/open311/v2/discovery.xml")).findall("endpoints/endpoint/formats/format")
        assert [f.text for f in formats] == ["application/json", "text/xml"]

        # A description with markup and a control character: escaped, and still well-formed XML.
        body = SPEC_POST.format(key=KEY, jur=jur).replace(
            "A+large+sinkhole", "%3Cb%3E%26+large%3C%2Fb%3E%01+sinkhole"
        )
        r = _post(c, body, "xml")
        assert r.status_code == 201, r.text
        created = _xml(r)
        assert created.tag == "service_requests"
        number = created.findtext("request/service_request_id")
        token = created.findtext("request/token")
        req = _xml(c.get(f"/open311/v2/requests/{number}.xml")).find("request")
        assert req.findtext("description") == "<b>& large</b> sinkhole is destroying the street"
        assert req.findtext("status") == "open" and req.findtext("service_code") == "001"
        listed = _xml(c.get("/open311/v2/requests.xml?status=open"))
        assert [e.findtext("service_request_id") for e in listed.findall("request")] == [number]
        assert _xml(c.get(f"/open311/v2/tokens/{token}.xml")).findtext("request/service_request_id") == number

        r = c.get("/open311/v2/requests/GD-none.xml")
        assert r.status_code == 404
        err = _xml(r).find("error")
        assert _xml(r).tag == "errors" and err.findtext("code") == "404"
        r = _post(c, "service_code=001&address_string=x", "xml")
        assert r.status_code == 403
        assert _xml(r).findtext("error/description") == "api_key is missing or not valid"
