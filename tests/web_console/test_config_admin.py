"""The category tree and routing rules over HTTP: administrators only; the JSON API and the pages
share the checks (catalogue-keyed messages, zh-CN and English); every change is audited and
announced on the bus; Excel export and import round-trip."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from callcenter import topics
from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope
from callcenter.messages import ConfigChanged
from dispatch.models import Category, RoutingRule
from dispatch.testing import World, build_world


@pytest.fixture
def world(db) -> World:
    with session_scope(db) as s:
        return build_world(s)


def _admin(web, app, user: str = "admin"):
    c = web.TestClient(app)
    assert web.login(c, user).status_code == 303
    return c, web.csrf(c.get("/password" if user != "admin" else "/admin/categories").text)


@pytest.mark.parametrize("user", ["seat1001", "outlet", "super"])
def test_refused_for_seats_outlets_and_supervisors(db, app, web, world, user):
    c = web.TestClient(app)
    assert web.login(c, user).status_code == 303
    for path in ("/admin/categories", "/admin/routing", "/admin/routing/coverage", "/api/categories"):
        assert c.get(path, follow_redirects=False).status_code == 403, path
    assert c.post("/api/routing/rules", json={"outlet_id": world.outlet_a}).status_code == 403
    assert c.get("/api/routing/preview").status_code == 403


def test_the_category_api_checks_audits_and_announces(db, app, web, world, bus):
    c, token = _admin(web, app)
    h = {"X-CSRF-Token": token}
    sub = bus.subscribe(topics.CONFIG_CHANGED)
    r = c.post(
        "/api/categories",
        json={"name": "管道疏通", "parent_id": world.cat_water, "national_code": "010101"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["national_code"] == "010101" and new["code"].startswith("C")
    topic, payload = sub.queue.get_nowait()
    assert topic == topics.CONFIG_CHANGED and ConfigChanged.from_json(payload).part == "categories"
    # A wrong national code: 422, the message from the catalogue in the page's language.
    r = c.post(f"/api/categories/{new['id']}", json={"national_code": "12"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "national_code"
    assert r.json()["message"] == "国标编码须为6位数字。"
    r = c.post(f"/api/categories/{new['id']}?lang=en", json={"parent_id": new["id"]}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "category_cycle"
    assert r.json()["message"] == "A category cannot move below itself or one of its children."
    # Moved and renamed; a used category cannot go, only be disabled.
    r = c.post(f"/api/categories/{new['id']}", json={"parent_id": world.cat_elder, "name": "助浴"}, headers=h)
    assert r.status_code == 200 and r.json()["parent_id"] == world.cat_elder
    r = c.post(f"/api/categories/{world.cat_water}/delete", headers=h)
    assert r.status_code == 422 and r.json()["code"] == "category_in_use"
    assert c.post(f"/api/categories/{world.cat_water}", json={"active": "no"}, headers=h).status_code == 422
    assert c.post(f"/api/categories/{world.cat_water}", json={"active": False}, headers=h).status_code == 200
    assert c.post(f"/api/categories/{new['id']}/delete", headers=h).status_code == 200
    assert c.post("/api/categories/99999/delete", headers=h).status_code == 404
    assert c.post("/api/categories", content=b"[1]", headers=h).status_code == 422
    assert c.post("/api/categories", json={"name": "x"}).status_code == 403  # no CSRF token
    tree = c.get("/api/categories").json()
    assert [n["active"] for n in tree if n["id"] == world.cat_water] == [False]
    with session_scope(db) as s:
        actions = [
            a.action for a in s.exec(select(AuditEntry).order_by(AuditEntry.id)) if a.action != "login"
        ]
    assert actions == ["category.create", "category.move", "category.update", "category.delete"]


def test_rules_on_the_page_preview_and_coverage(db, app, web, world):
    c, token = _admin(web, app)
    r = c.post(
        "/admin/routing/save",
        data={
            "csrf": token,
            "category_id": str(world.cat_elder),
            "place": f"c:{world.other_community}",
            "outlet_id": str(world.supplier),
            "priority": "5",
            "note": "<b>夜间</b>",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(db) as s:
        rule = s.exec(select(RoutingRule).where(RoutingRule.note == "<b>夜间</b>")).one()
    page = c.get("/admin/routing").text
    assert "&lt;b&gt;夜间&lt;/b&gt;" in page and "<b>夜间" not in page
    p = c.get(
        f"/admin/routing?preview=1&category_id={world.cat_elder}&community_id={world.other_community}"
    ).text
    assert f'data-rule="{rule.id}"' in p and "安宁水电维修公司" in p
    api = c.get(
        "/api/routing/preview", params={"category_id": world.cat_elder, "community_id": world.other_community}
    )
    assert api.json()["outlet"]["id"] == world.supplier and api.json()["rule"]["id"] == rule.id
    # A bad place or date: the page again with the catalogue's message.
    r = c.post(
        "/admin/routing/save",
        data={
            "csrf": token,
            "outlet_id": str(world.supplier),
            "valid_from": "2030-02-01",
            "valid_until": "2030-01-01",
        },
    )
    assert r.status_code == 422 and "失效日期早于生效日期" in r.text
    cov = c.get("/api/routing/coverage").json()
    assert cov["uncovered"] == [] and cov["pairs"] == 4
    assert "所有组合都有规则覆盖" in c.get("/admin/routing/coverage").text
    h = {"X-CSRF-Token": token}
    assert c.post(f"/api/routing/rules/{rule.id}", json={"priority": 10}, headers=h).json()["priority"] == 10
    assert c.post(f"/api/routing/rules/{rule.id}/delete", headers=h).status_code == 200
    assert c.post(f"/api/routing/rules/{rule.id}/delete", headers=h).status_code == 404


def test_excel_export_and_import(db, app, web, world):
    c, token = _admin(web, app)
    cats = c.get("/admin/categories/export")
    assert cats.status_code == 200
    ws = load_workbook(io.BytesIO(cats.content)).active
    assert [cell.value for cell in ws[1]] == ["编码", "名称", "上级编码", "国标编码", "审批事项", "启用"]
    ws.append(["LIFE-PIPE", "管道疏通", "LIFE-WATER", "020304", "否", "是"])
    buf = io.BytesIO()
    ws.parent.save(buf)
    r = c.post(
        "/admin/categories/import",
        data={"csrf": token},
        files={"file": ("cats.xlsx", buf.getvalue(), "application/octet-stream")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    with session_scope(db) as s:
        pipe = s.exec(select(Category).where(Category.code == "LIFE-PIPE")).one()
        assert pipe.national_code == "020304" and pipe.parent_id == world.cat_water
    exported = c.get("/admin/routing/export")
    wb = load_workbook(io.BytesIO(exported.content))
    assert wb.active.max_row == 5  # the heading and the world's four rules
    r = c.post(
        "/admin/routing/import",
        data={"csrf": token, "replace": "1"},
        files={"file": ("rules.xlsx", exported.content, "application/octet-stream")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(db) as s:
        assert len(s.exec(select(RoutingRule)).all()) == 4
    bad = c.post(
        "/admin/routing/import",
        data={"csrf": token},
        files={"file": ("rules.csv", "网点,社区\n无此网点,十里店社区\n".encode(), "text/csv")},
    )
    assert bad.status_code == 422 and "规则引用的 outlet 不存在" in bad.text


def test_the_outlet_form_leaves_coverage_to_the_rules(db, app, web, world):
    c, token = _admin(web, app)
    page = c.get("/admin/basic/outlets").text
    assert 'name="categories"' not in page and 'name="areas"' not in page
    assert f"/admin/routing?outlet_id={world.outlet_a}" in page
    r = c.post(
        "/admin/basic/outlets/save",
        data={"csrf": token, "id": str(world.outlet_a), "phone": "13900000001", "areas": "十里店片区"},
    )
    assert r.status_code == 422


def test_deadline_policies_over_http(db, app, web, world):
    c, token = _admin(web, app)
    page = c.get("/admin/deadlines").text
    assert page.count('action="/admin/deadlines/save"') == 12
    r = c.post(
        "/api/deadlines",
        json={
            "order_type": "投诉",
            "urgency": "normal",
            "amount": 7,
            "unit": "workdays",
            "accept_minutes": 90,
            "remind_lead_hours": 0,
            "escalate_to": ["13900002222"],
        },
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 200 and r.json()["amount"] == 7 and r.json()["escalate_to"] == ["+8613900002222"]
    row = [p for p in c.get("/api/deadlines").json() if (p["order_type"], p["urgency"]) == ("投诉", "normal")]
    assert row[0]["custom"] is True
    r = c.post(
        "/admin/deadlines/save",
        data={
            "csrf": token,
            "order_type": "咨询",
            "urgency": "urgent",
            "amount": "2",
            "unit": "hours",
            "accept_minutes": "30",
            "remind_lead_hours": "5",
        },
    )
    assert r.status_code == 422 and "催办提前量须短于办结时限" in r.text


def test_templates_api_preview_and_provider_mapping(db, app, web, world):
    from dispatch import service, transitions
    from sms.models import SmsMessage

    c, token = _admin(web, app)
    h = {"X-CSRF-Token": token}
    names = [t["name"] for t in c.get("/api/templates").json()]
    assert {"outlet_order", "supervisor_overdue"} <= set(names)
    bad = c.post("/api/templates", json={"name": "outlet_order", "body": "{number!r}"}, headers=h)
    assert bad.status_code == 422 and bad.json()["code"] == "template_variable"
    bad = c.post(
        "/api/templates", json={"name": "outlet_order", "body": "{number", "provider_code": ""}, headers=h
    )
    assert bad.json()["code"] == "template_braces"
    bad = c.post(
        "/api/templates",
        json={"name": "outlet_order", "body": "{number}", "provider_code": "SMS_1", "param_map": "x=phone"},
        headers=h,
    )
    assert bad.json()["code"] == "template_variable"
    ok = c.post(
        "/api/templates",
        json={
            "name": "outlet_order",
            "body": "工单{number}，回复 签收 {code}",
            "provider_code": "SMS_270001",
            "param_map": "no=number\ncode=code",
        },
        headers=h,
    )
    assert ok.status_code == 200 and ok.json()["param_map"] == {"no": "number", "code": "code"}
    with session_scope(db) as s:
        order = service.create_order(s, world.seat, order_type="求助", summary="灯坏了", settings=db)
        transitions.transition(s, order, "派单", world.seat, outlet_id=world.outlet_a, settings=db)
        s.commit()
        sms = s.exec(select(SmsMessage).where(SmsMessage.order_id == order.id)).one()
        assert sms.body == f"工单{order.number}，回复 签收 {order.short_code}"
        assert sms.template_code == "SMS_270001"
        assert sms.template_params == {"no": order.number, "code": order.short_code}
        number = order.number
    p = c.get("/api/templates/preview", params={"name": "outlet_order", "order": number}).json()
    assert p["body"].startswith(f"工单{number}") and p["segments"] == 1 and p["params"]["no"] == number
    assert c.get("/api/templates/preview", params={"name": "outlet_order", "order": "GD0"}).status_code == 422
    assert c.get("/api/templates/preview", params={"name": "nope"}).status_code == 404


def test_configuration_file_dry_run_then_apply(db, app, web, world):
    import json

    c, token = _admin(web, app)
    exported = c.get("/admin/config/export")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    data = json.loads(exported.content)
    data["holidays"].append({"day": "2031-01-01", "workday": False, "name": "元旦"})
    data["rules"] = data["rules"][1:]
    raw = json.dumps(data, ensure_ascii=False).encode()
    page = c.post(
        "/admin/config/dry-run",
        data={"csrf": token},
        files={"file": ("config.json", raw, "application/json")},
    )
    assert page.status_code == 200
    assert 'data-part="holidays" data-added="1" data-removed="0"' in page.text
    assert 'data-part="rules" data-added="0" data-removed="1"' in page.text
    with session_scope(db) as s:
        assert len(s.exec(select(RoutingRule)).all()) == 4  # a dry run changes nothing
    staged = re.search(r'name="token" value="([0-9a-f]+)"', page.text).group(1)
    done = c.post("/admin/config/apply", data={"csrf": token, "token": staged})
    assert done.status_code == 200 and 'id="applied"' in done.text
    with session_scope(db) as s:
        assert len(s.exec(select(RoutingRule)).all()) == 3
    again = c.post("/admin/config/apply", data={"csrf": token, "token": staged})
    assert again.status_code == 422 and "预演的文件已失效" in again.text
    bad = c.post(
        "/admin/config/dry-run", data={"csrf": token}, files={"file": ("x.json", b"[]", "application/json")}
    )
    assert bad.status_code == 422
    api = c.post("/api/config", content=raw, headers={"X-CSRF-Token": token})
    assert api.json()["dry_run"] is True and api.json()["diff"]["unchanged"] is True


ODD_VALUES = [None, [], {}, {"a": [1]}, "²", "١٢", "9" * 5000, 2**40, -1, True, "<script>", "2031-02-30"]


def test_odd_json_gets_a_4xx_never_a_5xx(db, app, web, world):
    c, token = _admin(web, app)
    h = {"X-CSRF-Token": token}
    routes = [
        ("/api/categories", ("name", "parent_id", "code", "national_code", "approval_matter")),
        (f"/api/categories/{world.cat_water}", ("name", "parent_id", "national_code", "active")),
        (
            "/api/routing/rules",
            ("category_id", "community_id", "outlet_id", "priority", "valid_from", "active"),
        ),
        ("/api/deadlines", ("order_type", "urgency", "amount", "unit", "accept_minutes", "escalate_to")),
        ("/api/templates", ("name", "body", "provider_code", "param_map")),
    ]
    for path, fields in routes:
        for field in fields:
            for value in ODD_VALUES:
                body = {
                    "name": "outlet_order",
                    "outlet_id": world.outlet_a,
                    "order_type": "求助",
                    "urgency": "normal",
                }
                body[field] = value
                r = c.post(path, json=body, headers=h)
                assert r.status_code < 500, (path, field, value, r.text)
    for value in ODD_VALUES:
        r = c.post(
            "/api/config",
            json={
                "format": "anning-hotline-config",
                "version": 1,
                "deadlines": [
                    {
                        "order_type": "求助",
                        "urgency": "normal",
                        "amount": value,
                        "unit": "hours",
                        "escalate_to": value,
                    }
                ],
            },
            headers=h,
            params={"dry_run": "false"},
        )
        assert r.status_code < 500, (value, r.text)
    assert c.post("/api/routing/rules/2147483647", json={}, headers=h).status_code == 404
    assert c.post("/api/routing/rules/2147483648", json={}, headers=h).status_code == 422
