"""Basic data pages: add, edit an outlet's contacts, delete, and the import with its progress and report."""

from __future__ import annotations

import time

from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope
from callcenter.directory.models import Community, Jurisdiction, Outlet
from callcenter.residents.models import Resident


def _admin(web, app):
    c = web.TestClient(app)
    c.__enter__()
    assert web.login(c, "admin").status_code == 303
    token = web.csrf(c.get("/admin/basic").text)
    return c, token


def _wait_job(c, location: str) -> dict:
    job_id = location.rsplit("/", 1)[1]
    for _ in range(200):
        job = c.get(f"/api/import/{job_id}").json()
        if job["state"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError("import did not finish")


def test_add_edit_delete_with_audit(db, app, web):
    c, token = _admin(web, app)
    r = c.post(
        "/admin/basic/jurisdictions/save",
        data={"csrf": token, "name": "十里店街道", "code": "620105001"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        "/admin/basic/communities/save", data={"csrf": token, "name": "甲社区", "jurisdiction": "无此街道"}
    )
    assert r.status_code == 422 and "无此街道" in r.text
    r = c.post(
        "/admin/basic/communities/save",
        data={"csrf": token, "name": "甲社区", "jurisdiction": "十里店街道"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        "/admin/basic/outlets/save",
        data={"csrf": token, "name": "<b>服务站</b>", "community": "甲社区", "phone": "13900000001"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = c.get("/admin/basic/outlets").text
    assert "&lt;b&gt;服务站&lt;/b&gt;" in page and "<b>服务站" not in page
    with session_scope(db) as s:
        outlet = s.exec(select(Outlet)).one()
    r = c.post(
        "/admin/basic/outlets/save",
        data={
            "csrf": token,
            "id": str(outlet.id),
            "phone": "13900000001",
            "phones": "13900000011；0931-8123456",
            "email": "a@x.cn",
            "working_hours": "08:30-17:30",
            "active": "on",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(db) as s:
        outlet = s.get(Outlet, outlet.id)
        assert outlet.sms_numbers() == ["+8613900000001", "+8613900000011", "+869318123456"]
    r = c.post("/admin/basic/outlets/save", data={"csrf": token, "id": str(outlet.id), "phone": "12"})
    assert r.status_code == 422
    # In use: a community with an outlet cannot go; the outlet can.
    with session_scope(db) as s:
        com = s.exec(select(Community)).one()
    r = c.post(f"/admin/basic/communities/{com.id}/delete", data={"csrf": token})
    assert r.status_code == 409
    r = c.post(f"/admin/basic/outlets/{outlet.id}/delete", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert c.post(f"/admin/basic/outlets/{outlet.id}/delete", data={"csrf": "bad"}).status_code == 403
    assert c.get("/api/basic/communities").json()[0]["jurisdiction"] == "十里店街道"
    with session_scope(db) as s:
        actions = [a.action for a in s.exec(select(AuditEntry))]
    assert (
        actions.count("basic.create") == 3 and "basic.outlet_update" in actions and "basic.delete" in actions
    )


def test_import_with_progress_report_and_nothing_half_done(db, app, web):
    with session_scope(db) as s:
        j = Jurisdiction(name="十里店街道")
        s.add(j)
        s.flush()
        s.add(Community(jurisdiction_id=j.id, name="十里店东社区"))
        s.commit()
    c, token = _admin(web, app)
    good = "姓名,手机,社区\n" + "".join(f"居民{i},139{i:08d},十里店东社区\n" for i in range(300))
    bad = good + "坏行,123,十里店东社区\n重复,13900000001,十里店东社区\n"
    r = c.post(
        "/admin/import",
        data={"csrf": token, "kind": "residents"},
        files={"file": ("residents.csv", bad.encode("utf-8-sig"), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    job = _wait_job(c, r.headers["location"])
    assert job["state"] == "done" and job["done"] == job["total"] == 302
    assert [e["row"] for e in job["report"]["errors"]] == [302, 303]
    page = c.get(r.headers["location"]).text
    assert 'id="import-errors"' in page and 'data-ok="false"' in page and 'id="import-progress"' in page
    with session_scope(db) as s:
        assert s.exec(select(Resident)).all() == []  # nothing half-imported

    r = c.post(
        "/admin/import",
        data={"csrf": token, "kind": "residents"},
        files={"file": ("residents.csv", good.encode("utf-8-sig"), "text/csv")},
        follow_redirects=False,
    )
    job = _wait_job(c, r.headers["location"])
    assert job["report"]["ok"] and job["report"]["imported"] == 300
    with session_scope(db) as s:
        assert len(s.exec(select(Resident)).all()) == 300
        audits = s.exec(select(AuditEntry).where(AuditEntry.action == "basic.import")).all()
        assert [a.detail["imported"] for a in audits] == [0, 300]

    r = c.post(
        "/admin/import",
        data={"csrf": token, "kind": "residents"},
        files={"file": ("x.pdf", b"%PDF", "application/pdf")},
        follow_redirects=False,
    )
    assert _wait_job(c, r.headers["location"])["state"] == "failed"


def test_other_roles_and_other_admins_do_not_see_a_job(db, app, web):
    c, token = _admin(web, app)
    r = c.post(
        "/admin/import",
        data={"csrf": token, "kind": "jurisdictions"},
        files={"file": ("j.csv", "名称\n甲街道\n".encode(), "text/csv")},
        follow_redirects=False,
    )
    job_id = r.headers["location"].rsplit("/", 1)[1]
    _wait_job(c, r.headers["location"])
    with web.TestClient(app) as other:
        assert web.login(other, "super").status_code == 303
        assert other.get(f"/api/import/{job_id}").status_code == 403
        assert other.get("/api/basic/outlets").status_code == 200  # supervisors read basic data
        assert other.get("/admin/basic").status_code == 403


def test_export_round_trips_and_is_audited(db, app, web):
    import io

    from openpyxl import load_workbook

    from callcenter.directory.imports import read_table, run_import

    c, token = _admin(web, app)
    c.post("/admin/basic/jurisdictions/save", data={"csrf": token, "name": "十里店街道", "code": "620105001"})
    c.post("/admin/basic/jurisdictions/save", data={"csrf": token, "name": "=HYPERLINK(1)", "code": ""})
    r = c.get("/admin/basic/jurisdictions/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxml")
    ws = load_workbook(io.BytesIO(r.content)).active
    values = [[cell.value for cell in row] for row in ws.iter_rows()]
    assert values[0] == ["名称", "代码"] and values[1] == ["十里店街道", "620105001"]
    assert values[2][0] == "'=HYPERLINK(1)"  # never a formula
    with session_scope(db) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "basic.export")).first() is not None
    # The export is an import file.
    rows = read_table("j.xlsx", r.content)
    with session_scope(db) as s:
        report = run_import(s, db, "jurisdictions", rows[:1])
    assert not report.ok and "exists" in report.errors[0][1]


def test_edit_items(db, app, web):
    from callcenter.directory.models import ServiceArea, ServiceAreaCommunity

    c, token = _admin(web, app)
    c.post("/admin/basic/jurisdictions/save", data={"csrf": token, "name": "十里店街道"})
    c.post("/admin/basic/jurisdictions/save", data={"csrf": token, "name": "孔家崖街道"})
    for name in ("甲社区", "乙社区"):
        c.post(
            "/admin/basic/communities/save", data={"csrf": token, "name": name, "jurisdiction": "十里店街道"}
        )
    c.post("/admin/basic/service_areas/save", data={"csrf": token, "name": "片区一", "communities": "甲社区"})
    with session_scope(db) as s:
        j = s.exec(select(Jurisdiction).where(Jurisdiction.name == "十里店街道")).one()
        area = s.exec(select(ServiceArea)).one()
        com = s.exec(select(Community).where(Community.name == "乙社区")).one()
    r = c.post("/admin/basic/jurisdictions/save", data={"csrf": token, "id": str(j.id), "name": "孔家崖街道"})
    assert r.status_code == 422 and "exists" in r.text
    r = c.post(
        "/admin/basic/jurisdictions/save",
        data={"csrf": token, "id": str(j.id), "name": "十里店街道办", "code": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        "/admin/basic/service_areas/save",
        data={"csrf": token, "id": str(area.id), "name": "片区一", "communities": "甲社区；乙社区"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        "/admin/basic/communities/save",
        data={"csrf": token, "id": str(com.id), "name": "乙社区", "urban": "否"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(db) as s:
        assert s.get(Jurisdiction, j.id).name == "十里店街道办"
        assert (
            len(s.exec(select(ServiceAreaCommunity).where(ServiceAreaCommunity.area_id == area.id)).all())
            == 2
        )
        assert s.get(Community, com.id).urban is False
        assert len(s.exec(select(AuditEntry).where(AuditEntry.action == "basic.update")).all()) == 3
    assert "十里店街道办" in c.get("/admin/basic/jurisdictions").text


def test_outlet_coverage_is_left_to_the_routing_rules(db, app, web):
    """What an outlet serves is its routing rules (one source of truth): the outlet's form and
    import refuse categories and areas instead of storing what routing would never read."""
    c, token = _admin(web, app)
    c.post("/admin/basic/jurisdictions/save", data={"csrf": token, "name": "十里店街道"})
    c.post(
        "/admin/basic/communities/save", data={"csrf": token, "name": "甲社区", "jurisdiction": "十里店街道"}
    )
    c.post("/admin/basic/service_areas/save", data={"csrf": token, "name": "片区一", "communities": "甲社区"})
    r = c.post(
        "/admin/basic/outlets/save",
        data={"csrf": token, "name": "服务站", "phone": "13900000001", "areas": "片区一"},
    )
    assert r.status_code == 422 and "派单规则" in r.text
    assert c.post(
        "/admin/basic/outlets/save", data={"csrf": token, "name": "服务站", "phone": "13900000001"}
    ).status_code in (200, 303)
    with session_scope(db) as s:
        outlet = s.exec(select(Outlet)).one()
    form = {"csrf": token, "id": str(outlet.id), "phone": "13900000001", "active": "on"}
    assert c.post("/admin/basic/outlets/save", data=form, follow_redirects=False).status_code == 303
    assert c.post("/admin/basic/outlets/save", data={**form, "categories": "水电维修"}).status_code == 422
    [row] = c.get("/api/basic/outlets").json()
    assert row["rules"] == 0 and "categories" not in row
